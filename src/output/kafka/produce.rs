//! Producing events: one message per line, keyed by the flow's Community ID.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig, ThreadedProducer,
};
use rdkafka::util::Timeout;

use super::{KafkaCounters, KafkaError, KafkaStats, KafkaTarget};
use crate::output::lines::{LineSink, Lines};

/// The largest event sent: librdkafka's default `message.max.bytes` (1 MB)
/// less room for the key and the record's headers. Events are under 1 KiB;
/// only a stats event naming thousands of files comes near.
const MAX_EVENT: usize = 1_000_000 - 1024;

/// How often a broker that stays away is warned about on stderr.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// How the client is set up for a run.
#[derive(Debug, Clone)]
pub struct ProducerSettings {
    /// The queue's bound in MiB (`--kafka-queue`): events waiting for the
    /// broker never take more.
    pub queue_mib: u32,
    /// How long an event may wait for the broker (`--kafka-timeout`).
    pub timeout: Duration,
    pub on_full: OnFull,
    /// The key of events that belong to no flow (stats): the sensor's name,
    /// so that one sensor's stats stay in one partition, in order.
    pub sensor: String,
}

/// What a full queue means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFull {
    /// `live`: capture must never wait for a broker; the event is dropped
    /// and counted.
    Drop,
    /// `analyze`: a file can wait for a slow broker. The event waits while
    /// deliveries go on; once none has come for `--kafka-timeout` the
    /// broker is taken as gone, and events are dropped and counted until
    /// deliveries start again.
    Wait,
}

/// librdkafka's callbacks: deliveries counted, errors warned about.
struct Context {
    counters: Arc<KafkaCounters>,
    target: String,
    /// Errors are said once the start's check of the topic is over: until
    /// then they are the check's, which says them itself.
    armed: AtomicBool,
    /// When each kind of error was last warned about (a broker away
    /// alternates a few kinds).
    warned: Mutex<HashMap<String, Instant>>,
}

impl ClientContext for Context {
    /// librdkafka's own log lines are not printed: what matters reaches
    /// [`ClientContext::error`], each kind of error said once a minute at most.
    fn log(&self, _: rdkafka::config::RDKafkaLogLevel, _: &str, _: &str) {}

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if !self.armed.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut warned) = self.warned.lock() else {
            return;
        };
        let kind = format!("{:?}", error.rdkafka_error_code());
        if warned
            .get(&kind)
            .is_some_and(|at| at.elapsed() < WARN_EVERY)
        {
            return;
        }
        warned.insert(kind, Instant::now());
        crate::diag!(
            "portmatrix: warning: kafka ({}): {error}: {reason}; events wait in the queue \
(--kafka-queue, --kafka-timeout) and are counted as lost beyond it",
            self.target
        );
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let counter = match result {
            Ok(_) => &self.counters.delivered,
            Err(_) => &self.counters.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The running producer: what finishes the output at the end of the run.
pub struct Kafka {
    producer: ThreadedProducer<Context>,
    counters: Arc<KafkaCounters>,
}

impl Kafka {
    /// Make the client and the printer's destination. The broker is not
    /// waited for: see [`Kafka::check_topic`], after which the client's
    /// errors are warned about on stderr.
    pub fn start(
        target: &KafkaTarget,
        settings: &ProducerSettings,
    ) -> Result<(Kafka, KafkaLines), KafkaError> {
        let counters = Arc::new(KafkaCounters::default());
        let context = Context {
            counters: Arc::clone(&counters),
            target: target.to_string(),
            armed: AtomicBool::new(false),
            warned: Mutex::new(HashMap::new()),
        };
        let kib = u64::from(settings.queue_mib.max(1)) * 1024;
        let mut config = target.config();
        config
            // The broker keeps each event once, in order, whatever the retries.
            .set("enable.idempotence", "true")
            // librdkafka bounds the messages' bytes, not what it keeps
            // beside each (measured: about 340 bytes a message). Half the
            // bound for the bytes and one message per KiB of it keep both
            // together under the bound: at most 1/2 + 400/1024 of it.
            .set("queue.buffering.max.kbytes", (kib / 2).to_string())
            .set(
                "queue.buffering.max.messages",
                kib.min(i32::MAX as u64).to_string(),
            )
            .set(
                "message.timeout.ms",
                settings
                    .timeout
                    .as_millis()
                    .clamp(1, i32::MAX as u128)
                    .to_string(),
            )
            .set("linger.ms", "10")
            .set("compression.type", "lz4");
        target.apply_options(&mut config);
        let producer: ThreadedProducer<Context> = config.create_with_context(context)?;
        let queue = KafkaQueue {
            producer: producer.clone(),
            topic: target.topic.clone(),
            sensor: settings.sensor.clone(),
            counters: Arc::clone(&counters),
            wait: Wait {
                on_full: settings.on_full,
                patience: settings.timeout,
                gone_at: None,
            },
        };
        Ok((Kafka { producer, counters }, Lines::new(queue)))
    }

    /// Ask the broker for the topic, for at most `within`: `Err` says why
    /// it cannot be used (the broker did not answer, or it has no such topic).
    pub fn check_topic(&self, topic: &str, within: Duration) -> Result<(), String> {
        let client = self.producer.client();
        let metadata = client.fetch_metadata(Some(topic), within);
        client.context().armed.store(true, Ordering::Relaxed);
        let metadata = metadata.map_err(|e| format!("the broker did not answer: {e}"))?;
        match metadata.topics().iter().find(|t| t.name() == topic) {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
            _ => Err(format!(
                "the broker has no topic {topic}; create it first (e.g. kafka-topics.sh \
--create --topic {topic} --partitions 6), see docs/fleet.md"
            )),
        }
    }

    pub fn counters(&self) -> Arc<KafkaCounters> {
        Arc::clone(&self.counters)
    }

    /// Let the broker take what is queued, for at most `within`; what is
    /// still queued then is given up and counted as failed.
    pub fn finish(self, within: Duration) -> KafkaStats {
        if self.producer.flush(within).is_err() {
            self.producer
                .purge(PurgeConfig::default().queue().inflight());
            // The purged messages' delivery reports, counted as failed.
            let _ = self.producer.flush(Timeout::After(Duration::from_secs(1)));
        }
        self.counters.get()
    }
}

/// The printer's destination: each line is one message.
pub type KafkaLines = Lines<KafkaQueue>;

/// Hands each line to librdkafka's queue.
pub struct KafkaQueue {
    producer: ThreadedProducer<Context>,
    topic: String,
    sensor: String,
    counters: Arc<KafkaCounters>,
    wait: Wait,
}

/// Whether a full queue is waited on, and for how long.
struct Wait {
    on_full: OnFull,
    patience: Duration,
    /// With [`OnFull::Wait`]: the broker was taken as gone when this many
    /// messages were delivered; until one more is, nothing waits.
    gone_at: Option<u64>,
}

impl Wait {
    /// Whether a full queue should be waited on now, `delivered` messages in.
    fn now(&mut self, delivered: u64) -> bool {
        if self.on_full == OnFull::Drop {
            return false;
        }
        match self.gone_at {
            Some(at) if delivered == at => false,
            _ => {
                self.gone_at = None;
                true
            }
        }
    }
}

impl LineSink for KafkaQueue {
    const MAX_LINE: usize = MAX_EVENT;

    fn line(&mut self, line: &[u8]) {
        let key = community_id(line).unwrap_or(self.sensor.as_bytes());
        let mut record = BaseRecord::to(&self.topic).key(key).payload(line);
        // Progress is the number delivered, and when it last moved.
        let mut progress: Option<(u64, Instant)> = None;
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    self.counters.produced.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err((e, back))
                    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull)
                        && self.wait.now(self.counters.delivered()) =>
                {
                    let delivered = self.counters.delivered();
                    match progress {
                        Some((d, since)) if d == delivered => {
                            if since.elapsed() >= self.wait.patience {
                                self.wait.gone_at = Some(delivered);
                                break;
                            }
                        }
                        _ => progress = Some((delivered, Instant::now())),
                    }
                    std::thread::sleep(Duration::from_millis(2));
                    record = back;
                }
                Err(_) => break,
            }
        }
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn overlong(&mut self) {
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// The value of a line's `"community_id"` (native JSON and EVE both name
/// it so), which keys the message: a flow's events go to one partition.
fn community_id(line: &[u8]) -> Option<&[u8]> {
    const FIELD: &[u8] = b"\"community_id\":\"";
    let at = line.windows(FIELD.len()).position(|w| w == FIELD)? + FIELD.len();
    let rest = &line[at..];
    let end = rest.iter().position(|&b| b == b'"')?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_the_community_id_when_the_event_has_one() {
        let alert = br#"{"timestamp":"x","event_type":"alert","flow_id":1,"community_id":"1:abc+/=","proto":"TCP"}"#;
        assert_eq!(community_id(alert), Some(&b"1:abc+/="[..]));
        assert_eq!(community_id(br#"{"event_type":"stats","stats":{}}"#), None);
        assert_eq!(community_id(br#"{"community_id":"cut"#), None);
    }
}
