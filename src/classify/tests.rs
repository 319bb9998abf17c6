//! The compiled table against the classification rules written out port by
//! port, the slow obvious way, on the vendor matrix and on random rules.

use std::sync::Arc;

use super::*;
use crate::matrix::{parse_rules, PortMatrix};

/// The verdict (cross-host, same-host) and rules of one query, by definition.
fn by_definition(
    m: &PortMatrix,
    product: Product,
    t: Transport,
    multicast: bool,
    port: u16,
) -> (Verdict, Verdict, Vec<RuleIdx>) {
    let covering = |t: Transport, multicast: bool| -> Vec<RuleIdx> {
        (0..m.rules().len() as RuleIdx)
            .filter(|&i| m.rule(i).decides(t, multicast) && m.rule(i).covers_port(port))
            .collect()
    };
    let matched = covering(t, multicast);
    if !matched.is_empty() {
        let (mut single, ranged): (Vec<RuleIdx>, Vec<RuleIdx>) = matched
            .iter()
            .partition(|&&i| m.rule(i).is_single_port_match(port));
        let deciding = if single.is_empty() { &ranged } else { &single };
        let resolve = |same_host| {
            let statuses: Vec<Verdict> = deciding
                .iter()
                .map(|&i| rule_status(m.rule(i), product, same_host))
                .collect();
            if statuses.contains(&Verdict::Documented) {
                return Verdict::Documented;
            }
            statuses
                .into_iter()
                .max_by_key(|v| v.precedence())
                .unwrap_or(Verdict::Documented)
        };
        let verdicts = (resolve(false), resolve(true));
        single.extend(ranged);
        return (verdicts.0, verdicts.1, single);
    }
    if !covering(t, !multicast).is_empty() {
        return (Verdict::Undocumented, Verdict::Undocumented, Vec::new());
    }
    let mut other: Vec<RuleIdx> = [false, true]
        .iter()
        .flat_map(|&m2| covering(t.other(), m2))
        .filter(|&i| !m.rule(i).is_wide_at(port))
        .collect();
    other.sort_unstable();
    other.dedup();
    if other.is_empty() {
        (Verdict::Undocumented, Verdict::Undocumented, Vec::new())
    } else {
        (Verdict::WrongTransport, Verdict::WrongTransport, other)
    }
}

fn assert_table_matches_definition(
    m: PortMatrix,
    product: Product,
    ports: impl Iterator<Item = u16> + Clone,
) {
    let m = Arc::new(m);
    let c = Classifier::new(Arc::clone(&m), product);
    for t in Transport::ALL {
        for multicast in [false, true] {
            for port in ports.clone() {
                let q = |same_host| FlowQuery {
                    transport: t,
                    port,
                    multicast,
                    same_host,
                    ..query()
                };
                let (cross, same, rules) = by_definition(&m, product, t, multicast, port);
                let got = c.classify(q(false));
                assert_eq!(
                    (got.verdict, c.classify(q(true)).verdict, got.rule_ids),
                    (cross, same, &rules[..]),
                    "{t}/{port} multicast {multicast}"
                );
            }
        }
    }
}

#[test]
fn the_vendor_matrix_compiles_to_its_definition() {
    for product in [Product::Aacc, Product::Accs] {
        let m = PortMatrix::builtin().expect("built-in matrix");
        // Both sides of every end of every range, and a sample in between.
        let mut ports: Vec<u16> = (0..=u16::MAX).step_by(97).collect();
        for r in m.rules().iter().flat_map(|r| &r.listen_ports) {
            ports.extend([r.lo.saturating_sub(1), r.lo, r.hi, r.hi.saturating_add(1)]);
        }
        assert_table_matches_definition(m, product, ports.into_iter());
    }
}

/// A deterministic pseudo-random generator (xorshift), so failures repeat.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn random_rules_compile_to_their_definition() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..6 {
        let mut text = String::from("schema = 1\n");
        for i in 0..rng.below(40) + 1 {
            let mut ports = Vec::new();
            for _ in 0..rng.below(6) + 1 {
                // Ports crowd in 0..3000 so that rules overlap often.
                let lo = rng.below(3000);
                ports.push(match rng.below(3) {
                    0 => lo.to_string(),
                    1 => format!("[{lo}, {}]", lo + rng.below(40)),
                    _ => format!("[{lo}, {}]", (lo + rng.below(3000)).min(65535)),
                });
            }
            let transports =
                ["[\"tcp\"]", "[\"udp\"]", "[\"tcp\", \"udp\"]"][rng.below(3) as usize];
            let cast = ["unicast", "multicast", "any"][rng.below(3) as usize];
            let state = ["open", "closed"][rng.below(2) as usize];
            let profile = ["both", "aacc", "accs"][rng.below(3) as usize];
            let flag = [
                "",
                "internal_only = true\n",
                "deprecated = true\n",
                "needs_roles = true\n",
            ][rng.below(4) as usize];
            text.push_str(&format!(
                "[[rule]]\nid = \"r{i}\"\nlisten_ports = [{}]\ntransports = {transports}\n\
                 cast = \"{cast}\"\ndefault_state = \"{state}\"\nprofile = \"{profile}\"\n{flag}",
                ports.join(", ")
            ));
        }
        let file = parse_rules("random.toml", &text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        let m = PortMatrix::from_files(vec![file]).expect("valid matrix");
        let product = if round % 2 == 0 {
            Product::Aacc
        } else {
            Product::Accs
        };
        // Every port the rules reach, and the quiet ones beyond.
        assert_table_matches_definition(m, product, (0..=6100).chain([30_000, 65_535]));
    }
}

#[test]
fn every_port_may_have_a_decision_of_its_own() {
    // Port p of TCP is covered by rules t(p mod 300) and tq(p / 300), and
    // UDP likewise with other rules: more than 2^16 distinct rule sets.
    let mut text = String::from("schema = 1\n");
    for t in ["tcp", "udp"] {
        for r in 0..300u32 {
            let ports: Vec<String> = (r..65536).step_by(300).map(|p| p.to_string()).collect();
            text.push_str(&format!(
                "[[rule]]\nid = \"{t}{r}\"\nlisten_ports = [{}]\ntransports = [\"{t}\"]\n",
                ports.join(",")
            ));
        }
        for q in 0..=(65535 / 300) {
            let lo = q * 300;
            text.push_str(&format!(
                "[[rule]]\nid = \"{t}q{q}\"\nlisten_ports = [[{lo}, {}]]\ntransports = [\"{t}\"]\n",
                (lo + 299).min(65535)
            ));
        }
    }
    let file = parse_rules("sets.toml", &text).expect("valid rules");
    let m = Arc::new(PortMatrix::from_files(vec![file]).expect("valid matrix"));
    let c = Classifier::new(Arc::clone(&m), Product::Aacc);
    for t in Transport::ALL {
        for port in [0u16, 5, 299, 300, 40_000, 65_535] {
            let got = c.classify(FlowQuery {
                transport: t,
                port,
                ..query()
            });
            let ids: Vec<&str> = got
                .rule_ids
                .iter()
                .map(|&i| m.rule(i).id.as_str())
                .collect();
            let want = [format!("{t}{}", port % 300), format!("{t}q{}", port / 300)];
            assert_eq!(ids, want, "{t}/{port}");
        }
    }
}

/// A query between two hosts no site lists, for port-only classification.
fn query() -> FlowQuery {
    let ip = std::net::IpAddr::from([192, 0, 2, 1]);
    FlowQuery {
        transport: Transport::Tcp,
        port: 0,
        multicast: false,
        same_host: false,
        client: ip,
        server: ip,
        vlan: None,
    }
}
