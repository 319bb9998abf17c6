//! One bench per stage of the per-packet path, each in packets per second
//! over the same capture (see `common`): reading the capture file (framing),
//! decoding, updating the flow table, and writing the JSON events. The
//! classification lookup has its own bench (`matcher`), the whole pipeline
//! too (`end_to_end`). Setup (loading, decoding for the later stages) is
//! outside the timing.
//!
//! `cargo bench --bench stages`; `PORTMATRIX_BENCH_CAPTURE=/tmp/cc.pcap` for another capture.

mod common;

use std::hint::black_box;
use std::io;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use portmatrix::capture::{CaptureFile, Chunk};
use portmatrix::decode::{self, Decoded, Defragmenter, PacketMeta};
use portmatrix::flow::{EndReason, Flow, FlowEvent, FlowTable, Timeouts};
use portmatrix::output::{EventWriter, Format};
use portmatrix::timestamp::Timestamp;

/// Flows one table may hold (the default `--max-flows`).
const MAX_FLOWS: usize = 1_000_000;

/// Reading the file: open, frame every record, hand out each packet (one
/// at a time over a reused buffer, or in chunks that take the buffer).
fn bench_read(c: &mut Criterion) {
    let path = common::capture();
    let packets = common::Packets::load(&path).len() as u64;
    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Elements(packets));
    group.sample_size(10);
    group.bench_function("capture_file", |b| {
        b.iter(|| {
            let mut cap = CaptureFile::open(&path).expect("open");
            let mut n = 0u64;
            while let Some(p) = cap.next_packet().expect("read") {
                n += u64::from(p.orig_len > 0);
                black_box(p.data);
            }
            n
        })
    });
    group.bench_function("chunks", |b| {
        let mut chunk = Chunk::new();
        b.iter(|| {
            let mut cap = CaptureFile::open(&path).expect("open");
            let mut n = 0u64;
            while cap.next_chunk(&mut chunk).expect("read") {
                for (p, data) in chunk.iter() {
                    n += u64::from(p.orig_len > 0);
                    black_box(data);
                }
            }
            n
        })
    });
    group.finish();
}

/// Frame bytes to a record (the link layer, IP, TCP/UDP, tunnels), and the
/// defragmenter every decoded packet goes through.
fn bench_decode(c: &mut Criterion) {
    let packets = common::Packets::load(&common::capture());
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(packets.len() as u64));
    group.bench_function("decode_frame", |b| {
        let mut defrag = Defragmenter::new();
        b.iter(|| {
            let mut tcp_udp = 0u64;
            for (_, link_type, data, _) in packets.iter() {
                let (decoded, encap) = decode::decode_frame(link_type, data);
                black_box(encap);
                if let Decoded::Packet(meta) = defrag.resolve(decoded) {
                    tcp_udp += 1;
                    black_box(meta);
                }
            }
            tcp_udp
        })
    });
    group.finish();
}

/// The TCP/UDP packets of the capture, decoded.
fn decoded(packets: &common::Packets) -> Vec<(Timestamp, PacketMeta, u32)> {
    let mut defrag = Defragmenter::new();
    packets
        .iter()
        .filter_map(|(ts, link_type, data, wire)| {
            match defrag.resolve(decode::decode(link_type, data)) {
                Decoded::Packet(meta) => Some((ts, meta, wire)),
                _ => None,
            }
        })
        .collect()
}

/// Every packet into one flow table (as one worker would see them all):
/// lookups, new flows classified, TCP state, timeouts.
fn bench_flow_update(c: &mut Criterion) {
    let packets = common::Packets::load(&common::capture());
    let records = decoded(&packets);
    let classifier = common::classifier();
    let mut group = c.benchmark_group("flow_update");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("one_table", |b| {
        b.iter_batched(
            || FlowTable::new(classifier.clone(), Timeouts::default(), MAX_FLOWS),
            |mut table| {
                let mut events = 0u64;
                let mut count = |e: FlowEvent| {
                    black_box(e);
                    events += 1;
                };
                let mut last = Timestamp::EPOCH;
                for (ts, meta, wire) in &records {
                    table.update(*ts, meta, *wire, &mut count);
                    last = *ts;
                }
                table.finish(last, EndReason::EndOfInput, &mut count);
                events
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// Writing the events of the whole capture as JSON lines (alerts and, as
/// with `--flows`, one event per flow): per event, and per packet of the
/// capture they came from.
fn bench_json(c: &mut Criterion) {
    let packets = common::Packets::load(&common::capture());
    let records = decoded(&packets);
    let classifier = common::classifier();
    let mut events: Vec<(Flow, Option<EndReason>)> = Vec::new();
    let mut table = FlowTable::new(classifier.clone(), Timeouts::default(), MAX_FLOWS);
    let mut collect = |e: FlowEvent| match e {
        FlowEvent::Alert(f) => events.push((f, None)),
        FlowEvent::End(f, r) => events.push((f, Some(r))),
    };
    let mut last = Timestamp::EPOCH;
    for (ts, meta, wire) in &records {
        table.update(*ts, meta, *wire, &mut collect);
        last = *ts;
    }
    table.finish(last, EndReason::EndOfInput, &mut collect);

    let write_all = || {
        let mut writer = EventWriter::new(io::sink(), Format::Json, true, classifier.clone());
        for (flow, end) in &events {
            match end {
                None => writer.alert(flow),
                Some(reason) => writer.flow_ended(flow, *reason, None),
            }
            .expect("write to sink");
        }
        writer
    };
    let mut group = c.benchmark_group("json_write");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("events", |b| b.iter(write_all));
    group.throughput(Throughput::Elements(packets.len() as u64));
    group.bench_function("capture_packets", |b| b.iter(write_all));
    group.finish();
}

criterion_group!(
    benches,
    bench_read,
    bench_decode,
    bench_flow_update,
    bench_json
);
criterion_main!(benches);
