//! The `app_protocol` names a rules file may use: those the classifier has
//! a fingerprint for, those the vendor matrix names, and the usual
//! infrastructure services a site documents. A name outside the list is an
//! error, because a typo ("htps") would silently turn the protocol check off.

/// Every accepted name, sorted; "unknown" when only TCP/UDP is given.
pub const APP_PROTOCOLS: &[&str] = &[
    "ajp",
    "bgp",
    "corba",
    "dhcp",
    "dhcpv6",
    "dns",
    "dtls",
    "ftp",
    "ftps",
    "grpc",
    "h323",
    "http",
    "https",
    "iax2",
    "imap",
    "imaps",
    "jdbc",
    "jmx",
    "kafka",
    "kerberos",
    "ldap",
    "ldaps",
    "license",
    "mgcp",
    "msrpc",
    "multicast-stats",
    "mysql",
    "netbios",
    "nfs",
    "ntp",
    "pop3",
    "pop3s",
    "quic",
    "radius",
    "rdp",
    "rtcp",
    "rtp",
    "rtsp",
    "sip",
    "sips",
    "smb",
    "smtp",
    "smtps",
    "snmp",
    "snmp-trap",
    "ssh",
    "stun",
    "syslog",
    "tds",
    "telnet",
    "tftp",
    "tls",
    "unknown",
    "winrm",
    "xmpp",
];

/// The accepted name nearest to `name`, if it is one or two edits away.
pub fn closest_app_protocol(name: &str) -> Option<&'static str> {
    APP_PROTOCOLS
        .iter()
        .map(|known| (edit_distance(name, known), *known))
        .filter(|(d, _)| *d <= 2)
        // On a tie, a name that starts alike: "htps" is "https", not "ftps".
        .min_by_key(|(d, known)| (*d, known.get(..1) != name.get(..1)))
        .map(|(_, known)| known)
}

/// Levenshtein distance, on short ASCII names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_typos_find_their_name() {
        assert!(APP_PROTOCOLS.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(closest_app_protocol("htps"), Some("https"));
        assert_eq!(closest_app_protocol("sipp"), Some("sip"));
        assert_eq!(closest_app_protocol("completely-else"), None);
    }
}
