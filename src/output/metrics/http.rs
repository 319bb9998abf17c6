//! `--metrics ADDR`: a tiny HTTP/1.1 server on its own thread that answers
//! `GET /metrics` and nothing else. One request per connection, one
//! connection at a time, a request of at most [`MAX_REQUEST`] bytes read
//! within [`TIMEOUT`]: a scraper needs no more, and a client that talks
//! slowly or too much costs a second, never the capture.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags};

use super::Board;

/// The longest request head read; longer ones are answered 431.
const MAX_REQUEST: usize = 8192;
/// The longest a client may take to send its request, and to take the answer.
const TIMEOUT: Duration = Duration::from_secs(2);
/// How often the idle server looks whether the run is over.
const STOP_CHECK_MS: u16 = 200;

/// The running server.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Serve `board` on `listener` (bound by the caller before privileges
    /// are dropped, when threads may not exist yet).
    pub fn start(listener: TcpListener, board: Arc<Board>) -> io::Result<MetricsServer> {
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("pm-metrics".into())
            .spawn(move || serve(&listener, &board, &stopped))?;
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens (the port, when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(listener: &TcpListener, board: &Board, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, STOP_CHECK_MS), Ok(n) if n > 0) {
            continue;
        }
        // A client that failed is its own problem: the next one is served.
        if let Ok((stream, _)) = listener.accept() {
            let _ = answer(stream, board);
        }
    }
}

/// Read one request head and answer it.
fn answer(mut stream: TcpStream, board: &Board) -> io::Result<()> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let complete = loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break true;
        }
        if head.len() > MAX_REQUEST {
            break false;
        }
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e),
        }
    };
    let (status, body) = if !complete {
        ("431 Request Header Fields Too Large", String::new())
    } else {
        route(&head, board)
    };
    let head_only = head.starts_with(b"HEAD ");
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        response.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&response)?;
    stream.flush()
}

/// The status and body for a request head.
fn route(head: &[u8], board: &Board) -> (&'static str, String) {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, target) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    // A query string (`/metrics?x=y`) is allowed and ignored.
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => ("200 OK", board.render()),
        (b"GET" | b"HEAD", _) => ("404 Not Found", "only /metrics is served\n".into()),
        _ => ("405 Method Not Allowed", String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::metrics::Snapshot;

    fn ask(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(request).expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    }

    #[test]
    fn it_answers_metrics_and_refuses_the_rest() {
        let board = Arc::new(Board::default());
        board.publish(Snapshot::default());
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let server = MetricsServer::start(listener, board).expect("server");
        let addr = server.addr();
        let ok = ask(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("# TYPE portmatrix_evictions_total counter\n"));
        assert!(ask(addr, b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        assert!(ask(addr, b"POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
        let huge = [b"GET /metrics HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 9_000]].concat();
        assert!(ask(addr, &huge).starts_with("HTTP/1.1 431"));
        server.stop();
    }
}
