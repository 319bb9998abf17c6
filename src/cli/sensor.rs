//! `live`'s options for a sensor that others watch: syslog and metrics.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use portmatrix::output::syslog::SyslogTarget;

#[derive(Debug, Args)]
pub struct SensorArgs {
    /// Also send every event written as an RFC 5424 syslog message whose text is its JSON line
    /// (as Suricata does): unix:/dev/log, udp://HOST:PORT or tcp://HOST:PORT (octet-counted
    /// framing). A receiver that is away never slows capture: its messages are dropped and
    /// counted (stats.syslog).
    #[arg(long, value_name = "TARGET", value_parser = parse_syslog)]
    pub syslog: Option<SyslogTarget>,
    /// Serve Prometheus metrics at http://ADDR/metrics: a PORT alone listens on 127.0.0.1;
    /// give an address (0.0.0.0:9911) to be scraped from elsewhere.
    #[arg(long, value_name = "[HOST:]PORT", value_parser = parse_metrics_addr)]
    pub metrics: Option<SocketAddr>,
    /// Write the metrics to FILE for node_exporter's textfile collector (name it *.prom),
    /// replaced whole every --metrics-interval.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// How often --metrics-file is rewritten: e.g. 15s, 1m.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = super::parse_duration)]
    pub metrics_interval: Duration,
}

fn parse_syslog(s: &str) -> Result<SyslogTarget, String> {
    s.parse()
}

/// `9911` is 127.0.0.1:9911: metrics leave the host only when asked to.
fn parse_metrics_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    s.parse().map_err(|_| {
        format!("`{s}` is not a PORT or an IP:PORT (e.g. 9911, 127.0.0.1:9911, [::1]:9911)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_alone_listens_on_loopback_and_an_address_where_it_says() {
        let local = parse_metrics_addr("9911").expect("a port");
        assert_eq!(local, "127.0.0.1:9911".parse().expect("addr"));
        let any = parse_metrics_addr("0.0.0.0:9911").expect("an address");
        assert!(any.ip().is_unspecified());
        assert!(parse_metrics_addr("[::1]:9911").is_ok());
        assert!(parse_metrics_addr("localhost:9911").is_err());
    }
}
