//! Line-based protocols, by their first line: HTTP, RTSP and SIP request
//! and status lines, SSH banners, mail and FTP greetings, XMPP streams, syslog.

use super::{contains, AppGuess, SenderRole};
use SenderRole::{Client, Server, Unknown};

/// HTTP methods, and the HTTP/2 connection preface's `PRI * HTTP/2.0`.
const HTTP_METHODS: [&[u8]; 10] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
    b"PRI ",
];

const SIP_METHODS: [&[u8]; 14] = [
    b"INVITE ",
    b"ACK ",
    b"BYE ",
    b"CANCEL ",
    b"OPTIONS ",
    b"REGISTER ",
    b"SUBSCRIBE ",
    b"NOTIFY ",
    b"PUBLISH ",
    b"INFO ",
    b"REFER ",
    b"MESSAGE ",
    b"UPDATE ",
    b"PRACK ",
];

const RTSP_METHODS: [&[u8]; 11] = [
    b"OPTIONS ",
    b"DESCRIBE ",
    b"SETUP ",
    b"PLAY ",
    b"PAUSE ",
    b"TEARDOWN ",
    b"ANNOUNCE ",
    b"RECORD ",
    b"GET_PARAMETER ",
    b"SET_PARAMETER ",
    b"REDIRECT ",
];

/// A text protocol from the first line of `p` (which starts with a graphic byte).
pub(super) fn identify(p: &[u8]) -> Option<(AppGuess, SenderRole)> {
    let (line, complete) = first_line(p);
    if line.starts_with(b"SIP/2.0 ") {
        return Some((AppGuess::Sip, Server));
    }
    if line.starts_with(b"HTTP/1.") || line.starts_with(b"HTTP/2") {
        return Some((AppGuess::Http, Server));
    }
    if line.starts_with(b"RTSP/1.") {
        return Some((AppGuess::Rtsp, Server));
    }
    if let Some(found) = request_line(line, complete) {
        return Some(found);
    }
    if line.starts_with(b"SSH-") {
        return Some((AppGuess::Ssh, Unknown));
    }
    if line.starts_with(b"EHLO ") || line.starts_with(b"HELO ") {
        return Some((AppGuess::Smtp, Client));
    }
    if line.starts_with(b"220 ") || line.starts_with(b"220-") {
        // A server's greeting, whichever protocol it names.
        let names = |w: &[u8]| contains_ignore_case(line, w);
        let guess = if names(b"SMTP") {
            AppGuess::Smtp
        } else if names(b"FTP") {
            AppGuess::Ftp
        } else {
            AppGuess::Text
        };
        return Some((guess, Server));
    }
    if line.starts_with(b"+OK") {
        return Some((AppGuess::Pop3, Server));
    }
    if line.starts_with(b"* OK") || line.starts_with(b"* PREAUTH") {
        return Some((AppGuess::Imap, Server));
    }
    // XMPP opens a stream (after an optional XML declaration); any other XML
    // is only text.
    if (line.starts_with(b"<?xml") || line.starts_with(b"<stream:"))
        && contains(p, b"<stream:stream")
    {
        return Some((AppGuess::Xmpp, Unknown));
    }
    if is_syslog(line) {
        return Some((AppGuess::Syslog, Client));
    }
    None
}

/// An HTTP, SIP or RTSP request line. The version may lie beyond the bytes
/// looked at (a long URL): then the method and the form of the target
/// decide. A line that ends within them must end with its protocol's version.
fn request_line(line: &[u8], complete: bool) -> Option<(AppGuess, SenderRole)> {
    let method_end = line.iter().position(|&b| b == b' ')? + 1;
    let method = &line[..method_end];
    let rest = &line[method_end..];
    let (target, version) = match rest.iter().position(|&b| b == b' ') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    // What the line says its version is, where it shows one; a line cut at
    // the look-ahead may show only the start of it.
    let says = |v: &[u8]| match version {
        Some(shown) => shown.starts_with(v) || (!complete && v.starts_with(shown)),
        None => !complete,
    };
    if HTTP_METHODS.contains(&method) && is_http_target(method, target) && says(b"HTTP/") {
        return Some((AppGuess::Http, Client));
    }
    if SIP_METHODS.contains(&method)
        && [&b"sip:"[..], b"sips:", b"tel:"]
            .iter()
            .any(|s| target.starts_with(s))
    {
        return Some((AppGuess::Sip, Client));
    }
    if RTSP_METHODS.contains(&method)
        && (target.starts_with(b"rtsp://") || target == b"*")
        && says(b"RTSP/")
    {
        return Some((AppGuess::Rtsp, Client));
    }
    None
}

/// An HTTP request target: a path, `*`, an absolute URL, or for CONNECT a host and port.
fn is_http_target(method: &[u8], target: &[u8]) -> bool {
    if method == b"CONNECT " {
        return target.contains(&b':');
    }
    target.starts_with(b"/")
        || target == b"*"
        || target.starts_with(b"http://")
        || target.starts_with(b"https://")
}

/// A syslog message: `<PRI>` (0–191), then an RFC 5424 version or an RFC
/// 3164 timestamp or host.
fn is_syslog(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"<") else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=3).contains(&digits) || rest.get(digits) != Some(&b'>') {
        return false;
    }
    let pri = rest[..digits]
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    pri <= 191
        && rest
            .get(digits + 1)
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

/// The first line of `p`, and whether it ended within `p`.
fn first_line(p: &[u8]) -> (&[u8], bool) {
    match p.iter().position(|&b| b == b'\r' || b == b'\n') {
        Some(end) => (&p[..end], true),
        None => (p, false),
    }
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}
