//! Which hosts are servers, and what they are. A host that accepted
//! documented flows is a server: the diagram keeps it as its own node however
//! many clients there are, labelled with its role. The role is the site's
//! (`dest_roles`, when the events were written with `--site`), else the
//! system that explains most of the host's documented ports, as
//! `site suggest` guesses it: each rule covering a port names the systems
//! that listen on it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::matrix::{PortMatrix, System};
use crate::transport::Transport;

/// Servers remembered (by first documented flow); beyond, new ones are not
/// (memory bound under a flood): they are drawn as clients' subnets are.
pub const MAX_SERVERS_SEEN: usize = 4_096;
/// Servers the diagram keeps as their own node, the busiest first.
pub const MAX_SERVERS: usize = 40;
/// Documented ports remembered per server.
const MAX_PORTS: usize = 64;

/// What the documented flows showed of one server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSeen {
    /// Documented flows it accepted.
    pub documented: u64,
    /// Per documented port: flows, and the rule ids of the first flow.
    pub ports: BTreeMap<(Transport, u16), (u64, Vec<String>)>,
    /// The systems a site inventory gives it (`dest_roles`), if the events say.
    pub site_roles: Option<Vec<String>>,
}

impl ServerSeen {
    /// Keep the smallest of the roles given (not the first), so the role
    /// does not depend on the order the flows came in.
    fn take_roles(&mut self, roles: Option<Vec<String>>) {
        let Some(roles) = roles.filter(|r| r.iter().any(|n| n != "unknown")) else {
            return;
        };
        if self.site_roles.as_ref().is_none_or(|kept| roles < *kept) {
            self.site_roles = Some(roles);
        }
    }
}

/// Every server seen, by address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Servers(pub BTreeMap<IpAddr, ServerSeen>);

impl Servers {
    /// Count one documented flow to `server` on `port`.
    pub fn add(
        &mut self,
        server: IpAddr,
        port: (Transport, u16),
        rule_ids: &[String],
        site_roles: Option<Vec<String>>,
    ) {
        if self.0.len() >= MAX_SERVERS_SEEN && !self.0.contains_key(&server) {
            return;
        }
        let s = self.0.entry(server).or_default();
        s.documented += 1;
        s.take_roles(site_roles);
        if let Some(p) = s.ports.get_mut(&port) {
            p.0 += 1;
            // The smallest list, not the first: the same whatever the order.
            if rule_ids < p.1.as_slice() {
                p.1 = rule_ids.to_vec();
            }
        } else if s.ports.len() < MAX_PORTS {
            s.ports.insert(port, (1, rule_ids.to_vec()));
        }
    }

    /// The roles another sensor's copy of a counted flow gives `server`
    /// (two sensors' site files may differ): nothing is counted.
    pub fn note_roles(&mut self, server: IpAddr, site_roles: Option<Vec<String>>) {
        if let Some(s) = self.0.get_mut(&server) {
            s.take_roles(site_roles);
        }
    }

    /// The servers the diagram names: the [`MAX_SERVERS`] that accepted the
    /// most documented flows (ties by address), each with its role.
    pub fn kept(&self, matrix: &PortMatrix) -> BTreeMap<IpAddr, Option<String>> {
        // A multicast group is no host: its groups fold into their subnet.
        let mut ranked: Vec<(&IpAddr, &ServerSeen)> =
            self.0.iter().filter(|(ip, _)| !ip.is_multicast()).collect();
        ranked.sort_by(|a, b| b.1.documented.cmp(&a.1.documented).then(a.0.cmp(b.0)));
        let mut roles = self.roles(matrix);
        ranked
            .iter()
            .take(MAX_SERVERS)
            .map(|(ip, _)| (**ip, roles.remove(*ip).flatten()))
            .collect()
    }

    /// The role of each server: the site's, or the best guess from the
    /// matrix; `None` when no rule names a listening system.
    pub fn roles(&self, matrix: &PortMatrix) -> BTreeMap<IpAddr, Option<String>> {
        self.0
            .iter()
            .map(|(ip, s)| {
                let role = match &s.site_roles {
                    Some(r) => Some(r.join("+")),
                    None => guess(s, matrix),
                };
                (*ip, role)
            })
            .collect()
    }
}

/// The system that listens on most of the server's documented ports (then
/// on its busiest ones); a tie that remains is named as such ("a or b",
/// "a or b or …" beyond two).
fn guess(s: &ServerSeen, matrix: &PortMatrix) -> Option<String> {
    // Per system: (distinct ports explained, flows on them).
    let mut score: BTreeMap<System, (usize, u64)> = BTreeMap::new();
    for (flows, ids) in s.ports.values() {
        let mut systems: Vec<System> = ids
            .iter()
            .filter_map(|id| matrix.find(id))
            .filter(|r| !r.listener_systems.is_any())
            .flat_map(|r| r.listener_systems.iter())
            .collect();
        systems.sort();
        systems.dedup();
        for sys in systems {
            let e = score.entry(sys).or_default();
            e.0 += 1;
            e.1 += flows;
        }
    }
    let best = score.values().max()?;
    let names: Vec<&str> = score
        .iter()
        .filter(|(_, v)| *v == best)
        .map(|(s, _)| s.as_str())
        .collect();
    // Three or more left tied: the ports say little; two names and "…" fit the diagram.
    Some(match names.as_slice() {
        [a, b, _, ..] => format!("{a} or {b} or \u{2026}"),
        _ => names.join(" or "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_system_explaining_most_ports_is_the_role() {
        let matrix = PortMatrix::builtin().expect("built-in matrix");
        let mut servers = Servers::default();
        let ip: IpAddr = "10.10.1.10".parse().expect("ip");
        // 443 is shared by many systems; Tomcat's rule names the AACC server.
        for _ in 0..5 {
            servers.add(
                ip,
                (Transport::Tcp, 443),
                &ids(&["2.2.2#2", "2.2.2#28", "2.2.4#2", "2.3.1#2"]),
                None,
            );
        }
        servers.add(ip, (Transport::Tcp, 8080), &ids(&["2.2.2#23"]), None);
        let roles = servers.roles(&matrix);
        assert_eq!(roles[&ip].as_deref(), Some("aacc_server"));
        assert_eq!(servers.0[&ip].documented, 6);
    }

    #[test]
    fn the_site_roles_win_and_unknown_is_no_role() {
        let matrix = PortMatrix::builtin().expect("built-in matrix");
        let mut servers = Servers::default();
        let ip: IpAddr = "10.10.1.12".parse().expect("ip");
        let unknown = Some(vec!["unknown".to_string()]);
        servers.add(ip, (Transport::Tcp, 443), &ids(&["2.2.2#23"]), unknown);
        assert_eq!(servers.0[&ip].site_roles, None);
        servers.add(
            ip,
            (Transport::Tcp, 443),
            &ids(&["2.2.2#23"]),
            Some(vec!["ccmm".into()]),
        );
        assert_eq!(servers.roles(&matrix)[&ip].as_deref(), Some("ccmm"));
    }
}
