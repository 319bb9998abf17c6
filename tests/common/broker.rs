//! A real Kafka-protocol broker for the Kafka tests: Tansu (crates.io,
//! installed into ~/.cargo/bin by `scripts/setup --test`), started by the
//! test on a free loopback port (or on a fixed port of a lab's own
//! namespace), with its topics in memory, and stopped by its PID when
//! dropped. [`Broker::kill`] and [`Broker::restart`] make a broker that goes
//! away and comes back, as a real one does.
//!
//! Tansu 0.6 does not create topics on first use, and a restarted memory
//! broker has none: [`Broker::restart`] creates again the topics the test
//! created. Its high watermark lags by the last batch; the product's consumer
//! copes (src/output/kafka/consume.rs), and so must a test's.
//!
//! Without tansu the tests say SKIPPED; with `PORTMATRIX_LIVE_TESTS=require`
//! (scripts/test sets it when run as root, as in CI) that is a failure.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use super::lab::Lab;

/// How long a broker may take to listen, or a topic to be created.
const READY: Duration = Duration::from_secs(20);

/// A running Tansu broker.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    /// The lab namespace it runs in (its loopback), or `None`: the host's.
    ns: Option<String>,
    log: PathBuf,
    /// The topics created, with their partitions: made again on restart.
    topics: Vec<(String, u32)>,
    /// How many times it was started (its log is appended to: each start
    /// says "ready in" once).
    starts: usize,
}

/// The tansu binary: the one `scripts/setup --test` installs into
/// ~/.cargo/bin, else whatever the PATH has.
fn tansu() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    if let Some(bin) = home.map(|h| h.join("bin/tansu")).filter(|p| p.is_file()) {
        return Some(bin);
    }
    let out = Command::new("sh")
        .args(["-c", "command -v tansu"])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
}

/// Whether tansu is here; its absence is a failure with
/// `PORTMATRIX_LIVE_TESTS=require`, else the test says SKIPPED.
pub fn have_tansu(test: &str) -> bool {
    if tansu().is_some() {
        return true;
    }
    let why = "`tansu` (a Kafka broker) is not installed (scripts/setup --test installs it)";
    assert!(
        std::env::var("PORTMATRIX_LIVE_TESTS").as_deref() != Ok("require"),
        "{test}: {why}"
    );
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// A loopback port nobody listens on now (the kernel's pick, released).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
        .port()
}

impl Broker {
    /// A broker on a free port of the host's loopback, for `test` (its log
    /// goes in `dir`), or `None` when tansu is missing (see [`have_tansu`]).
    pub fn start(test: &str, dir: &Path) -> Option<Broker> {
        if !have_tansu(test) {
            return None;
        }
        Some(Broker::launch(free_port(), None, dir))
    }

    /// A broker on `port` of `lab`'s loopback (which must be up): the
    /// namespace is the lab's own, so a fixed port is nobody else's.
    pub fn in_lab(test: &str, lab: &Lab, port: u16, dir: &Path) -> Option<Broker> {
        if !have_tansu(test) {
            return None;
        }
        Some(Broker::launch(port, Some(lab.ns.clone()), dir))
    }

    fn launch(port: u16, ns: Option<String>, dir: &Path) -> Broker {
        let mut broker = Broker {
            child: None,
            port,
            ns,
            log: dir.join(format!("tansu-{port}.log")),
            topics: Vec::new(),
            starts: 0,
        };
        broker.run();
        broker
    }

    /// `host:port`, as `--kafka` takes it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// `tansu ARGS`, in the broker's namespace if it has one.
    fn command(&self, args: &[&str]) -> Command {
        let bin = tansu().expect("tansu was found before");
        let mut cmd = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        // Its settings come from the command line only, not from variables
        // such as LISTENER_URL or STORAGE_ENGINE that the machine may set.
        for var in [
            "CLUSTER_ID",
            "LISTENER_URL",
            "ADVERTISED_LISTENER_URL",
            "STORAGE_ENGINE",
            "SCHEMA_REGISTRY",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ] {
            cmd.env_remove(var);
        }
        cmd.args(args);
        cmd
    }

    /// Start the broker (its log appended to) and wait until it listens.
    fn run(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the broker's log");
        let err = log.try_clone().expect("the broker's log");
        let url = self.url();
        // `ip netns exec` execs the broker: the child's PID is the broker's.
        let child = self
            .command(&[
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        self.starts += 1;
        let deadline = Instant::now() + READY;
        while !self.listening() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "tansu ended ({status}) before it listened: {}",
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {url} within {READY:?}: {}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the broker accepts a connection now. In a namespace the
    /// test cannot connect itself: the broker's log says when it is ready.
    fn listening(&self) -> bool {
        match &self.ns {
            None => TcpStream::connect_timeout(
                &(Ipv4Addr::LOCALHOST, self.port).into(),
                Duration::from_secs(1),
            )
            .is_ok(),
            Some(_) => self.log_text().matches("ready in").count() >= self.starts,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Create `name` with `partitions` (Tansu does not create topics on
    /// first use); made again by [`Broker::restart`].
    pub fn create_topic(&mut self, name: &str, partitions: u32) {
        self.make_topic(name, partitions);
        self.topics.push((name.to_string(), partitions));
    }

    fn make_topic(&self, name: &str, partitions: u32) {
        let out = self
            .command(&[
                "topic",
                "create",
                name,
                "--broker",
                &self.url(),
                "--partitions",
                &partitions.to_string(),
            ])
            .output()
            .expect("run tansu topic create");
        assert!(
            out.status.success(),
            "tansu topic create {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Kill the broker now (SIGKILL to its PID): a broker that goes away
    /// without a word, its topics and messages with it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port, empty, and create its topics again.
    pub fn restart(&mut self) {
        self.kill();
        self.run();
        for (name, partitions) in &self.topics {
            self.make_topic(name, *partitions);
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One message of a topic.
#[derive(Debug)]
pub struct Message {
    pub partition: i32,
    pub key: Option<String>,
    pub payload: String,
}

impl Message {
    pub fn event(&self) -> Value {
        serde_json::from_str(&self.payload)
            .unwrap_or_else(|e| panic!("a message is not one JSON event ({e}): {}", self.payload))
    }
}

/// Every message of `topic`, read by a consumer of our own (not the
/// product's): each partition from its start until it has said it is at its
/// end and nothing more came for a second (Tansu's watermark lags by a batch:
/// the end is not trusted alone).
pub fn consume(address: &str, topic: &str) -> Vec<Message> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", address)
        .set("group.id", "portmatrix-kafka-test")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .expect("a consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("the broker's metadata");
    let partitions: Vec<i32> = metadata.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    assert!(!partitions.is_empty(), "topic {topic} has no partitions");
    let mut assignment = TopicPartitionList::new();
    for &p in &partitions {
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .expect("assign");
    }
    consumer.assign(&assignment).expect("assign");
    let mut messages = Vec::new();
    let mut at_end = BTreeSet::new();
    let mut last = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    while at_end.len() < partitions.len() || last.elapsed() < Duration::from_secs(1) {
        assert!(
            Instant::now() < deadline,
            "{topic}: not read to its end within 30 s ({} messages, ends {at_end:?})",
            messages.len()
        );
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
                last = Instant::now();
            }
            Some(Err(e)) => panic!("consuming {topic}: {e}"),
            Some(Ok(m)) => {
                last = Instant::now();
                messages.push(Message {
                    partition: m.partition(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    payload: String::from_utf8(m.payload().unwrap_or_default().to_vec())
                        .expect("a message is UTF-8"),
                });
            }
        }
    }
    messages
}
