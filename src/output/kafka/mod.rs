//! Kafka, with librdkafka (the `rdkafka` crate): the events' destination
//! for a fleet of sensors (`--kafka BROKERS --kafka-topic TOPIC`), and the
//! way `report --kafka` reads them back.
//!
//! - [`produce`]: a printer of the run's format writes into [`KafkaLines`],
//!   which hands each line to librdkafka's queue as one message keyed by the
//!   flow's Community ID (so a flow's events stay in one partition, in
//!   order). The queue is bounded in bytes; a full queue never blocks
//!   `live` (the event is dropped and counted), and makes `analyze` wait for
//!   the broker as long as deliveries go on.
//! - [`consume`]: a topic read to its current end as lines, in a consumer
//!   group when asked, so that a scheduled report resumes where the last one
//!   stopped.

pub mod consume;
mod produce;

use std::fmt;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use serde::Serialize;

pub use produce::{Kafka, KafkaLines, OnFull, ProducerSettings};

/// Where the events go, and how the client is set up.
#[derive(Debug, Clone)]
pub struct KafkaTarget {
    /// `host:port[,host:port…]`, librdkafka's `bootstrap.servers`.
    pub brokers: String,
    pub topic: String,
    /// librdkafka settings given by the user (`--kafka-option`,
    /// `--kafka-config`): TLS, SASL, compression…, applied last.
    pub options: Vec<(String, String)>,
}

impl KafkaTarget {
    /// The settings every portmatrix client starts from; each adds its own,
    /// then [`KafkaTarget::apply_options`].
    fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "portmatrix");
        config
    }

    /// The user's settings, last: they win over ours.
    fn apply_options(&self, config: &mut ClientConfig) {
        for (key, value) in &self.options {
            config.set(key, value);
        }
    }
}

impl fmt::Display for KafkaTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "topic {} at {}", self.topic, self.brokers)
    }
}

/// A Kafka client properties file is read up to this size: a few settings.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Read `key=value` lines from a client properties file (Kafka's
/// `client.properties`: `#` and `!` start comments), so that secrets such as
/// `sasl.password` need not be on the command line where `ps` shows them.
pub fn read_properties(path: &Path) -> Result<Vec<(String, String)>, String> {
    let name = path.display();
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!(
            "{name} is larger than {MAX_CONFIG_BYTES} bytes: is it a properties file?"
        ));
    }
    let mut options = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        options.push(parse_option(line).map_err(|e| format!("{name}:{}: {e}", i + 1))?);
    }
    Ok(options)
}

/// `key=value`, both trimmed; the key may not be empty.
pub fn parse_option(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_string(), value.trim().to_string()))
        }
        _ => Err(format!(
            "`{s}` is not KEY=VALUE (a librdkafka setting, e.g. security.protocol=ssl)"
        )),
    }
}

/// What the Kafka output did, in stats events (`stats.kafka`), the
/// metrics and the summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KafkaStats {
    /// Messages the broker acknowledged.
    pub delivered: u64,
    /// Messages handed to the client that the broker never acknowledged:
    /// they waited longer than `--kafka-timeout`, the broker refused them,
    /// or the run ended before they could go.
    pub failed: u64,
    /// Events never handed to the client: its queue was full (the broker
    /// was slow or away) or the event was larger than a message may be.
    pub dropped: u64,
    /// Messages waiting in the client's queue when the counters were read.
    pub queued: u64,
}

impl KafkaStats {
    /// Events that did not reach the broker, once the output is finished.
    pub fn undelivered(&self) -> u64 {
        self.failed + self.dropped + self.queued
    }
}

/// The counters, shared by the printer's side, librdkafka's delivery
/// callbacks and whoever reads them.
#[derive(Debug, Default)]
pub struct KafkaCounters {
    produced: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl KafkaCounters {
    pub fn get(&self) -> KafkaStats {
        // Read the outcomes first: a message counted since is still queued.
        let delivered = self.delivered.load(Ordering::Relaxed);
        let failed = self.failed.load(Ordering::Relaxed);
        let produced = self.produced.load(Ordering::Relaxed);
        KafkaStats {
            delivered,
            failed,
            dropped: self.dropped.load(Ordering::Relaxed),
            queued: produced.saturating_sub(delivered + failed),
        }
    }

    fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
}

/// How long the end of a `live` run waits for the broker to take what is
/// queued: a sensor that is stopped must stop, whatever the broker does.
pub const LIVE_DRAIN: Duration = Duration::from_secs(10);

/// Why the client could not be made: a setting librdkafka refused.
#[derive(Debug, thiserror::Error)]
#[error("kafka: {0}")]
pub struct KafkaError(pub String);

impl From<rdkafka::error::KafkaError> for KafkaError {
    fn from(e: rdkafka::error::KafkaError) -> Self {
        KafkaError(e.to_string())
    }
}

impl From<KafkaError> for io::Error {
    fn from(e: KafkaError) -> Self {
        io::Error::other(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_key_value_and_a_properties_file_names_its_bad_line() {
        assert_eq!(
            parse_option(" security.protocol = ssl "),
            Ok(("security.protocol".into(), "ssl".into()))
        );
        assert!(parse_option("=x").is_err());
        assert!(parse_option("novalue").is_err());
        let dir =
            std::env::temp_dir().join(format!("portmatrix-kafka-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("client.properties");
        std::fs::write(
            &path,
            "# TLS\n! old style\nsecurity.protocol=ssl\n\nsasl.password=a=b\n",
        )
        .expect("write");
        assert_eq!(
            read_properties(&path),
            Ok(vec![
                ("security.protocol".into(), "ssl".into()),
                ("sasl.password".into(), "a=b".into())
            ])
        );
        std::fs::write(&path, "acks=all\nbroken\n").expect("write");
        let e = read_properties(&path).expect_err("a bad line");
        assert!(e.ends_with("client.properties:2: `broken` is not KEY=VALUE (a librdkafka setting, e.g. security.protocol=ssl)"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
