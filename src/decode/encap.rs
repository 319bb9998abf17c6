//! The tunnels and encapsulations a packet was found inside, as a small `Copy`
//! record that travels with the packet, its flow and its events.
//!
//! Only the kinds are kept, outermost first, and the outermost VXLAN or Geneve
//! VNI: cloud traffic mirroring (AWS, Azure vTAP) delivers copies in VXLAN
//! with the mirror session as the VNI, so it tells mirror sessions apart the
//! way the VLAN id tells SPAN sessions apart. Outer addresses, GRE keys and
//! MPLS labels are left out: they describe the capture plumbing, not the flow
//! the matrix judges, and would make every packet record larger.

use std::fmt;

use super::DecodeError;

/// Most encapsulation layers entered in one frame. A frame that nests deeper
/// is `Malformed(TooManyEncapLayers)`: a hostile packet of tunnels in tunnels
/// costs bounded work. Four covers what real networks stack (e.g. ERSPAN in
/// GRE over MPLS in PPPoE).
pub const MAX_ENCAP_DEPTH: usize = 4;

/// One layer that was entered to reach the packet inside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EncapKind {
    /// GRE (IP protocol 47), version 0.
    Gre,
    /// ERSPAN type I: GRE 0x88be without a sequence number, no ERSPAN header.
    Erspan1,
    /// ERSPAN type II: GRE 0x88be, 8-byte header.
    Erspan2,
    /// ERSPAN type III: GRE 0x22eb, 12-byte header (+ 8 with the O flag).
    Erspan3,
    /// VXLAN on UDP 4789.
    Vxlan,
    /// Geneve on UDP 6081.
    Geneve,
    /// An MPLS label stack (EtherType 0x8847 / 0x8848).
    Mpls,
    /// A PPPoE session (EtherType 0x8864).
    Pppoe,
    /// IPv4 or IPv6 directly in IPv4 or IPv6 (IP protocol 4 or 41).
    IpInIp,
    /// GRE version 1, PPTP's enhanced GRE (RFC 2637), carrying PPP: the flow
    /// came through a PPTP VPN.
    Pptp,
    /// GRE in a UDP datagram to port 4754 (RFC 8086): kept apart from `Gre`
    /// because the outer packet is UDP, not IP protocol 47.
    GreInUdp,
    /// 802.1ah Provider Backbone Bridging, MAC-in-MAC (EtherType 0x88e7).
    Pbb,
    /// An 802.1BR E-tag of a port extender (EtherType 0x893f).
    Etag,
}

impl EncapKind {
    /// Every kind, in [`EncapKind::index`] order (for counter arrays).
    pub const ALL: [EncapKind; 13] = [
        EncapKind::Gre,
        EncapKind::Erspan1,
        EncapKind::Erspan2,
        EncapKind::Erspan3,
        EncapKind::Vxlan,
        EncapKind::Geneve,
        EncapKind::Mpls,
        EncapKind::Pppoe,
        EncapKind::IpInIp,
        EncapKind::Pptp,
        EncapKind::GreInUdp,
        EncapKind::Pbb,
        EncapKind::Etag,
    ];

    /// Dense index into [`EncapKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Stable snake_case name, used in events and statistics.
    pub fn as_str(self) -> &'static str {
        match self {
            EncapKind::Gre => "gre",
            EncapKind::Erspan1 => "erspan1",
            EncapKind::Erspan2 => "erspan2",
            EncapKind::Erspan3 => "erspan3",
            EncapKind::Vxlan => "vxlan",
            EncapKind::Geneve => "geneve",
            EncapKind::Mpls => "mpls",
            EncapKind::Pppoe => "pppoe",
            EncapKind::IpInIp => "ip_in_ip",
            EncapKind::Pptp => "pptp",
            EncapKind::GreInUdp => "gre_in_udp",
            EncapKind::Pbb => "pbb",
            EncapKind::Etag => "etag",
        }
    }

    /// Why a frame cut inside this layer (its header, or the header it
    /// promises next) is malformed.
    pub(super) fn truncated(self) -> DecodeError {
        match self {
            EncapKind::Gre | EncapKind::Pptp | EncapKind::GreInUdp => DecodeError::GreTruncated,
            EncapKind::Erspan1 | EncapKind::Erspan2 | EncapKind::Erspan3 => {
                DecodeError::ErspanTruncated
            }
            EncapKind::Vxlan => DecodeError::VxlanTruncated,
            EncapKind::Geneve => DecodeError::GeneveTruncated,
            EncapKind::Mpls => DecodeError::MplsTruncated,
            EncapKind::Pppoe => DecodeError::PppoeTruncated,
            EncapKind::IpInIp => DecodeError::TruncatedIp,
            EncapKind::Pbb | EncapKind::Etag => DecodeError::TruncatedLink,
        }
    }
}

impl fmt::Display for EncapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// "No VNI", in three bytes so that [`Encap`] stays byte-aligned: the one
/// VNI that cannot be reported is 16,777,215 (all ones), which no
/// deployment uses as a segment id in practice.
const NO_VNI: [u8; 3] = [0xff; 3];

/// The layers entered, outermost first (at most [`MAX_ENCAP_DEPTH`]), and the
/// outermost VNI. `Copy`, 8 bytes (byte-aligned), no allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Encap {
    /// 24 bits, big-endian; [`NO_VNI`] when there is none. Bytes, not a
    /// `u32`, so the struct stays byte-aligned and `PacketMeta` small.
    vni: [u8; 3],
    /// `layers[..len]` are the layers; the rest stay [`EncapKind::Gre`], so
    /// the derived equality compares only what was pushed.
    layers: [EncapKind; MAX_ENCAP_DEPTH],
    len: u8,
}

impl Encap {
    /// No encapsulation: the packet was on the capture's own link.
    pub const NONE: Encap = Encap {
        vni: NO_VNI,
        layers: [EncapKind::Gre; MAX_ENCAP_DEPTH],
        len: 0,
    };

    /// The layers, outermost first.
    pub fn layers(&self) -> &[EncapKind] {
        self.layers.get(..usize::from(self.len)).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The outermost VXLAN or Geneve VNI.
    pub fn vni(&self) -> Option<u32> {
        let [a, b, c] = self.vni;
        (self.vni != NO_VNI).then_some(u32::from_be_bytes([0, a, b, c]))
    }

    /// Records one more (inner) layer, or refuses past [`MAX_ENCAP_DEPTH`].
    pub(super) fn push(&mut self, kind: EncapKind) -> Result<(), DecodeError> {
        let slot = self
            .layers
            .get_mut(usize::from(self.len))
            .ok_or(DecodeError::TooManyEncapLayers)?;
        *slot = kind;
        self.len += 1;
        Ok(())
    }

    /// Keeps the first (outermost) VNI seen; `vni` must fit in 24 bits.
    pub(super) fn set_vni(&mut self, vni: u32) {
        if self.vni == NO_VNI {
            let [_, a, b, c] = vni.to_be_bytes();
            self.vni = [a, b, c];
        }
    }
}

impl Default for Encap {
    fn default() -> Self {
        Encap::NONE
    }
}

impl fmt::Debug for Encap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encap")
            .field("layers", &self.layers())
            .field("vni", &self.vni())
            .finish()
    }
}
