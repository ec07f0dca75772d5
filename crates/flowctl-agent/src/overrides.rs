//! Command-line settings that override (or replace) the configuration file,
//! for quick use without a file (`flowctl agent -i eth0 --collector udp://...`).

use crate::config::file::{CollectorEntry, ConfigFile, InterfaceEntry, TlsEntry};

/// Flags given on the command line; `None`/empty leaves the file's value.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Interfaces (replace the file's list when not empty).
    pub interfaces: Vec<String>,
    /// Namespace of those interfaces.
    pub netns: Option<String>,
    /// Direction of those interfaces.
    pub direction: Option<String>,
    /// Collector URLs `udp://host:port`, `tcp://host:port` or `tls://host:port` (replace the file's list when not empty).
    pub collectors: Vec<String>,
    /// Certificates of the `tls://` collectors.
    pub tls: TlsEntry,
    /// Idle timeout of every protocol.
    pub idle_timeout: Option<String>,
    /// Active timeout.
    pub active_timeout: Option<String>,
    /// Template refresh interval.
    pub template_refresh: Option<String>,
    /// Scan interval.
    pub scan_interval: Option<String>,
    /// Flow cache capacity.
    pub max_flows: Option<u32>,
    /// Detach the agent's interfaces on exit.
    pub detach_on_exit: bool,
    /// `auto`, `tcx` or `tc`.
    pub attach_mode: Option<String>,
    /// `first` or `last`.
    pub attach_order: Option<String>,
    /// Listen address of the Prometheus endpoint (turns it on).
    pub metrics_address: Option<String>,
    /// Turn the Prometheus endpoint off.
    pub no_metrics: bool,
    /// Spool directory.
    pub spool_dir: Option<String>,
    /// Control socket path.
    pub control_socket: Option<String>,
    /// Sampling interval of every interface.
    pub sample_interval: Option<u64>,
    /// Sampling mode of every interface.
    pub sample_mode: Option<String>,
    /// `text` or `json` (`--log-format`).
    pub log_format: Option<String>,
}

/// Splits `udp://host:port`, `tcp://host:port`, `tls://host:port` or `host:port` (UDP).
pub fn parse_collector_url(url: &str) -> Result<(String, String), String> {
    let (transport, address) = match url.split_once("://") {
        Some((scheme @ ("udp" | "tcp" | "tls"), rest)) => (scheme, rest),
        Some((scheme, _)) => {
            return Err(format!(
                "{url:?}: unknown scheme {scheme:?} (use udp://, tcp:// or tls://)"
            ))
        }
        None => ("udp", url),
    };
    crate::config::socket_address(address)?;
    Ok((transport.to_string(), address.to_string()))
}

impl Overrides {
    /// Applies the flags to a parsed file.
    pub fn apply(&self, file: &mut ConfigFile) -> Result<(), String> {
        if !self.interfaces.is_empty() {
            file.interfaces = self
                .interfaces
                .iter()
                .map(|name| InterfaceEntry {
                    name: name.clone(),
                    netns: self.netns.clone(),
                    direction: self.direction.clone(),
                    sampling: None,
                })
                .collect();
        }
        if self.sample_interval.is_some() || self.sample_mode.is_some() {
            for i in &mut file.interfaces {
                let s = i.sampling.get_or_insert_with(Default::default);
                if self.sample_interval.is_some() {
                    s.interval = self.sample_interval;
                }
                if self.sample_mode.is_some() {
                    s.mode = self.sample_mode.clone();
                }
            }
        }
        if !self.collectors.is_empty() {
            file.collectors = self
                .collectors
                .iter()
                .map(|url| {
                    let (transport, address) = parse_collector_url(url)?;
                    let tls = (transport == "tls").then(|| self.tls.clone());
                    Ok(CollectorEntry {
                        address,
                        transport: Some(transport),
                        protocol: None,
                        tls,
                        exporter_address: None,
                        local_address: None,
                        observation_domain_id: None,
                        max_message_size: None,
                    })
                })
                .collect::<Result<_, String>>()?;
        }
        let t = &mut file.timers;
        for (value, slot) in [
            (&self.idle_timeout, &mut t.idle_timeout),
            (&self.active_timeout, &mut t.active_timeout),
            (&self.template_refresh, &mut t.template_refresh),
            (&self.scan_interval, &mut t.scan_interval),
        ] {
            if value.is_some() {
                *slot = value.clone();
            }
        }
        if self.idle_timeout.is_some() {
            // One idle timeout for every protocol, as softflowd's general timeout.
            file.timers.idle_timeouts = Default::default();
        }
        if self.max_flows.is_some() {
            file.max_flows = self.max_flows;
        }
        file.detach_on_exit |= self.detach_on_exit;
        if self.attach_mode.is_some() {
            file.attach_mode = self.attach_mode.clone();
        }
        if self.attach_order.is_some() {
            file.attach_order = self.attach_order.clone();
        }
        if let Some(address) = &self.metrics_address {
            file.metrics.address = Some(address.clone());
            file.metrics.enabled = Some(true);
        }
        if self.spool_dir.is_some() {
            file.spool.directory = self.spool_dir.clone();
        }
        if self.control_socket.is_some() {
            file.control.socket = self.control_socket.clone();
        }
        if self.log_format.is_some() {
            file.log.format = self.log_format.clone();
        }
        if self.no_metrics {
            file.metrics.enabled = Some(false);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_urls() {
        assert_eq!(
            parse_collector_url("udp://127.0.0.1:4739").unwrap(),
            ("udp".into(), "127.0.0.1:4739".into())
        );
        assert_eq!(
            parse_collector_url("tcp://[::1]:4739").unwrap(),
            ("tcp".into(), "[::1]:4739".into())
        );
        assert_eq!(parse_collector_url("127.0.0.1:2055").unwrap().0, "udp");
        assert!(parse_collector_url("sctp://127.0.0.1:1")
            .unwrap_err()
            .contains("unknown scheme"));
        assert!(parse_collector_url("udp://nowhere").is_err());
    }

    #[test]
    fn flags_replace_lists_and_override_timers() {
        let mut file = crate::config::parse(
            "collectors:\n  - address: 10.0.0.1:4739\ntimers:\n  idleTimeout: 1m\n  idleTimeouts: {tcp: 5m}\n",
            "f",
        )
        .unwrap();
        let o = Overrides {
            interfaces: vec!["veth0".into()],
            collectors: vec!["tcp://127.0.0.1:9995".into()],
            idle_timeout: Some("10s".into()),
            ..Default::default()
        };
        o.apply(&mut file).unwrap();
        assert_eq!(file.interfaces[0].name, "veth0");
        assert_eq!(file.collectors.len(), 1);
        assert_eq!(file.collectors[0].transport.as_deref(), Some("tcp"));
        assert_eq!(file.timers.idle_timeout.as_deref(), Some("10s"));
        assert!(file.timers.idle_timeouts.tcp.is_none());
    }

    #[test]
    fn the_log_format_flag_overrides_the_file() {
        let mut file = crate::config::parse("log:\n  format: text\n", "f").unwrap();
        Overrides::default().apply(&mut file).unwrap();
        assert_eq!(file.log.format.as_deref(), Some("text"), "no flag: the file's");
        let json = Overrides {
            log_format: Some("json".into()),
            ..Default::default()
        };
        json.apply(&mut file).unwrap();
        assert_eq!(file.log.format.as_deref(), Some("json"));
    }

    #[test]
    fn metrics_flags_turn_the_endpoint_on_or_off() {
        let parse = |yaml: &str| crate::config::parse(yaml, "f").unwrap();
        let mut file = parse("metrics:\n  enabled: false\n");
        let on = Overrides {
            metrics_address: Some("127.0.0.1:0".into()),
            ..Default::default()
        };
        on.apply(&mut file).unwrap();
        assert_eq!(file.metrics.enabled, Some(true));
        assert_eq!(file.metrics.address.as_deref(), Some("127.0.0.1:0"));
        let mut file = parse("metrics:\n  address: 127.0.0.1:9100\n");
        let off = Overrides {
            no_metrics: true,
            ..Default::default()
        };
        off.apply(&mut file).unwrap();
        assert_eq!(file.metrics.enabled, Some(false));
    }

    #[test]
    fn sampling_flags_set_every_interface() {
        let mut file = crate::config::parse(
            "interfaces:\n  - name: a\n  - name: b\n    sampling: {interval: 5, mode: deterministic}\n",
            "f",
        )
        .unwrap();
        let o = Overrides {
            sample_interval: Some(100),
            ..Default::default()
        };
        o.apply(&mut file).unwrap();
        let got: Vec<_> = file
            .interfaces
            .iter()
            .map(|i| {
                let s = i.sampling.clone().unwrap();
                (s.interval, s.mode)
            })
            .collect();
        assert_eq!(got, [(Some(100), None), (Some(100), Some("deterministic".to_string()))]);
    }
}
