//! Small captures written byte by byte (classic pcap, Ethernet, microseconds),
//! so a test states exactly what crossed the wire, and the events
//! `portmatrix analyze` makes of them.
// Each test crate that includes this file uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// TCP flag bits.
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

pub type Socket = ([u8; 4], u16);

pub struct Pcap {
    bytes: Vec<u8>,
    usec: u32,
    /// Applied to the frames written from now on.
    pub ttl: u8,
    pub mac: u8,
    /// Frames go to the Ethernet broadcast address (ff:ff:ff:ff:ff:ff).
    pub broadcast: bool,
    pub vlan: Option<u16>,
    /// The IP identification of the next packet (it counts up).
    ip_id: u16,
}

impl Default for Pcap {
    fn default() -> Self {
        Pcap::new()
    }
}

impl Pcap {
    pub fn new() -> Pcap {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&4u16.to_le_bytes());
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&65535u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        Pcap {
            bytes,
            usec: 0,
            ttl: 64,
            mac: 0x02,
            broadcast: false,
            vlan: None,
            ip_id: 1,
        }
    }

    /// Move the clock on by `usec` microseconds before the next frame.
    pub fn wait(&mut self, usec: u32) {
        self.usec += usec;
    }

    /// One IPv4 packet carrying `l4` (protocol `proto`) in an Ethernet frame.
    fn frame(&mut self, proto: u8, src: [u8; 4], dst: [u8; 4], l4: &[u8]) {
        let mut f = if self.broadcast {
            vec![0xff; 6]
        } else {
            vec![self.mac, 0, 0, 0, 0, 2]
        };
        f.extend_from_slice(&[self.mac, 0, 0, 0, 0, 1]);
        if let Some(vlan) = self.vlan {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&vlan.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + l4.len()) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&self.ip_id.to_be_bytes());
        // A checksum that changes with the TTL, as a router's would.
        f.extend_from_slice(&[0x40, 0, self.ttl, proto, 0xab, self.ttl]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        f.extend_from_slice(l4);
        self.usec += 1000;
        self.bytes
            .extend_from_slice(&1_700_000_000u32.to_le_bytes());
        self.bytes.extend_from_slice(&self.usec.to_le_bytes());
        self.bytes
            .extend_from_slice(&(f.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(f.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(&f);
    }

    /// A TCP segment; the IP id counts up unless `same_id` (a mirrored copy).
    pub fn tcp(&mut self, src: Socket, dst: Socket, flags: u8, payload: &[u8]) {
        let mut seg = Vec::new();
        seg.extend_from_slice(&src.1.to_be_bytes());
        seg.extend_from_slice(&dst.1.to_be_bytes());
        seg.extend_from_slice(&u32::from(self.ip_id).to_be_bytes());
        seg.extend_from_slice(&[0, 0, 0, 1, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        seg.extend_from_slice(payload);
        self.frame(6, src.0, dst.0, &seg);
        self.ip_id = self.ip_id.wrapping_add(1);
    }

    pub fn udp(&mut self, src: Socket, dst: Socket, payload: &[u8]) {
        let mut dgram = Vec::new();
        dgram.extend_from_slice(&src.1.to_be_bytes());
        dgram.extend_from_slice(&dst.1.to_be_bytes());
        dgram.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        dgram.extend_from_slice(&[0, 0]);
        dgram.extend_from_slice(payload);
        self.frame(17, src.0, dst.0, &dgram);
        self.ip_id = self.ip_id.wrapping_add(1);
    }

    /// The packet just written once more, as seen on the other side of a
    /// router: TTL one less (so another checksum), other MACs, 100 µs later.
    pub fn mirror_last(&mut self, last: impl FnOnce(&mut Pcap)) {
        self.ip_id = self.ip_id.wrapping_sub(1);
        self.usec = self.usec.saturating_sub(900);
        let (ttl, mac) = (self.ttl, self.mac);
        self.ttl -= 1;
        self.mac ^= 0x10;
        last(self);
        self.ttl = ttl;
        self.mac = mac;
    }

    /// A connection: handshake, the client's first payload, the server's reply.
    pub fn conversation(&mut self, client: Socket, server: Socket, ask: &[u8], answer: &[u8]) {
        self.tcp(client, server, SYN, b"");
        self.tcp(server, client, SYN | ACK, b"");
        self.tcp(client, server, ACK, b"");
        if !ask.is_empty() {
            self.tcp(client, server, PSH | ACK, ask);
        }
        if !answer.is_empty() {
            self.tcp(server, client, PSH | ACK, answer);
        }
    }

    /// Write the capture to a file of the test's own temp directory.
    pub fn write(&self, test: &str, name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("portmatrix-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(name);
        std::fs::write(&path, &self.bytes).expect("write capture");
        path
    }
}

/// `portmatrix analyze -q --json --flows ARGS… PATH`, which must succeed: its events.
pub fn analyze_events(path: &Path, args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_portmatrix"))
        .args(["analyze", "-q", "--json", "--flows"])
        .args(args)
        .arg(path)
        .output()
        .expect("run analyze");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}
