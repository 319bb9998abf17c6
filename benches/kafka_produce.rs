//! Events per second through the Kafka output, as `analyze --kafka` sends
//! them: lines of real events written into the producer's destination,
//! each one a message keyed by its Community ID, timed until the broker has
//! acknowledged the last one.
//!
//! Needs a broker: `scripts/bench-kafka` starts one (Tansu) and runs this
//! with PORTMATRIX_BENCH_KAFKA=HOST:PORT, PORTMATRIX_BENCH_TOPIC and
//! PORTMATRIX_BENCH_EVENTS (a JSON lines file of real events, sent in a loop
//! up to 1,000,000) set; without them it says so and does nothing.

use std::io::Write;
use std::time::{Duration, Instant};

use portmatrix::output::kafka::{Kafka, KafkaTarget, OnFull, ProducerSettings};

/// Messages sent per run.
const EVENTS: usize = 1_000_000;

fn main() {
    let (Ok(brokers), Ok(topic), Ok(events)) = (
        std::env::var("PORTMATRIX_BENCH_KAFKA"),
        std::env::var("PORTMATRIX_BENCH_TOPIC"),
        std::env::var("PORTMATRIX_BENCH_EVENTS"),
    ) else {
        eprintln!(
            "kafka_produce: skipped: needs PORTMATRIX_BENCH_KAFKA, PORTMATRIX_BENCH_TOPIC and \
PORTMATRIX_BENCH_EVENTS; scripts/bench-kafka sets them"
        );
        return;
    };
    let lines = lines_of(&events);
    let target = KafkaTarget {
        brokers,
        topic,
        options: Vec::new(),
    };
    let settings = ProducerSettings {
        queue_mib: 64,
        timeout: Duration::from_secs(60),
        on_full: OnFull::Wait,
        sensor: "bench".into(),
    };
    for run in 1..=3 {
        let (kafka, mut out) = Kafka::start(&target, &settings).expect("producer");
        let start = Instant::now();
        for line in lines.iter().cycle().take(EVENTS) {
            out.write_all(line).expect("never fails");
        }
        let queued = start.elapsed();
        let stats = kafka.finish(Duration::from_secs(120));
        let all = start.elapsed();
        println!(
            "kafka_produce run {run}: {EVENTS} events ({:.0} MB) in {:.2} s: {:.0} events/s \
delivered ({:.0} events/s queued); delivered {}, failed {}, dropped {}",
            lines.iter().map(Vec::len).sum::<usize>() as f64 * EVENTS as f64
                / lines.len() as f64
                / 1e6,
            all.as_secs_f64(),
            stats.delivered as f64 / all.as_secs_f64(),
            EVENTS as f64 / queued.as_secs_f64(),
            stats.delivered,
            stats.failed,
            stats.dropped
        );
    }
}

/// The lines of the events file, each with its newline.
fn lines_of(path: &str) -> Vec<Vec<u8>> {
    let text = std::fs::read_to_string(path).expect("PORTMATRIX_BENCH_EVENTS");
    let lines: Vec<Vec<u8>> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n").into_bytes())
        .collect();
    assert!(!lines.is_empty(), "no events to send");
    lines
}
