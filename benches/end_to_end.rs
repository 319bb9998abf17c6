//! The whole offline pipeline, as `portmatrix analyze --json` runs it, on the
//! bench capture (see `common`): read, decode, shard, track, classify, write
//! (to a sink). Packets per second, for 1 worker and for every core.
//!
//! `cargo bench --bench end_to_end`; the peers and the C floor on the same
//! capture: `scripts/bench-peers`.

mod common;

use std::io;
use std::num::NonZeroUsize;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use portmatrix::output::{EventWriter, Format};
use portmatrix::pipeline::{run_offline, AnalyzeConfig, FlowSettings};

fn bench_end_to_end(c: &mut Criterion) {
    let path = common::capture();
    let packets = common::Packets::load(&path).len() as u64;
    let classifier = common::classifier();
    let cores = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
    let mut group = c.benchmark_group("end_to_end");
    group.throughput(Throughput::Elements(packets));
    group.sample_size(10);
    let mut counts = vec![NonZeroUsize::MIN, cores];
    counts.dedup();
    for workers in counts {
        let config = AnalyzeConfig::new(
            vec![path.clone()],
            FlowSettings {
                workers,
                ..FlowSettings::default()
            },
        );
        group.bench_function(format!("workers_{workers}"), |b| {
            b.iter(|| {
                let writer = EventWriter::new(io::sink(), Format::Json, false, classifier.clone());
                let (outcome, _) =
                    run_offline(&config, classifier.clone(), writer, None).expect("run");
                assert_eq!(outcome.stats.packets, packets);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_end_to_end);
criterion_main!(benches);
