//! BPF (tcpdump syntax) on packets read from files: libpcap compiles the
//! expression for a "dead" capture of the packet's link type and runs it in
//! user space (`pcap_offline_filter`), exactly as tcpdump -r does.
//!
//! A file (pcapng) may hold several link types, and an expression compiles
//! differently for each, so programs are compiled on first sight of each
//! link type and kept: a capture holds a handful of link types at most.

use pcap::{BpfProgram, Capture, Linktype};

use super::FilterError;

/// `LINKTYPE_ETHERNET`: what an expression is checked against up front.
const ETHERNET: u16 = 1;

/// The DLT libpcap's compiler knows for a file's `LINKTYPE_*` value. They are
/// the same number except for a few old types (libpcap's `linktype_to_dlt`
/// maps them when it reads a file; `pcap_open_dead` takes a DLT as it is).
fn dlt(link_type: u16) -> i32 {
    match link_type {
        100 => 11, // ATM_RFC1483
        101 => 12, // RAW (Linux's DLT_RAW)
        102 => 15, // SLIP_BSDOS
        103 => 16, // PPP_BSDOS
        106 => 19, // ATM_CLIP
        lt => i32::from(lt),
    }
}

/// Compile `expression` for `link_type`, or say why it does not compile.
fn compile(expression: &str, link_type: u16) -> Result<BpfProgram, String> {
    let dead = Capture::dead(Linktype(dlt(link_type))).map_err(|e| e.to_string())?;
    dead.compile(expression, true).map_err(|e| e.to_string())
}

/// Check an expression before a run, so that a typo is a usage error and not
/// a run that silently matches nothing.
pub fn check(expression: &str) -> Result<(), FilterError> {
    compile(expression, ETHERNET)
        .map(drop)
        .map_err(|detail| FilterError::Bpf {
            expression: expression.to_string(),
            detail,
        })
}

/// One expression, compiled per link type as they appear.
pub struct Bpf {
    expression: String,
    /// `None`: the expression does not compile for that link type (for
    /// example `ether host` on raw IP): its packets do not match.
    programs: Vec<(u16, Option<BpfProgram>)>,
}

impl Bpf {
    pub fn new(expression: &str) -> Bpf {
        Bpf {
            expression: expression.to_string(),
            programs: Vec::new(),
        }
    }

    /// Does the frame match? Frames cut short by the snap length are
    /// filtered on the bytes captured.
    pub fn matches(&mut self, link_type: u16, frame: &[u8]) -> bool {
        let slot = match self.programs.iter().position(|(lt, _)| *lt == link_type) {
            Some(i) => i,
            None => {
                let program = match compile(&self.expression, link_type) {
                    Ok(p) => Some(p),
                    Err(detail) => {
                        // Once per link type, not per packet.
                        crate::diag!(
                            "portmatrix: warning: --bpf `{}` does not apply to link type {link_type} \
({detail}); its packets are filtered out",
                            self.expression
                        );
                        None
                    }
                };
                self.programs.push((link_type, program));
                self.programs.len() - 1
            }
        };
        self.programs[slot]
            .1
            .as_ref()
            .is_some_and(|p| p.filter(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet, IPv4, TCP 10.0.0.1:40000 -> 10.0.0.2:1972, SYN.
    const SYN: [u8; 54] = [
        0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0x08, 0x00, //
        0x45, 0x00, 0x00, 0x28, 0x00, 0x01, 0x00, 0x00, 0x40, 0x06, 0x00, 0x00, //
        10, 0, 0, 1, 10, 0, 0, 2, //
        0x9c, 0x40, 0x07, 0xb4, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ];

    #[test]
    fn expressions_match_as_tcpdump_would() {
        let mut port = Bpf::new("tcp port 1972");
        assert!(port.matches(ETHERNET, &SYN));
        let mut other = Bpf::new("udp or port 80");
        assert!(!other.matches(ETHERNET, &SYN));
        let mut host = Bpf::new("src host 10.0.0.1 and tcp[tcpflags] & tcp-syn != 0");
        assert!(host.matches(ETHERNET, &SYN));
        // Raw IP (101): the same expression compiles for it and reads the same packet.
        let mut raw = Bpf::new("tcp port 1972");
        assert!(raw.matches(101, &SYN[14..]));
    }

    #[test]
    fn a_bad_expression_is_refused_up_front() {
        let e = check("tcp port nonsense").expect_err("bad").to_string();
        assert!(e.contains("`tcp port nonsense`"), "{e}");
        assert!(check("tcp and not port 22").is_ok());
    }

    #[test]
    fn an_expression_that_does_not_fit_a_link_type_matches_nothing_there() {
        // Link-layer addresses do not exist on raw IP.
        let mut mac = Bpf::new("ether host 00:11:22:33:44:55");
        assert!(mac.matches(ETHERNET, &SYN));
        assert!(!mac.matches(101, &SYN[14..]));
    }
}
