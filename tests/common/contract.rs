//! The output contract's `alert` and `flow` events, strictly: an unknown
//! field is an error, so the contract cannot grow by accident, and a field
//! added on purpose is added here once for every test that checks events.
// Each test crate that includes this file reads a part of the fields.
#![allow(dead_code)]

use serde::Deserialize;

/// An `alert` or `flow` event. Fields that only some runs carry (a site's
/// roles, `--flows` counters, evidence, tunnels) are optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowEvent {
    pub timestamp: String,
    pub event_type: String,
    pub flow_id: u64,
    pub community_id: String,
    pub proto: String,
    pub src_ip: String,
    pub src_port: u16,
    pub dest_ip: String,
    pub dest_port: u16,
    pub verdict: String,
    pub severity: String,
    pub rule_ids: Vec<String>,
    pub direction: String,
    pub vlan: Option<u16>,
    pub encap: Option<Vec<String>>,
    pub vni: Option<u32>,
    pub src_roles: Option<Vec<String>>,
    pub dest_roles: Option<Vec<String>>,
    pub suppressed: Option<bool>,
    pub exception: Option<String>,
    pub app_protocol_seen: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    pub pkts_toserver: Option<u64>,
    pub pkts_toclient: Option<u64>,
    pub bytes_toserver: Option<u64>,
    pub bytes_toclient: Option<u64>,
    pub tcp_state: Option<String>,
    pub reason: Option<String>,
    pub one_sided: Option<bool>,
    pub resumed: Option<bool>,
    pub evidence: Option<String>,
}

impl FlowEvent {
    /// The source's roles (`--site` runs); none without a site.
    pub fn src_roles(&self) -> &[String] {
        self.src_roles.as_deref().unwrap_or_default()
    }

    /// The destination's roles (`--site` runs); none without a site.
    pub fn dest_roles(&self) -> &[String] {
        self.dest_roles.as_deref().unwrap_or_default()
    }
}
