//! One classification lookup: the cost the per-packet path pays per new flow.
//! Target (issue 5): under 50 ns, independent of the number of rules.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use portmatrix::classify::{Classifier, FlowQuery};
use portmatrix::matrix::{parse_rules, PortMatrix, Product, BUILTIN_ORIGIN, BUILTIN_RULES};
use portmatrix::site::{parse_site, Site};
use portmatrix::transport::Transport;

/// A deterministic spread of queries over both transports, casts and ports.
fn queries() -> Vec<FlowQuery> {
    let mut state: u32 = 0x1234_5678;
    (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            FlowQuery {
                transport: if state & 1 == 0 {
                    Transport::Tcp
                } else {
                    Transport::Udp
                },
                port: (state >> 8) as u16,
                multicast: state & 2 == 0,
                same_host: state & 4 == 0,
                // Spread over 10.10.0.0/16, where the bench site lists hosts.
                client: IpAddr::V4(Ipv4Addr::new(
                    10,
                    10,
                    (state >> 9) as u8,
                    (state >> 17) as u8,
                )),
                server: IpAddr::V4(Ipv4Addr::new(
                    10,
                    10,
                    (state >> 3) as u8,
                    (state >> 25) as u8,
                )),
                vlan: None,
            }
        })
        .collect()
}

/// The built-in matrix plus `extra` generated site rules.
fn matrix_with(extra: usize) -> Arc<PortMatrix> {
    let builtin = parse_rules(BUILTIN_ORIGIN, BUILTIN_RULES).expect("built-in matrix");
    let mut text = String::from("schema = 1\n");
    for i in 0..extra {
        let port = 20_000 + (i * 7) % 40_000;
        text.push_str(&format!(
            "[[rule]]\nid = \"bench#{i}\"\nlisten_ports = [{port}]\ntransports = [\"tcp\"]\n"
        ));
    }
    let site = parse_rules("bench.toml", &text).expect("generated rules");
    Arc::new(PortMatrix::from_files(vec![builtin, site]).expect("merge"))
}

fn bench_classify(c: &mut Criterion) {
    let qs = queries();
    let mut group = c.benchmark_group("classify");
    group.throughput(Throughput::Elements(qs.len() as u64));
    for extra in [0, 5_000] {
        let classifier = Classifier::new(matrix_with(extra), Product::Aacc);
        let rules = classifier.matrix().rules().len();
        group.bench_function(format!("{rules}_rules"), |b| {
            b.iter(|| {
                for q in &qs {
                    black_box(classifier.classify(black_box(*q)));
                }
            })
        });
    }
    group.finish();
}

/// A site of `hosts` single servers across 10.10.0.0/16 and agent subnets:
/// the role step adds two binary searches and a pass over the port's rules.
fn site_with(hosts: usize) -> Arc<Site> {
    const SYSTEMS: [&str; 5] = ["aacc_server", "ccma", "ccmm", "aams", "session_manager"];
    let mut text = String::from("schema = 1\n");
    for i in 0..hosts {
        text.push_str(&format!(
            "[[system]]\nname = \"{}\"\naddresses = [\"10.10.{}.{}\"]\n",
            SYSTEMS[i % SYSTEMS.len()],
            i / 250 % 256,
            i % 250 + 1
        ));
    }
    text.push_str("[systems]\nagent_desktop = [\"10.10.128.0/17\"]\n");
    Arc::new(parse_site("bench-site.toml", &text).expect("generated site"))
}

fn bench_classify_with_site(c: &mut Criterion) {
    let qs = queries();
    let mut group = c.benchmark_group("classify_with_site");
    group.throughput(Throughput::Elements(qs.len() as u64));
    for hosts in [10, 10_000] {
        let classifier =
            Classifier::with_site(matrix_with(0), Product::Aacc, Some(site_with(hosts)));
        group.bench_function(format!("{hosts}_hosts"), |b| {
            b.iter(|| {
                for q in &qs {
                    black_box(classifier.classify(black_box(*q)));
                }
            })
        });
    }
    group.finish();
}

fn bench_compile(c: &mut Criterion) {
    let matrix = matrix_with(0);
    c.bench_function("compile_builtin", |b| {
        b.iter(|| Classifier::new(Arc::clone(&matrix), Product::Aacc))
    });
}

criterion_group!(
    benches,
    bench_classify,
    bench_classify_with_site,
    bench_compile
);
criterion_main!(benches);
