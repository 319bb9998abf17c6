//! `--syslog`: every event the run prints, also sent to a syslog receiver as
//! one RFC 5424 message whose MSG is the event's JSON line, as Suricata's
//! syslog output does (the SIEM's syslog input parses the JSON after the
//! header).
//!
//! The events are not built twice: a printer of the run's format writes
//! into [`SyslogLines`], which cuts what it is given at each newline and
//! queues one message per line. A receiver must never slow capture down, so
//! the queue is bounded and [`SyslogLines`] never waits: when the queue is
//! full the message is dropped and counted; the sending thread
//! ([`send`]) reconnects after failures with a growing pause, counting what
//! it could not deliver.

mod send;

use std::fmt;
use std::io::{self, Read, Write};

use super::lines::{LineSink, Lines};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use crate::timestamp::Timestamp;

pub use send::MAX_MESSAGE;

/// Messages waiting for the sending thread: about a second of a heavy alert
/// flood, a few MiB at most; beyond it messages are dropped, not waited for.
const QUEUE: usize = 4096;

/// RFC 5424 PRI: facility local5 (16 + 5, Suricata's default) at severity
/// info (6): 21 * 8 + 6.
const PRI: u8 = 174;

/// Where `--syslog` sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyslogTarget {
    /// A local socket (`unix:/dev/log`): datagram, or stream if the socket is one.
    Unix(PathBuf),
    /// `udp://HOST:PORT`: one message per datagram.
    Udp(String),
    /// `tcp://HOST:PORT`: octet-counted framing (RFC 6587 3.4.1), which
    /// rsyslog's imtcp takes by default and which survives any byte in a message.
    Tcp(String),
}

impl FromStr for SyslogTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<SyslogTarget, String> {
        let host_port = |rest: &str| -> Result<String, String> {
            match rest.rsplit_once(':') {
                Some((host, port))
                    if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) =>
                {
                    Ok(rest.to_string())
                }
                _ => Err(format!(
                    "`{s}` has no HOST:PORT after the scheme: write e.g. udp://127.0.0.1:514"
                )),
            }
        };
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("`unix:` needs a socket path, e.g. unix:/dev/log".into());
            }
            Ok(SyslogTarget::Unix(PathBuf::from(path)))
        } else if let Some(rest) = s.strip_prefix("udp://") {
            host_port(rest).map(SyslogTarget::Udp)
        } else if let Some(rest) = s.strip_prefix("tcp://") {
            host_port(rest).map(SyslogTarget::Tcp)
        } else {
            Err(format!(
                "`{s}` is not a syslog destination: write unix:/dev/log, udp://HOST:PORT or tcp://HOST:PORT"
            ))
        }
    }
}

impl fmt::Display for SyslogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyslogTarget::Unix(p) => write!(f, "unix:{}", p.display()),
            SyslogTarget::Udp(a) => write!(f, "udp://{a}"),
            SyslogTarget::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// What the syslog output did, in stats events (`stats.syslog`) and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SyslogStats {
    /// Messages handed to the receiver's socket.
    pub sent: u64,
    /// Messages lost: the queue was full, the receiver was away, or a
    /// message was longer than [`MAX_MESSAGE`].
    pub dropped: u64,
    /// Connections made again after a failure (tcp, unix stream).
    pub reconnects: u64,
}

/// The counters, shared by the writer's side and the sending thread.
#[derive(Debug, Default)]
pub struct SyslogCounters {
    sent: AtomicU64,
    dropped: AtomicU64,
    reconnects: AtomicU64,
}

impl SyslogCounters {
    pub fn get(&self) -> SyslogStats {
        SyslogStats {
            sent: self.sent.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
        }
    }

    fn drop_some(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }
}

/// The running syslog output: the sending thread and its counters.
pub struct Syslog {
    counters: Arc<SyslogCounters>,
    thread: Option<JoinHandle<()>>,
    /// Tells the thread to give up on a receiver that is away (the run is over).
    finishing: Arc<std::sync::atomic::AtomicBool>,
}

impl Syslog {
    /// Start sending to `target`. The first connection is tried at once
    /// (before privileges are dropped); a receiver that is not there yet
    /// is warned about and tried again later, as after a failure: a sensor
    /// must not depend on the order in which services start.
    pub fn start(target: &SyslogTarget) -> io::Result<(Syslog, SyslogLines)> {
        let conn = match send::Conn::open(target) {
            Ok(c) => Some(c),
            Err(e) => {
                crate::diag!(
                    "portmatrix: warning: syslog: cannot connect to {target}: {e}; trying again, \
messages are dropped and counted (stats.syslog.dropped) meanwhile"
                );
                None
            }
        };
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE);
        let counters = Arc::new(SyslogCounters::default());
        let finishing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sender = send::Sender {
            target: target.clone(),
            conn,
            counters: Arc::clone(&counters),
            finishing: Arc::clone(&finishing),
        };
        let thread = std::thread::Builder::new()
            .name("pm-syslog".into())
            .spawn(move || sender.run(rx))?;
        let lines = Lines::new(SyslogQueue {
            tx,
            header: Header::new(),
            counters: Arc::clone(&counters),
        });
        Ok((
            Syslog {
                counters,
                thread: Some(thread),
                finishing,
            },
            lines,
        ))
    }

    pub fn counters(&self) -> Arc<SyslogCounters> {
        Arc::clone(&self.counters)
    }

    /// Once [`SyslogLines`] is dropped: let the thread send what is queued,
    /// for at most `within` (a receiver that is away is not waited for), and
    /// return the final counters.
    pub fn finish(mut self, within: Duration) -> SyslogStats {
        let deadline = std::time::Instant::now() + within;
        if let Some(thread) = self.thread.take() {
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            self.finishing.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
        self.counters.get()
    }
}

/// The RFC 5424 header of this process's messages, but for the time:
/// `HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA`.
#[derive(Debug, Clone)]
struct Header {
    rest: String,
}

impl Header {
    fn new() -> Header {
        Header {
            rest: format!("{} portmatrix {} - -", hostname(), std::process::id()),
        }
    }

    /// `<PRI>1 TIMESTAMP HOSTNAME portmatrix PID - - MSG`.
    fn message(&self, now: Timestamp, msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rest.len() + msg.len() + 40);
        // Writing to a Vec cannot fail.
        let _ = write!(out, "<{PRI}>1 {now} {} ", self.rest);
        out.extend_from_slice(msg);
        out
    }
}

/// The host name for the HOSTNAME field, or the NILVALUE `-`: printable
/// ASCII without spaces, at most 255 characters (RFC 5424 6.2.4).
fn hostname() -> String {
    let mut name = String::new();
    if let Ok(f) = std::fs::File::open("/proc/sys/kernel/hostname") {
        let _ = f.take(256).read_to_string(&mut name);
    }
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if name.is_empty() {
        "-".into()
    } else {
        name
    }
}

/// The printer's destination: each line written becomes one message in the
/// queue; never blocks and never fails (what cannot be queued is counted).
pub type SyslogLines = Lines<SyslogQueue>;

/// Queues each line as one message for the sending thread.
pub struct SyslogQueue {
    tx: SyncSender<Vec<u8>>,
    header: Header,
    counters: Arc<SyslogCounters>,
}

impl SyslogQueue {
    /// Lines into `tx` as messages, counted in `counters`, without a thread (tests).
    #[cfg(test)]
    pub(crate) fn into_queue(
        tx: SyncSender<Vec<u8>>,
        counters: Arc<SyslogCounters>,
    ) -> SyslogLines {
        Lines::new(SyslogQueue {
            tx,
            header: Header::new(),
            counters,
        })
    }
}

impl LineSink for SyslogQueue {
    const MAX_LINE: usize = MAX_MESSAGE;

    fn line(&mut self, line: &[u8]) {
        let message = self.header.message(Timestamp::now(), line);
        match self.tx.try_send(message) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.drop_some(1);
            }
        }
    }

    fn overlong(&mut self) {
        self.counters.drop_some(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_print_back() {
        for s in [
            "unix:/dev/log",
            "udp://127.0.0.1:514",
            "tcp://[::1]:6514",
            "tcp://siem:601",
        ] {
            let t: SyslogTarget = s.parse().expect(s);
            assert_eq!(t.to_string(), s);
        }
        for bad in [
            "/dev/log",
            "unix:",
            "udp://host",
            "tcp://:514",
            "tcp://h:0",
            "http://h:1",
        ] {
            let e = bad.parse::<SyslogTarget>().expect_err(bad);
            assert!(e.contains("unix:") || e.contains("HOST:PORT"), "{e}");
        }
    }

    #[test]
    fn a_message_has_the_rfc5424_header_and_the_line_unchanged() {
        let h = Header {
            rest: "sensor1 portmatrix 42 - -".into(),
        };
        let m = h.message(
            Timestamp::from_nanos(1_000_000_000),
            br#"{"event_type":"alert"}"#,
        );
        assert_eq!(
            String::from_utf8(m).expect("utf-8"),
            r#"<174>1 1970-01-01T00:00:01.000000Z sensor1 portmatrix 42 - - {"event_type":"alert"}"#
        );
    }

    #[test]
    fn lines_become_messages_whatever_the_writes_and_a_full_queue_counts() {
        let (tx, rx) = sync_channel(2);
        let counters = Arc::new(SyslogCounters::default());
        let mut lines = Lines::new(SyslogQueue {
            tx,
            header: Header {
                rest: "h a 1 - -".into(),
            },
            counters: Arc::clone(&counters),
        });
        lines.write_all(b"{\"a\":").expect("write");
        lines.write_all(b"1}\n{\"b\":2}\n{\"c\"").expect("write");
        lines.write_all(b":3}\n").expect("write");
        let got: Vec<String> = rx
            .try_iter()
            .map(|m| String::from_utf8(m).expect("utf-8"))
            .collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].ends_with(" - - {\"a\":1}") && got[1].ends_with(" - - {\"b\":2}"));
        assert_eq!(counters.get().dropped, 1, "the third found the queue full");

        // A line longer than a message is dropped whole, in pieces or not.
        let _ = rx.try_iter().count();
        lines.write_all(&vec![b'x'; MAX_MESSAGE]).expect("write");
        lines.write_all(b"yy\n{\"d\":4}\n").expect("write");
        lines
            .write_all(&[vec![b'z'; MAX_MESSAGE + 1], b"\n".to_vec()].concat())
            .expect("write");
        let got: Vec<Vec<u8>> = rx.try_iter().collect();
        assert_eq!(got.len(), 1);
        assert!(got[0].ends_with(b" - - {\"d\":4}"));
        assert_eq!(counters.get().dropped, 3);
    }
}
