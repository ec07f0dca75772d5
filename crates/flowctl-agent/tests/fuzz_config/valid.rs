//! Valid configurations, and what each must read back as.

use std::net::{Ipv6Addr, SocketAddr};
use std::time::Duration;

use flowctl_agent::config::AgentConfig;
use flowctl_datapath::Direction;
use flowctl_export::Protocol;
use flowctl_ipfix::fields::{self, FieldDef, FieldKind};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use serde_yaml_ng::{Mapping, Value};

use crate::broken::weird_string;

/// A humantime duration written in parts (`1m 30s`), and its value.
#[derive(Clone, Debug)]
struct DurationText {
    text: String,
    value: Duration,
}

fn duration_text() -> impl Strategy<Value = DurationText> {
    let unit = select(vec![
        ("ms", Duration::from_millis(1)),
        ("s", Duration::from_secs(1)),
        ("sec", Duration::from_secs(1)),
        ("m", Duration::from_secs(60)),
        ("min", Duration::from_secs(60)),
        ("h", Duration::from_secs(3600)),
        ("d", Duration::from_secs(86_400)),
    ]);
    (prop::collection::vec((1u32..=1000, unit), 1..=3), any::<bool>()).prop_map(|(parts, spaced)| {
        let text = parts
            .iter()
            .map(|(n, (u, _))| format!("{n}{u}"))
            .collect::<Vec<_>>()
            .join(if spaced { " " } else { "" });
        let value = parts.iter().map(|(n, (_, d))| *d * *n).sum();
        DurationText { text, value }
    })
}

#[derive(Clone, Debug)]
struct InterfaceGen {
    name: String,
    netns: Option<String>,
    /// The YAML value and the directions it means.
    direction: Option<(&'static str, Vec<Direction>)>,
}

fn interface() -> impl Strategy<Value = InterfaceGen> {
    let chars = select("abcxyz019._-@éü".chars().collect::<Vec<_>>());
    let name = prop::collection::vec(chars, 1..=8)
        .prop_map(|c| c.into_iter().collect::<String>())
        .prop_filter(
            "interface names the kernel accepts: at most 15 bytes, not . or ..",
            |n| n.len() <= 15 && n != "." && n != "..",
        );
    let direction = prop::option::of(select(vec![
        ("egress", vec![Direction::Egress]),
        ("ingress", vec![Direction::Ingress]),
        ("both", vec![Direction::Ingress, Direction::Egress]),
    ]));
    (name, prop::option::of(weird_string()), direction).prop_map(|(name, netns, direction)| InterfaceGen {
        name,
        netns,
        direction,
    })
}

fn socket_address(v6: bool) -> BoxedStrategy<SocketAddr> {
    if v6 {
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(a, p)| SocketAddr::from((Ipv6Addr::from(a), p)))
            .boxed()
    } else {
        (any::<[u8; 4]>(), any::<u16>()).prop_map(SocketAddr::from).boxed()
    }
}

#[derive(Clone, Debug)]
struct CollectorGen {
    address: SocketAddr,
    tcp: Option<bool>,
    local: Option<SocketAddr>,
    odid: Option<u32>,
    max_size: Option<u32>,
}

fn collector() -> impl Strategy<Value = CollectorGen> {
    any::<bool>().prop_flat_map(|v6| {
        (
            socket_address(v6),
            prop::option::of(any::<bool>()),
            prop::option::of(socket_address(v6)),
            prop::option::of(any::<u32>()),
            // Every generated template and one record fit in 512 bytes.
            prop::option::of(512u32..=65535),
        )
            .prop_map(|(address, tcp, local, odid, max_size)| {
                // UDP carries at most 65507 (IPv4) or 65527 (IPv6) bytes.
                let udp_max = if address.is_ipv6() { 65527 } else { 65507 };
                let max_size = max_size.map(|m| if tcp == Some(true) { m } else { m.min(udp_max) });
                CollectorGen {
                    address,
                    tcp,
                    local,
                    odid,
                    max_size,
                }
            })
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum IpVersion {
    V4,
    V6,
    Both,
}

#[derive(Clone, Debug)]
struct TemplateGen {
    id: u16,
    /// (name as written, IANA name, written as `{name: ...}`).
    fields: Vec<(&'static str, &'static str, bool)>,
    /// `template:` instead of `fields:`.
    template_key: bool,
}

/// Fields the agent can fill that suit templates of `version`.
fn eligible(version: IpVersion) -> Vec<&'static FieldDef> {
    fields::all()
        .iter()
        .filter(|f| f.is_available())
        .filter(|f| match version {
            IpVersion::V4 => f.kind != FieldKind::Ipv6Address,
            IpVersion::V6 => f.kind != FieldKind::Ipv4Address,
            IpVersion::Both => !matches!(f.kind, FieldKind::Ipv4Address | FieldKind::Ipv6Address),
        })
        .collect()
}

fn template(version: IpVersion) -> impl Strategy<Value = TemplateGen> {
    let defs = eligible(version);
    // At most 13 fields of at most 16 bytes: template and record fit in 512 bytes.
    let chosen = subsequence(defs, 1..=12).prop_shuffle();
    let named = chosen.prop_flat_map(|defs| {
        let n = defs.len();
        (
            Just(defs),
            prop::collection::vec(any::<bool>(), n),
            prop::collection::vec(any::<bool>(), n),
        )
    });
    // An IPv4 or IPv6 template needs an address field of its version.
    let required = named.prop_map(move |(mut defs, mut alias, mut object)| {
        let kind = match version {
            IpVersion::V4 => Some((FieldKind::Ipv4Address, "sourceIPv4Address")),
            IpVersion::V6 => Some((FieldKind::Ipv6Address, "destinationIPv6Address")),
            IpVersion::Both => None,
        };
        if let Some((kind, name)) = kind {
            if !defs.iter().any(|f| f.kind == kind) {
                let at = alias.len() / 2;
                defs.insert(at, fields::lookup(name).expect("a registry field"));
                alias.insert(at, false);
                object.insert(at, false);
            }
        }
        (defs, alias, object)
    });
    (required, any::<bool>()).prop_map(|((defs, alias, object), template_key)| TemplateGen {
        id: 0,
        fields: defs
            .iter()
            .zip(alias)
            .zip(object)
            .map(|((f, alias), object)| {
                let written = if alias {
                    f.aliases.first().copied().unwrap_or(f.name)
                } else {
                    f.name
                };
                (written, f.name, object)
            })
            .collect(),
        template_key,
    })
}

fn templates() -> impl Strategy<Value = Vec<TemplateGen>> {
    use IpVersion::*;
    let versions = prop_oneof![
        Just(vec![]),
        prop::option::of(select(vec![V4, V6, Both]))
            .prop_map(|extra| [vec![V4, V6], extra.into_iter().collect()].concat()),
        prop::collection::vec(select(vec![V4, V6, Both]), 0..=2).prop_map(|extra| [vec![Both], extra].concat()),
    ]
    .prop_shuffle();
    versions.prop_flat_map(|versions| {
        let n = versions.len();
        let ids = prop::collection::hash_set(256u16..=65535, n)
            .prop_filter("65000, 65001 and 65002 are reserved", |ids| {
                !ids.contains(&65000) && !ids.contains(&65001) && !ids.contains(&65002)
            });
        let ts: Vec<_> = versions.into_iter().map(template).collect();
        (ids, ts).prop_map(|(ids, mut ts)| {
            for (t, id) in ts.iter_mut().zip(ids) {
                t.id = id;
            }
            ts
        })
    })
}

#[derive(Clone, Debug)]
pub struct ConfigGen {
    /// Written in flow style (`{a: [b]}`) rather than block style.
    pub flow: bool,
    interfaces: Vec<InterfaceGen>,
    max_flows: Option<u32>,
    detach: Option<bool>,
    collectors: Vec<CollectorGen>,
    /// idleTimeout, tcp, udp, icmp, other, activeTimeout, tcpEndGrace, templateRefresh, scanInterval.
    timers: [Option<DurationText>; 9],
    templates: Vec<TemplateGen>,
}

pub fn valid_config() -> impl Strategy<Value = ConfigGen> {
    let timers = prop::array::uniform9(prop::option::of(duration_text()));
    (
        prop::collection::vec(interface(), 0..=3),
        prop::option::of(1u32..=flowctl_datapath::cache_memory::MAX_FLOWS_LIMIT),
        prop::option::of(any::<bool>()),
        prop::collection::vec(collector(), 1..=3),
        timers,
        templates(),
        any::<bool>(),
    )
        .prop_map(
            |(interfaces, max_flows, detach, collectors, timers, templates, flow)| ConfigGen {
                flow,
                interfaces,
                max_flows,
                detach,
                collectors,
                timers,
                templates,
            },
        )
}

/// A string value.
pub fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

fn map(entries: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    Value::Mapping(entries.into_iter().map(|(k, v)| (s(k), v)).collect::<Mapping>())
}

impl ConfigGen {
    /// The configuration as YAML text.
    pub fn text(&self) -> String {
        crate::emit::document(&self.to_yaml(), self.flow)
    }

    /// The configuration as a YAML tree.
    pub fn to_yaml(&self) -> Value {
        let mut top: Vec<(&'static str, Value)> = Vec::new();
        if !self.interfaces.is_empty() {
            let list = self.interfaces.iter().map(|i| {
                let mut e = vec![("name", s(&i.name))];
                if let Some(n) = &i.netns {
                    e.push(("netns", s(n)));
                }
                if let Some((d, _)) = &i.direction {
                    e.push(("direction", s(d)));
                }
                map(e)
            });
            top.push(("interfaces", Value::Sequence(list.collect())));
        }
        if let Some(n) = self.max_flows {
            top.push(("maxFlows", n.into()));
        }
        if let Some(d) = self.detach {
            top.push(("detachOnExit", d.into()));
        }
        let collectors = self.collectors.iter().map(|c| {
            let mut e = vec![("address", s(&c.address.to_string()))];
            if let Some(tcp) = c.tcp {
                e.push(("transport", s(if tcp { "tcp" } else { "udp" })));
            }
            if let Some(l) = c.local {
                e.push(("localAddress", s(&l.to_string())));
            }
            if let Some(o) = c.odid {
                e.push(("observationDomainId", o.into()));
            }
            if let Some(m) = c.max_size {
                e.push(("maxMessageSize", m.into()));
            }
            map(e)
        });
        top.push(("collectors", Value::Sequence(collectors.collect())));
        let t = |i: usize| self.timers[i].as_ref().map(|d| s(&d.text));
        let idle: Vec<_> = ["tcp", "udp", "icmp", "other"]
            .iter()
            .enumerate()
            .filter_map(|(i, k)| Some((*k, t(1 + i)?)))
            .collect();
        let mut timers: Vec<(&'static str, Value)> = Vec::new();
        if let Some(v) = t(0) {
            timers.push(("idleTimeout", v));
        }
        if !idle.is_empty() {
            timers.push(("idleTimeouts", map(idle)));
        }
        for (i, k) in ["activeTimeout", "tcpEndGrace", "templateRefresh", "scanInterval"]
            .iter()
            .enumerate()
        {
            if let Some(v) = t(5 + i) {
                timers.push((k, v));
            }
        }
        if !timers.is_empty() {
            top.push(("timers", map(timers)));
        }
        if !self.templates.is_empty() {
            let list = self.templates.iter().map(|t| {
                let fields = t.fields.iter().map(|(written, _, object)| {
                    if *object {
                        map([("name", s(written))])
                    } else {
                        s(written)
                    }
                });
                let key = if t.template_key { "template" } else { "fields" };
                map([("id", t.id.into()), (key, Value::Sequence(fields.collect()))])
            });
            top.push(("templates", Value::Sequence(list.collect())));
        }
        map(top)
    }

    /// Checks `c` against what was generated, with the documented defaults.
    pub fn check(&self, c: &AgentConfig) -> Result<(), TestCaseError> {
        let interfaces: Vec<_> = c
            .interfaces
            .iter()
            .map(|i| (i.name.clone(), i.netns.clone(), i.directions.clone()))
            .collect();
        let want: Vec<_> = self
            .interfaces
            .iter()
            .map(|i| {
                let dirs = i.direction.as_ref().map_or(vec![Direction::Egress], |d| d.1.clone());
                (i.name.clone(), i.netns.clone(), dirs)
            })
            .collect();
        prop_assert_eq!(interfaces, want);
        prop_assert_eq!(c.max_flows, self.max_flows);
        prop_assert_eq!(c.detach_on_exit, self.detach.unwrap_or(false));
        prop_assert_eq!(c.collectors.len(), self.collectors.len());
        for (got, g) in c.collectors.iter().zip(&self.collectors) {
            let tcp = g.tcp.unwrap_or(false);
            let default_size = match (tcp, g.address) {
                (true, _) => 65535,
                (false, SocketAddr::V4(_)) => 1472,
                (false, SocketAddr::V6(_)) => 1452,
            };
            prop_assert_eq!(got.endpoint.address, g.address);
            prop_assert_eq!(got.endpoint.protocol, if tcp { Protocol::Tcp } else { Protocol::Udp });
            prop_assert_eq!(got.endpoint.local_address, g.local);
            prop_assert_eq!(got.observation_domain_id, g.odid.unwrap_or(1));
            prop_assert_eq!(got.max_message_size, g.max_size.unwrap_or(default_size) as usize);
        }
        let d = |i: usize, default: Duration| self.timers[i].as_ref().map_or(default, |t| t.value);
        let idle = d(0, Duration::from_secs(15));
        let t = &c.timeouts;
        prop_assert_eq!(
            [t.idle_tcp, t.idle_udp, t.idle_icmp, t.idle_other],
            [d(1, idle), d(2, idle), d(3, idle), d(4, idle)]
        );
        prop_assert_eq!(t.active, d(5, Duration::from_secs(60)));
        prop_assert_eq!(t.tcp_end_grace, d(6, Duration::from_secs(5)));
        prop_assert_eq!(c.template_refresh, d(7, Duration::from_secs(60)));
        prop_assert_eq!(c.scan_interval, d(8, Duration::from_secs(1)));
        let got: Vec<(u16, Vec<&str>)> = c
            .templates
            .iter()
            .map(|t| (t.id, t.fields.iter().map(|f| f.name).collect()))
            .collect();
        if self.templates.is_empty() {
            // The built-in IPv4 (256) and IPv6 (257) templates.
            prop_assert_eq!(got.iter().map(|t| t.0).collect::<Vec<_>>(), vec![256, 257]);
        } else {
            let want: Vec<(u16, Vec<&str>)> = self
                .templates
                .iter()
                .map(|t| (t.id, t.fields.iter().map(|f| f.1).collect()))
                .collect();
            prop_assert_eq!(got, want);
        }
        Ok(())
    }
}
