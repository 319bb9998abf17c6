//! The Kafka options: where the broker is (`analyze`, `live` and `report`
//! share them), and how events are produced (`analyze`, `live`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use portmatrix::output::kafka::{parse_option, read_properties, KafkaTarget};

use super::run::parse_duration;

/// The broker and the client's settings.
#[derive(Debug, Args)]
pub struct KafkaConnectArgs {
    /// Kafka brokers, host:port[,host:port…] (librdkafka's bootstrap.servers), with
    /// --kafka-topic: analyze and live send their events there instead of stdout (JSON
    /// lines, or --format eve; one message per event, keyed by the flow's Community ID);
    /// report reads them back. See docs/fleet.md.
    #[arg(long, value_name = "BROKERS", requires = "kafka_topic")]
    pub kafka: Option<String>,
    /// The Kafka topic of the events; portmatrix does not create it.
    #[arg(long, value_name = "TOPIC", requires = "kafka")]
    pub kafka_topic: Option<String>,
    /// A librdkafka setting, e.g. security.protocol=ssl (repeatable; wins over --kafka-config).
    #[arg(long = "kafka-option", value_name = "KEY=VALUE", value_parser = parse_option, requires = "kafka")]
    pub kafka_options: Vec<(String, String)>,
    /// librdkafka settings as a Java client.properties file (key=value lines), so that
    /// secrets such as sasl.password stay off the command line.
    #[arg(long, value_name = "FILE", requires = "kafka")]
    pub kafka_config: Option<PathBuf>,
}

impl KafkaConnectArgs {
    /// The target, or `None` without --kafka; `Err` names the bad file or line.
    pub fn target(&self) -> Result<Option<KafkaTarget>, String> {
        let (Some(brokers), Some(topic)) = (&self.kafka, &self.kafka_topic) else {
            return Ok(None);
        };
        let mut options = match &self.kafka_config {
            Some(path) => read_properties(path).map_err(|e| format!("--kafka-config: {e}"))?,
            None => Vec::new(),
        };
        options.extend(self.kafka_options.iter().cloned());
        Ok(Some(KafkaTarget {
            brokers: brokers.clone(),
            topic: topic.clone(),
            options,
        }))
    }
}

/// Events to Kafka instead of stdout.
#[derive(Debug, Args)]
pub struct KafkaProduceArgs {
    // --kafka's help is in KafkaConnectArgs (`report --kafka` reads with it too).
    #[command(flatten)]
    pub connect: KafkaConnectArgs,
    // The two below have defaults and do not require --kafka (as --metrics-interval
    // does not require --metrics-file): `live --print-config` writes every option at its
    // default, and the file must read back without --kafka.
    /// The most memory the events waiting for the broker may take, in MiB (librdkafka's
    /// bookkeeping included); beyond it `live` drops events (counted in stats.kafka.dropped)
    /// and `analyze` waits.
    #[arg(long, value_name = "MIB", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub kafka_queue: u32,
    /// How long an event may wait for the broker before it counts as lost; `analyze` also
    /// waits this long at its end for the broker to take every event.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub kafka_timeout: Duration,
}
