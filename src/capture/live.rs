//! Live capture through libpcap (on Linux, TPACKET_V3 ring buffers), yielding
//! the same [`RawPacket`]s as the file reader so that live and offline share
//! every later stage.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags};
use pcap::{Active, Capture, Device};

use super::RawPacket;
use crate::timestamp::Timestamp;

/// How to open an interface.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub promiscuous: bool,
    /// Bytes kept of each packet: the headers are all the classifier needs.
    pub snaplen: u32,
    /// The kernel ring buffer: the slack that absorbs bursts.
    pub buffer_bytes: u32,
    /// A BPF expression (tcpdump syntax) applied in the kernel.
    pub filter: Option<String>,
    /// How long the kernel may hold packets in a ring block before handing
    /// them over: bounds the latency added by capture.
    pub timeout_ms: u16,
}

/// Why an interface could not be captured (further).
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "no interface named `{name}`; the interfaces here are: {available} (`any` captures on all of them)"
    )]
    NoSuchInterface { name: String, available: String },

    #[error(
        "not allowed to capture on `{name}` ({detail}): run portmatrix as root, optionally with \
`--user USER` to drop privileges once the capture is open, or give the binary the capabilities: \
`sudo setcap cap_net_raw,cap_net_admin=eip $(command -v portmatrix)`"
    )]
    PermissionDenied { name: String, detail: String },

    #[error("bad capture filter `{expression}` for `{name}`: {detail}")]
    Filter {
        name: String,
        expression: String,
        detail: String,
    },

    #[error("cannot capture on `{name}`: {detail}")]
    Open { name: String, detail: String },

    #[error(
        "capture on `{name}` failed: {detail}; use `--retry` to wait for the interface to come back"
    )]
    Failed { name: String, detail: String },
}

/// Counters as libpcap reports them, widened so that its 32-bit counters
/// can wrap over a run of days without going backwards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelStats {
    /// Packets the kernel handed to the capture (after the filter).
    pub received: u64,
    /// Packets the kernel dropped: the ring buffer was full.
    pub dropped: u64,
    /// Packets the interface or its driver dropped.
    pub interface_dropped: u64,
}

/// The most packets [`LiveCapture::dispatch`] hands over at once: a
/// thread that cannot keep up still looks at the clock and at a stop
/// request between rounds.
pub const DISPATCH_MAX: usize = 4096;

/// One interface being captured.
pub struct LiveCapture {
    name: String,
    capture: Capture<Active>,
    link_type: u16,
    /// The ring may hold packets: read it without waiting first.
    readable: bool,
    /// Last raw libpcap counters, to widen them (see [`KernelStats`]).
    last_raw: (u32, u32, u32),
    totals: KernelStats,
    packets: u64,
}

impl fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LiveCapture")
            .field("name", &self.name)
            .field("link_type", &self.link_type)
            .finish()
    }
}

impl LiveCapture {
    /// Open `name` (or `any`) with `options`. Needs CAP_NET_RAW (and
    /// CAP_NET_ADMIN for promiscuous mode).
    pub fn open(name: &str, options: &LiveOptions) -> Result<LiveCapture, LiveError> {
        let open_error = |detail: String| LiveError::Open {
            name: name.to_string(),
            detail,
        };
        let inactive = Capture::from_device(name).map_err(|e| open_error(e.to_string()))?;
        let activated = inactive
            .promisc(options.promiscuous)
            .snaplen(i32::try_from(options.snaplen).unwrap_or(i32::MAX))
            .buffer_size(i32::try_from(options.buffer_bytes).unwrap_or(i32::MAX))
            .timeout(i32::from(options.timeout_ms))
            .open();
        let mut capture = match activated {
            Ok(c) => c,
            Err(e) => return Err(classify_open_error(name, e.to_string())),
        };
        if let Some(expression) = &options.filter {
            capture
                .filter(expression, true)
                .map_err(|e| LiveError::Filter {
                    name: name.to_string(),
                    expression: expression.clone(),
                    detail: e.to_string(),
                })?;
        }
        let link_type = u16::try_from(capture.get_datalink().0).unwrap_or(u16::MAX);
        // With TPACKET_V3, a blocking read waits for a full or timed-out ring
        // block, and with no traffic at all it waits forever: reading without
        // blocking and polling the descriptor ourselves keeps us awake.
        let capture = capture
            .setnonblock()
            .map_err(|e| open_error(e.to_string()))?;
        Ok(LiveCapture {
            name: name.to_string(),
            capture,
            link_type,
            readable: true,
            last_raw: (0, 0, 0),
            totals: KernelStats::default(),
            packets: 0,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the next [`LiveCapture::dispatch`] may wait: the ring ran dry.
    pub fn drained(&self) -> bool {
        !self.readable
    }

    /// Hand the packets waiting in the ring to `each`, at most
    /// [`DISPATCH_MAX`] at a time, and return how many there were; 0 after
    /// waiting up to `wait` (or until `wake` is readable: another thread
    /// asks this one to stop) with none coming. It waits only once the
    /// ring ran dry ([`LiveCapture::drained`]).
    ///
    /// Through `pcap_dispatch`, each packet is read where the kernel wrote
    /// it: `pcap_next_ex` copies every packet out of the ring first. The
    /// wait blocks in `poll`: a wakeup per ring block the kernel hands
    /// over, or per `wait` when idle.
    pub fn dispatch(
        &mut self,
        wait: Duration,
        wake: Option<BorrowedFd<'_>>,
        mut each: impl FnMut(&RawPacket<'_>),
    ) -> Result<usize, LiveError> {
        if !self.readable && !self.wait_readable(wait, wake)? {
            return Ok(0);
        }
        let (link_type, packets) = (self.link_type, &mut self.packets);
        let handed = self.capture.dispatch(Some(DISPATCH_MAX), |p| {
            *packets += 1;
            let secs = p.header.ts.tv_sec;
            let micros = u64::try_from(p.header.ts.tv_usec).unwrap_or(0);
            each(&RawPacket {
                ts: Timestamp::from_secs_micros(secs, micros),
                link_type,
                data: p.data,
                orig_len: p.header.len,
                interface: 0,
                offset: *packets,
            });
        });
        let handed = handed.map_err(|e| failed(&self.name, e.to_string()))?;
        // Fewer than asked for: the ring is empty, wait in `poll` next time.
        self.readable = handed == DISPATCH_MAX;
        Ok(handed)
    }

    /// Block until the ring has a packet, `wake` is readable or `wait` has
    /// passed; `true` for the first two (and for an error the read reports).
    fn wait_readable(
        &mut self,
        wait: Duration,
        wake: Option<BorrowedFd<'_>>,
    ) -> Result<bool, LiveError> {
        let ring = self.capture.as_fd();
        let mut fds = [
            PollFd::new(ring, PollFlags::POLLIN),
            PollFd::new(wake.unwrap_or(ring), PollFlags::POLLIN),
        ];
        let fds = &mut fds[..if wake.is_some() { 2 } else { 1 }];
        // Rounded up: a wait of 0.4 ms must not become a busy loop.
        let millis = wait.as_micros().div_ceil(1000);
        let timeout = u16::try_from(millis).unwrap_or(u16::MAX);
        match poll(fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => Ok(false),
            Ok(_) => {
                self.readable = true;
                Ok(true)
            }
            Err(e) => Err(failed(&self.name, e.to_string())),
        }
    }

    /// Is the interface still there and up? libpcap keeps waiting quietly
    /// when an interface goes down (so capture resumes when it comes back),
    /// but a user must hear about it: a SPAN port that went dark is silence
    /// that looks like a quiet network.
    pub fn check_link(&self) -> Result<(), LiveError> {
        if self.name == "any" {
            return Ok(());
        }
        let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
            return Ok(());
        };
        let mut found = false;
        for a in addrs.filter(|a| a.interface_name == self.name) {
            found = true;
            if a.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP) {
                return Ok(());
            }
        }
        let detail = if found {
            "the interface went down"
        } else {
            "the interface disappeared"
        };
        Err(failed(&self.name, detail.to_string()))
    }

    /// The kernel's counters so far.
    pub fn stats(&mut self) -> KernelStats {
        if let Ok(s) = self.capture.stats() {
            let (r, d, i) = self.last_raw;
            self.totals.received += u64::from(s.received.wrapping_sub(r));
            self.totals.dropped += u64::from(s.dropped.wrapping_sub(d));
            self.totals.interface_dropped += u64::from(s.if_dropped.wrapping_sub(i));
            self.last_raw = (s.received, s.dropped, s.if_dropped);
        }
        self.totals
    }
}

fn failed(name: &str, detail: String) -> LiveError {
    LiveError::Failed {
        name: name.to_string(),
        detail,
    }
}

/// Turn libpcap's activation message into an error that says what to do.
fn classify_open_error(name: &str, detail: String) -> LiveError {
    let lower = detail.to_ascii_lowercase();
    if lower.contains("permission") || lower.contains("not permitted") {
        return LiveError::PermissionDenied {
            name: name.to_string(),
            detail,
        };
    }
    if lower.contains("no such device") || lower.contains("doesn't exist") {
        let available = Device::list()
            .map(|devices| {
                devices
                    .into_iter()
                    .map(|d| d.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        return LiveError::NoSuchInterface {
            name: name.to_string(),
            available: if available.is_empty() {
                "none visible".to_string()
            } else {
                available
            },
        };
    }
    LiveError::Open {
        name: name.to_string(),
        detail,
    }
}
