//! Reading a topic back (`report --kafka`): every partition from where the
//! consumer group stopped (or from the start) to the end it has when the
//! read starts, as lines, so that `report` reads a topic exactly as it reads
//! an events file.
//!
//! "The end it has when the read starts" is not the high watermark alone:
//! some Kafka-protocol brokers (Tansu 0.6) answer a watermark that lags by
//! the last record batch. A partition is read to the end of what its fetches
//! return (librdkafka's partition EOF); on a topic that sensors keep
//! writing, it also ends at the first message past the watermark that was
//! written after the read started, which is left for the next run.
//!
//! The partitions are assigned, not subscribed to: a report is one reader
//! that wants the whole topic, and the group is only where the offsets are
//! kept. They are committed by [`TopicReader::commit`], once the report is
//! written: a report that failed leaves the events for the next run.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::{KafkaError, KafkaTarget};

/// What one partition is read from and to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionSpan {
    /// The first offset read.
    pub from: i64,
    /// The high watermark when the read started.
    pub watermark: i64,
    /// The offset after the last message read.
    pub read: i64,
    /// Read to its end.
    pub done: bool,
}

/// A topic as a [`BufRead`] of its messages, one line each.
pub struct TopicReader {
    consumer: BaseConsumer,
    topic: String,
    group: Option<String>,
    spans: BTreeMap<i32, PartitionSpan>,
    /// The partitions not read to their end yet.
    open: usize,
    /// The current message and its newline, and how much of it was read.
    line: Vec<u8>,
    at: usize,
    /// The broker is given up on after this long without a message.
    idle: Duration,
    /// When the read started, in Kafka's milliseconds since the epoch:
    /// messages written after it are for the next read.
    started_ms: i64,
}

impl TopicReader {
    /// Look up the topic's partitions, their ends and where `group` stopped
    /// (no group: from the start, nothing kept), for at most `within` each.
    pub fn open(
        target: &KafkaTarget,
        group: Option<&str>,
        within: Duration,
    ) -> Result<TopicReader, KafkaError> {
        let mut config = target.config();
        config
            // A throwaway id when no group is given: offsets are then neither
            // read nor committed.
            .set("group.id", group.unwrap_or("portmatrix-report"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // The end of a compacted partition has no message at its last offset.
            .set("enable.partition.eof", "true");
        target.apply_options(&mut config);
        let consumer: BaseConsumer = config.create()?;
        let metadata = consumer
            .fetch_metadata(Some(&target.topic), within)
            .map_err(|e| KafkaError(format!("{target}: the broker did not answer: {e}")))?;
        let partitions: Vec<i32> = match metadata.topics().iter().find(|t| t.name() == target.topic)
        {
            Some(t) if t.error().is_none() => t.partitions().iter().map(|p| p.id()).collect(),
            _ => Vec::new(),
        };
        if partitions.is_empty() {
            return Err(KafkaError(format!(
                "{target}: the broker has no such topic (or it has no partitions)"
            )));
        }
        let mut starts = TopicPartitionList::new();
        for &p in &partitions {
            starts.add_partition(&target.topic, p);
        }
        let committed = match group {
            Some(_) => consumer.committed_offsets(starts.clone(), within)?,
            None => starts.clone(),
        };
        let started_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let mut spans = BTreeMap::new();
        let mut assignment = TopicPartitionList::new();
        for &p in &partitions {
            let (low, high) = consumer.fetch_watermarks(&target.topic, p, within)?;
            let from = match committed
                .find_partition(&target.topic, p)
                .map(|e| e.offset())
            {
                Some(Offset::Offset(o)) if o >= low => o,
                _ => low,
            };
            spans.insert(
                p,
                PartitionSpan {
                    from,
                    watermark: high,
                    read: from,
                    done: false,
                },
            );
            assignment.add_partition_offset(&target.topic, p, Offset::Offset(from))?;
        }
        consumer.assign(&assignment)?;
        Ok(TopicReader {
            consumer,
            topic: target.topic.clone(),
            group: group.map(str::to_owned),
            open: spans.len(),
            spans,
            line: Vec::new(),
            at: 0,
            idle: within,
            started_ms,
        })
    }

    /// Each partition: where the read started and ended.
    pub fn spans(&self) -> &BTreeMap<i32, PartitionSpan> {
        &self.spans
    }

    /// The messages read.
    pub fn messages(&self) -> i64 {
        self.spans.values().map(|s| s.read - s.from).sum()
    }

    /// Keep in the group how far each partition was read, so that the
    /// next run starts after it. Nothing to do without a group.
    pub fn commit(&self) -> Result<(), KafkaError> {
        if self.group.is_none() {
            return Ok(());
        }
        let mut done = TopicPartitionList::new();
        for (&p, span) in &self.spans {
            done.add_partition_offset(&self.topic, p, Offset::Offset(span.read))?;
        }
        self.consumer.commit(&done, CommitMode::Sync)?;
        Ok(())
    }

    /// The next message into `self.line`; `false` at the end of every partition.
    fn next_message(&mut self) -> io::Result<bool> {
        let mut waited_since = Instant::now();
        while self.open > 0 {
            let Some(polled) = self.consumer.poll(Duration::from_millis(200)) else {
                if waited_since.elapsed() >= self.idle {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "no message from the broker for {:?} while {} partition(s) were not \
read to their end",
                            self.idle, self.open
                        ),
                    ));
                }
                continue;
            };
            let message = match polled {
                Ok(m) => m,
                Err(RdError::PartitionEOF(p)) => {
                    self.close(p);
                    continue;
                }
                Err(e) => return Err(io::Error::other(e.to_string())),
            };
            waited_since = Instant::now();
            let (p, offset) = (message.partition(), message.offset());
            let Some(span) = self.spans.get_mut(&p) else {
                continue;
            };
            let newer = message
                .timestamp()
                .to_millis()
                .is_some_and(|t| t > self.started_ms);
            if span.done || (offset >= span.watermark && newer) {
                // Written after the read started: for the next run.
                self.close(p);
                continue;
            }
            span.read = offset + 1;
            self.line.clear();
            self.line
                .extend_from_slice(message.payload().unwrap_or_default());
            self.line.push(b'\n');
            self.at = 0;
            return Ok(true);
        }
        Ok(false)
    }

    /// Partition `p` is read to its end.
    fn close(&mut self, p: i32) {
        if let Some(span) = self.spans.get_mut(&p) {
            if !span.done {
                span.done = true;
                self.open -= 1;
            }
        }
    }
}

impl Read for TopicReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for TopicReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.at >= self.line.len() && !self.next_message()? {
            return Ok(&[]);
        }
        Ok(&self.line[self.at..])
    }

    fn consume(&mut self, amt: usize) {
        self.at = (self.at + amt).min(self.line.len());
    }
}
