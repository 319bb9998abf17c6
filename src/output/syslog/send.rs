//! The sending thread of `--syslog`: one connection, messages from the
//! queue in order, and after a failure a new connection with a growing
//! pause (tcp, unix stream) while the queue absorbs what comes meanwhile.
//!
//! A message that failed is dropped and counted, never sent again: after a
//! stream write fails part of it may have gone out, and a SIEM that sees an
//! alert twice counts it twice.

use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{SyslogCounters, SyslogTarget};

/// The longest message sent (a UDP datagram holds at most 65,507 bytes);
/// an event longer than this is dropped and counted. rsyslog cuts messages
/// beyond its `maxMessageSize` (8 KiB by default) itself.
pub const MAX_MESSAGE: usize = 65_000;
/// A receiver that takes nothing for this long is treated as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The pauses between attempts to connect again: from the first to the longest.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// A connection to the receiver.
pub(super) enum Conn {
    Udp(UdpSocket),
    /// Octet-counted framing: `LEN SP MSG`.
    Tcp(TcpStream),
    UnixDgram(UnixDatagram),
    /// Newline framing, as syslog-ng's `unix-stream()` reads.
    UnixStream(UnixStream),
}

impl Conn {
    pub(super) fn open(target: &SyslogTarget) -> io::Result<Conn> {
        let conn = match target {
            SyslogTarget::Udp(addr) => {
                let to = resolve(addr)?;
                let local = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
                let s = UdpSocket::bind(local)?;
                s.connect(to)?;
                Conn::Udp(s)
            }
            SyslogTarget::Tcp(addr) => {
                let s = TcpStream::connect_timeout(&resolve(addr)?, CONNECT_TIMEOUT)?;
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                s.set_nodelay(true)?;
                Conn::Tcp(s)
            }
            SyslogTarget::Unix(path) => {
                let s = UnixDatagram::unbound()?;
                match s.connect(path) {
                    Ok(()) => {
                        s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                        Conn::UnixDgram(s)
                    }
                    // EPROTOTYPE: the socket is a stream socket.
                    Err(e) if e.raw_os_error() == Some(nix::libc::EPROTOTYPE) => {
                        let s = UnixStream::connect(path)?;
                        s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                        Conn::UnixStream(s)
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(conn)
    }

    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        match self {
            Conn::Udp(s) => s.send(msg).map(drop),
            Conn::UnixDgram(s) => s.send(msg).map(drop),
            Conn::Tcp(s) => {
                let mut framed = Vec::with_capacity(msg.len() + 8);
                let _ = write!(framed, "{} ", msg.len());
                framed.extend_from_slice(msg);
                s.write_all(&framed)
            }
            Conn::UnixStream(s) => {
                let mut framed = Vec::with_capacity(msg.len() + 1);
                framed.extend_from_slice(msg);
                framed.push(b'\n');
                s.write_all(&framed)
            }
        }
    }

    /// Whether a failure means connecting again: a failed stream may have
    /// sent part of a message, so it is not written to again; a unix
    /// datagram socket stays tied to the receiver's old socket, which a
    /// restarted daemon replaced. UDP has nothing to connect again to.
    fn reconnects(&self) -> bool {
        !matches!(self, Conn::Udp(_))
    }
}

fn resolve(addr: &str) -> io::Result<std::net::SocketAddr> {
    addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("`{addr}` resolves to no address"),
        )
    })
}

pub(super) struct Sender {
    pub target: SyslogTarget,
    pub conn: Option<Conn>,
    pub counters: Arc<SyslogCounters>,
    /// The run is over: a receiver that is away is not waited for.
    pub finishing: Arc<AtomicBool>,
}

impl Sender {
    /// Send until the queue's sending side is gone and the queue is empty.
    pub(super) fn run(mut self, rx: Receiver<Vec<u8>>) {
        let mut pause = FIRST_PAUSE;
        let mut next_try = Instant::now();
        let mut warned = false;
        while let Ok(msg) = rx.recv() {
            // The line is at most MAX_MESSAGE; the header adds at most 400 bytes.
            if msg.len() > MAX_MESSAGE + 400 {
                self.counters.drop_some(1);
                continue;
            }
            loop {
                let Some(conn) = &mut self.conn else {
                    if self.finishing.load(Ordering::Relaxed) {
                        self.counters.drop_some(1);
                        break;
                    }
                    let now = Instant::now();
                    if now < next_try {
                        std::thread::sleep((next_try - now).min(Duration::from_millis(50)));
                        continue;
                    }
                    match Conn::open(&self.target) {
                        Ok(c) => {
                            self.conn = Some(c);
                            self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                            pause = FIRST_PAUSE;
                            crate::diag!("portmatrix: syslog: connected to {} again", self.target);
                            warned = false;
                        }
                        Err(_) => {
                            next_try = now + pause;
                            pause = (pause * 2).min(LONGEST_PAUSE);
                        }
                    }
                    continue;
                };
                match conn.send(&msg) {
                    Ok(()) => {
                        self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        self.counters.drop_some(1);
                        if !warned {
                            crate::diag!(
                                "portmatrix: warning: syslog: sending to {} failed: {e}; messages \
are dropped and counted (stats.syslog.dropped) until it takes them again",
                                self.target
                            );
                            warned = true;
                        }
                        if conn.reconnects() {
                            self.conn = None;
                            next_try = Instant::now();
                        }
                    }
                }
                break;
            }
        }
    }
}
