//! `analyze --kafka`, `live --kafka`: the producer is made before the run
//! and the events' printer writes into it instead of stdout; after the
//! final stats it is given time to deliver, and what it could not is said.

use std::sync::Arc;
use std::time::Duration;

use portmatrix::output::kafka::{
    Kafka, KafkaCounters, KafkaLines, KafkaStats, KafkaTarget, OnFull, ProducerSettings,
};

use super::Exit;
use crate::cli::RunArgs;

/// How long the start waits for the broker to say it has the topic.
const CHECK_TOPIC: Duration = Duration::from_secs(10);

/// The running Kafka output.
pub struct KafkaOutput {
    kafka: Kafka,
    target: KafkaTarget,
}

/// Which command produces: what a broker that is away means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Producing {
    /// A file is analysed once: a broker that does not answer, or has no
    /// such topic, ends the run before it starts (exit 4), and a full queue
    /// is waited on.
    Analyze,
    /// A sensor must not depend on the order services start in: it warns
    /// and captures, counting what it cannot deliver.
    Live,
}

impl KafkaOutput {
    /// The producer and the printer's destination, or `None` without
    /// `--kafka`; `Err` with the exit code after saying why (text or CSV
    /// with --kafka is wrong usage).
    /// `output`: whether `-o FILE` was given too, which is refused (the
    /// events have one destination).
    pub fn start(
        run: &RunArgs,
        output: bool,
        sensor: &str,
        producing: Producing,
    ) -> Result<Option<(KafkaOutput, KafkaLines)>, Exit> {
        if let Some(problem) = run.events.problem() {
            portmatrix::diag!("portmatrix: error: {problem}");
            return Err(Exit::Usage);
        }
        let args = &run.events.kafka;
        let target = match args.connect.target() {
            Ok(Some(_)) if output => {
                portmatrix::diag!(
                    "portmatrix: error: --kafka and -o both name where the events go: give one"
                );
                return Err(Exit::Usage);
            }
            Ok(Some(t)) => t,
            Ok(None) => return Ok(None),
            Err(e) => {
                portmatrix::diag!("portmatrix: error: {e}");
                return Err(Exit::Usage);
            }
        };
        let settings = ProducerSettings {
            queue_mib: args.kafka_queue,
            timeout: args.kafka_timeout,
            on_full: match producing {
                Producing::Analyze => OnFull::Wait,
                Producing::Live => OnFull::Drop,
            },
            sensor: sensor.to_owned(),
        };
        let (kafka, lines) = match Kafka::start(&target, &settings) {
            Ok(started) => started,
            Err(e) => {
                portmatrix::diag!("portmatrix: error: {e}; check the --kafka-option settings");
                return Err(Exit::Usage);
            }
        };
        if let Err(why) = kafka.check_topic(&target.topic, CHECK_TOPIC) {
            if producing == Producing::Analyze {
                portmatrix::diag!(
                    "portmatrix: error: kafka ({target}): {why}; nothing was analysed"
                );
                return Err(Exit::OutputFailed);
            }
            portmatrix::diag!(
                "portmatrix: warning: kafka ({target}): {why}; capturing anyway, events wait \
for the broker (--kafka-queue, --kafka-timeout)"
            );
        }
        Ok(Some((KafkaOutput { kafka, target }, lines)))
    }

    pub fn counters(&self) -> Arc<KafkaCounters> {
        self.kafka.counters()
    }

    /// Give the broker `within` to take what is queued, then say what was
    /// delivered (always when something was not, else unless `quiet`).
    pub fn finish(self, within: Duration, quiet: bool) -> KafkaStats {
        let stats = self.kafka.finish(within);
        let lost = stats.undelivered();
        if lost > 0 || !quiet {
            portmatrix::diag!(
                "portmatrix: kafka: {} event(s) delivered to {}{}",
                stats.delivered,
                self.target,
                if lost > 0 {
                    format!(
                        "; {lost} not delivered ({} dropped with the queue full or too large, {} \
failed or timed out, {} still queued at the end)",
                        stats.dropped, stats.failed, stats.queued
                    )
                } else {
                    String::new()
                }
            );
        }
        stats
    }
}
