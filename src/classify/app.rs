//! Does the protocol seen on a flow fit the protocol its rules document?
//!
//! The rules name an `app_protocol` per row ("sip", "https", "rtp", …). A
//! flow's payload gives an [`AppGuess`]. Only a clear contradiction is a
//! mismatch: a named plaintext protocol where another is documented (HTTP on
//! the SIP port, SSH on 443), plain text where TLS is documented, or anything
//! but RTP/STUN/DTLS in the RTP ranges. Encrypted or unrecognised payload, and
//! rows whose protocol has no fingerprint here, never change a verdict.

use crate::decode::AppGuess;

/// Which guesses a flow's rules accept; built once per decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AppExpectation {
    /// Bit per [`AppGuess`]: guesses that fit at least one rule.
    fits: u32,
    /// Bit per [`AppGuess`]: guesses that contradict every checkable rule.
    contradicts: u32,
}

/// The outcome of comparing one guess with the expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppCheck {
    Fits,
    Contradicts,
    /// Nothing to say (encrypted, unrecognised, or no fingerprint for the rule).
    Undecided,
}

const fn bit(g: AppGuess) -> u32 {
    1 << (g as u32)
}

/// Named plaintext protocols: seeing one where another is documented is clear.
const NAMED_PLAINTEXT: [AppGuess; 21] = [
    AppGuess::Http,
    AppGuess::Sip,
    AppGuess::Ssh,
    AppGuess::Smtp,
    AppGuess::Pop3,
    AppGuess::Imap,
    AppGuess::Ftp,
    AppGuess::Ldap,
    AppGuess::Rdp,
    AppGuess::Xmpp,
    AppGuess::Rtp,
    AppGuess::Dns,
    AppGuess::NetBios,
    AppGuess::Ntp,
    AppGuess::Iax2,
    AppGuess::Syslog,
    AppGuess::Tds,
    AppGuess::Snmp,
    AppGuess::Rtsp,
    AppGuess::Mysql,
    AppGuess::Smb,
];

/// For one rule's `app_protocol`: (guesses that fit, guesses that contradict),
/// or `None` when this protocol has no fingerprint.
fn rule_expectation(app_protocol: &str) -> Option<(u32, u32)> {
    let all_named = NAMED_PLAINTEXT.iter().fold(0, |m, &g| m | bit(g));
    let plain = |fit: AppGuess| (bit(fit), all_named & !bit(fit));
    let plain_any = |fit: u32| (fit, all_named & !fit);
    Some(match app_protocol {
        // TLS documented: any plaintext at all is a contradiction.
        "https" | "tls" | "sips" | "pop3s" => (bit(AppGuess::Tls), all_named | bit(AppGuess::Text)),
        "http" => plain(AppGuess::Http),
        "sip" => plain(AppGuess::Sip),
        "ssh" => plain(AppGuess::Ssh),
        "smtp" => plain(AppGuess::Smtp),
        "pop3" => plain(AppGuess::Pop3),
        "imap" => plain(AppGuess::Imap),
        "ldap" => plain(AppGuess::Ldap),
        "rdp" => plain(AppGuess::Rdp),
        "xmpp" => plain(AppGuess::Xmpp),
        "ntp" => plain(AppGuess::Ntp),
        "snmp" => plain(AppGuess::Snmp),
        "mysql" => plain(AppGuess::Mysql),
        // SMB on 139 opens with a NetBIOS session request.
        "smb" => plain_any(bit(AppGuess::Smb) | bit(AppGuess::NetBios)),
        // RTP needs a version-2 header; ICE and SRTP keying share the ports.
        "rtp" => (
            bit(AppGuess::Rtp) | bit(AppGuess::StunDtls),
            (all_named & !bit(AppGuess::Rtp))
                | bit(AppGuess::Text)
                | bit(AppGuess::Unknown)
                | bit(AppGuess::Tls)
                | bit(AppGuess::Quic),
        ),
        _ => return None,
    })
}

impl AppExpectation {
    /// The expectation of a flow matched by rules with these protocols: a
    /// guess fits if it fits any of them, and contradicts only if every rule
    /// that can be checked is contradicted.
    pub fn of<'a>(app_protocols: impl IntoIterator<Item = &'a str>) -> AppExpectation {
        let mut fits = 0;
        let mut contradicts = u32::MAX;
        let mut checkable = false;
        for app in app_protocols {
            match rule_expectation(app) {
                Some((f, c)) => {
                    checkable = true;
                    fits |= f;
                    contradicts &= c;
                }
                // A rule we cannot check might explain anything.
                None => contradicts = 0,
            }
        }
        if !checkable {
            return AppExpectation::default();
        }
        AppExpectation {
            fits,
            contradicts: contradicts & !fits,
        }
    }

    /// Whether any guess could contradict it (else there is nothing to inspect).
    pub fn is_checkable(self) -> bool {
        self.contradicts != 0
    }

    pub fn check(self, guess: AppGuess) -> AppCheck {
        if self.fits & bit(guess) != 0 {
            AppCheck::Fits
        } else if self.contradicts & bit(guess) != 0 {
            AppCheck::Contradicts
        } else {
            AppCheck::Undecided
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AppCheck::{Contradicts, Fits, Undecided};

    #[test]
    fn http_on_the_sip_port_and_ssh_on_443_contradict() {
        let sip = AppExpectation::of(["sip"]);
        assert_eq!(sip.check(AppGuess::Http), Contradicts);
        assert_eq!(sip.check(AppGuess::Sip), Fits);
        assert_eq!(sip.check(AppGuess::Tls), Undecided);
        assert_eq!(sip.check(AppGuess::Unknown), Undecided);
        let https = AppExpectation::of(["https"]);
        assert_eq!(https.check(AppGuess::Ssh), Contradicts);
        assert_eq!(
            https.check(AppGuess::Text),
            Contradicts,
            "plain text where TLS is documented"
        );
        assert_eq!(https.check(AppGuess::Tls), Fits);
        assert_eq!(https.check(AppGuess::Unknown), Undecided);
    }

    #[test]
    fn rtp_ranges_accept_only_rtp_and_its_companions() {
        let rtp = AppExpectation::of(["rtp"]);
        assert_eq!(rtp.check(AppGuess::Rtp), Fits);
        assert_eq!(rtp.check(AppGuess::StunDtls), Fits);
        assert_eq!(rtp.check(AppGuess::Unknown), Contradicts);
        assert_eq!(rtp.check(AppGuess::Sip), Contradicts);
    }

    #[test]
    fn several_rules_contradict_only_together_and_unknown_rules_never() {
        // 443 documented both as https and http (ambiguous rows): TLS and HTTP fit.
        let both = AppExpectation::of(["https", "http"]);
        assert_eq!(both.check(AppGuess::Tls), Fits);
        assert_eq!(both.check(AppGuess::Http), Fits);
        assert_eq!(both.check(AppGuess::Ssh), Contradicts);
        assert_eq!(both.check(AppGuess::Text), Undecided);
        // A rule without a fingerprint might explain anything.
        let loose = AppExpectation::of(["sip", "corba"]);
        assert_eq!(loose.check(AppGuess::Http), Undecided);
        assert!(!loose.is_checkable());
        assert!(!AppExpectation::of(["unknown"]).is_checkable());
        assert!(!AppExpectation::of([]).is_checkable());
        assert!(AppExpectation::of(["sip"]).is_checkable());
    }
}
