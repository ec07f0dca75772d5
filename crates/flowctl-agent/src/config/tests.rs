//! Configuration parsing and validation.

use std::time::Duration;

use flowctl_export::Protocol;
use flowctl_ipfix::template::Strictness;

use super::{parse, validate, AgentConfig, ConfigError};

fn check(yaml: &str) -> Result<AgentConfig, ConfigError> {
    validate(&parse(yaml, "test.yaml")?, "test.yaml", Strictness::Agent)
}

fn error(yaml: &str) -> String {
    check(yaml).expect_err("config should be refused").to_string()
}

const COLLECTOR: &str = "collectors:\n  - address: 127.0.0.1:4739\n";

#[test]
fn a_full_configuration_is_read_with_every_key() {
    let c = check(
        r#"
interfaces:
  - name: veth0
    netns: ns1
    direction: both
maxFlows: 1024
detachOnExit: true
collectors:
  - address: 127.0.0.1:4739
    transport: tcp
    observationDomainId: 7
  - address: "[::1]:2055"
    maxMessageSize: 1400
timers:
  idleTimeout: 20s
  idleTimeouts: {tcp: 2m, icmp: 5s}
  activeTimeout: 1m 30s
  tcpEndGrace: 3s
  templateRefresh: 30s
  scanInterval: 500ms
templates:
  - id: 300
    fields: [sourceIPv4Address, destinationIPv4Address, octetDeltaCount]
  - id: 301
    template:
      - name: SourceIPv6Address
      - name: PacketDeltaCount
metrics:
  enabled: true
  address: "[::1]:9100"
"#,
    )
    .unwrap();
    assert_eq!(c.interfaces[0].directions.len(), 2);
    assert_eq!(c.max_flows, Some(1024));
    assert!(c.detach_on_exit);
    assert_eq!(c.collectors[0].endpoint.protocol, Protocol::Tcp);
    assert_eq!(c.collectors[0].observation_domain_id, 7);
    assert_eq!(c.collectors[0].max_message_size, 65535);
    assert_eq!(c.collectors[1].endpoint.protocol, Protocol::Udp);
    assert_eq!(c.collectors[1].max_message_size, 1400);
    assert_eq!(c.timeouts.idle_tcp, Duration::from_secs(120));
    assert_eq!(c.timeouts.idle_udp, Duration::from_secs(20));
    assert_eq!(c.timeouts.idle_icmp, Duration::from_secs(5));
    assert_eq!(c.timeouts.active, Duration::from_secs(90));
    assert_eq!(c.scan_interval, Duration::from_millis(500));
    assert_eq!(c.templates.iter().map(|t| t.id).collect::<Vec<_>>(), vec![300, 301]);
    assert_eq!(c.metrics, Some("[::1]:9100".parse().unwrap()));
}

#[test]
fn sampling_is_per_interface_random_by_default_and_every_packet_without_it() {
    use flowctl_model::{SampleMode, Sampling};
    let c = check(&format!(
        "{COLLECTOR}interfaces:\n  - name: eth0\n    sampling: {{interval: 100}}\n  - name: eth1\n    sampling: {{interval: 8, mode: deterministic}}\n  - name: eth2\n"
    ))
    .unwrap();
    let s: Vec<Sampling> = c.interfaces.iter().map(|i| i.sampling).collect();
    assert_eq!(
        s,
        [
            Sampling::new(100, SampleMode::Random).unwrap(),
            Sampling::new(8, SampleMode::Deterministic).unwrap(),
            Sampling::NONE
        ]
    );
}

#[test]
fn metrics_default_to_loopback_port_9999_and_can_be_turned_off() {
    assert_eq!(
        check(COLLECTOR).unwrap().metrics,
        Some("127.0.0.1:9999".parse().unwrap())
    );
    let off = check(&format!(
        "{COLLECTOR}metrics:\n  enabled: false\n  address: 0.0.0.0:9999\n"
    ))
    .unwrap();
    assert_eq!(off.metrics, None);
    let any = check(&format!("{COLLECTOR}metrics:\n  enabled: true\n  address: 0.0.0.0:0\n")).unwrap();
    assert_eq!(any.metrics, Some("0.0.0.0:0".parse().unwrap()));
}

#[test]
fn netflow9_collectors_take_the_built_in_templates_and_v9_fields() {
    let c = check("collectors:\n  - address: 127.0.0.1:2055\n    protocol: netflow9\n").unwrap();
    assert_eq!(c.collectors[0].format, flowctl_export::ExportFormat::NetflowV9);
    assert_eq!(c.collectors[0].max_message_size, 1472);
    assert_eq!(super::netflow9::dropped_fields(&c.templates), ["flowEndReason"]);
    let v9_fields = "collectors:\n  - address: 127.0.0.1:2055\n    protocol: netflow9\ntemplates:\n  - id: 300\n    \
                     fields: [sourceIPv4Address, icmpTypeCodeIPv4, tcpControlBits, flowStartMilliseconds, packetTotalCount]\n  \
                     - id: 301\n    fields: [sourceIPv6Address, icmpTypeCodeIPv6, flowEndMilliseconds]\n";
    let c = check(v9_fields).unwrap();
    assert!(super::netflow9::dropped_fields(&c.templates).is_empty());
    let ids: Vec<u16> = c.templates.iter().map(|t| t.id).collect();
    assert_eq!(ids, [300, 301]);
}

#[test]
fn defaults_fill_what_is_missing() {
    let c = check(COLLECTOR).unwrap();
    assert_eq!(
        c.collectors[0].max_message_size, 1472,
        "fits a 1500-byte MTU over UDP/IPv4"
    );
    assert_eq!(c.collectors[0].observation_domain_id, 1);
    assert_eq!(c.templates.len(), 2, "built-in IPv4 and IPv6 templates");
    assert_eq!(c.templates[0].ip_version(), Some(4));
    assert_eq!(c.templates[1].ip_version(), Some(6));
    assert_eq!(c.template_refresh, Duration::from_secs(60));
    let v6 = check("collectors:\n  - address: \"[::1]:4739\"\n").unwrap();
    assert_eq!(v6.collectors[0].max_message_size, 1452);
}

#[test]
fn bad_values_are_refused_naming_file_key_and_problem() {
    let cases: &[(&str, &str)] = &[
        ("collectors: []\n", "test.yaml: collectors: no collector"),
        ("collectors:\n  - address: nowhere\n", "test.yaml: collectors[0].address:"),
        ("collectors:\n  - address: 127.0.0.1:4739\n    transport: sctp\n", "collectors[0].transport: \"sctp\" is not udp, tcp or tls"),
        ("collectors:\n  - address: 127.0.0.1:4739\n    transport: tls\n", "collectors[0].tls: transport tls needs tls.caFile"),
        ("collectors:\n  - address: 127.0.0.1:4739\n    tls: {caFile: /nonexistent.pem}\n", "collectors[0].tls: is only for transport: tls"),
        ("collectors:\n  - address: 127.0.0.1:4739\n    transport: tls\n    tls: {caFile: /nonexistent.pem}\n", "collectors[0].tls: /nonexistent.pem: cannot read"),
        ("collectors:\n  - address: 127.0.0.1:4739\n    transport: tls\n    tls: {certFile: /c.pem}\n", "collectors[0].tls.caFile: is required"),
        ("collectors:\n  - address: 127.0.0.1:4739\n    protocol: netflow5\n", "collectors[0].protocol: \"netflow5\" is not ipfix or netflow9"),
        ("collectors:\n  - address: 127.0.0.1:4739\n    transport: tcp\n    protocol: netflow9\n", "collectors[0].protocol: netflow9 goes over udp only, not tcp: the v9 header has no message length"),
        ("collectors:\n  - address: 127.0.0.1:4739\n    transport: tls\n    protocol: netflow9\n    tls: {caFile: /c.pem}\n", "collectors[0].protocol: netflow9 goes over udp only, not tls"),
        ("collectors:\n  - address: 127.0.0.1:4739\n  - address: 127.0.0.1:2055\n    protocol: netflow9\ntemplates:\n  - id: 300\n    fields: [packetDeltaCount, flowEndReason]\n", "test.yaml: templates[0].fields: \"flowEndReason\" (IPFIX IE 136) cannot go over NetFlow v9 (the protocol of collectors[1]): v9 field types stop at 127"),
        ("collectors:\n  - address: 127.0.0.1:2055\n    protocol: netflow9\ntemplates:\n  - id: 300\n    fields: [packetDeltaCount, flowStartSeconds]\n", "cannot go over NetFlow v9 (the protocol of collectors[0]): v9 carries flow times only as FIRST_SWITCHED/LAST_SWITCHED, milliseconds of sysUptime: use flowStartMilliseconds"),
        ("collectors:\n  - address: 127.0.0.1:2055\n    protocol: netflow9\ntemplates:\n  - id: 300\n    fields: [icmpTypeCodeIPv4, icmpTypeCodeIPv6]\n", "templates[0].fields: \"icmpTypeCodeIPv4\" and \"icmpTypeCodeIPv6\" are both field type 32 in NetFlow v9"),
        ("collectors:\n  - address: 127.0.0.1:4739\n    exporterAddress: host.example\n", "collectors[0].exporterAddress: \"host.example\" is not an IP address"),
        ("collectors:\n  - address: 127.0.0.1:4739\n    maxMessageSize: 100\n", "collectors[0].maxMessageSize: 100 is outside"),
        ("collectors:\n  - address: 127.0.0.1:4739\n    colour: blue\n", "unknown field `colour`"),
        (&format!("{COLLECTOR}timers:\n  activeTimeout: 5 parsecs\n"), "test.yaml: timers.activeTimeout: \"5 parsecs\" is not a duration"),
        (&format!("{COLLECTOR}timers:\n  idleTimeouts: {{tcp: 0s}}\n"), "timers.idleTimeouts.tcp: \"0s\": must be longer than 0"),
        (&format!("{COLLECTOR}templates:\n  - id: 100\n    fields: [octetDeltaCount]\n"), "test.yaml: templates[0].id: template id 100"),
        (
            &format!("{COLLECTOR}templates:\n  - id: 300\n    fields: [octetDeltaCount]\n  - id: 300\n    fields: [packetDeltaCount]\n"),
            "templates[1].id: duplicate template id 300",
        ),
        (&format!("{COLLECTOR}templates:\n  - id: 65000\n    fields: [octetDeltaCount]\n"), "templates[0].id: 65000 is reserved"),
        (&format!("{COLLECTOR}templates:\n  - id: 300\n    fields: [octetDeltaCounts]\n"), "templates[0].fields:"),
        (&format!("{COLLECTOR}templates:\n  - id: 300\n    fields: [BgpSourceAsNumber]\n"), "templates[0].fields:"),
        (
            &format!("{COLLECTOR}templates:\n  - id: 300\n    fields: [sourceIPv4Address, octetDeltaCount]\n"),
            "no template can carry IPv6 flows",
        ),
        (&format!("{COLLECTOR}maxFlows: 0\n"), "test.yaml: maxFlows: must be at least 1"),
        (
            &format!("{COLLECTOR}maxFlows: 16777217\n"),
            "test.yaml: maxFlows: 16777217 is above the limit of 16777216 flows",
        ),
        (&format!("{COLLECTOR}interfaces:\n  - name: eth0\n    direction: up\n"), "interfaces[0]: direction: \"up\""),
        (&format!("{COLLECTOR}interfaces:\n  - name: eth0\n    sampling: {{interval: 0}}\n"), "test.yaml: interfaces[0]: sampling.interval: sampling interval 0 is out of range (1 to 16777216)"),
        (&format!("{COLLECTOR}interfaces:\n  - name: eth0\n    sampling: {{interval: 99999999999}}\n"), "interfaces[0]: sampling.interval: 99999999999 is out of range (1 to 16777216)"),
        (&format!("{COLLECTOR}interfaces:\n  - name: eth0\n    sampling: {{interval: 10, mode: often}}\n"), "interfaces[0]: sampling.mode: unknown sampling mode \"often\" (expected random, deterministic)"),
        (&format!("{COLLECTOR}interfaces:\n  - name: eth0\n    sampling: {{rate: 10}}\n"), "unknown field `rate`"),
        ("collectors: 7\n", "test.yaml: collectors:"),
        (&format!("{COLLECTOR}metrics:\n  enabled: false\n  address: localhost\n"), "test.yaml: metrics.address: \"localhost\" is not a host:port"),
        (&format!("{COLLECTOR}metrics:\n  port: 9999\n"), "unknown field `port`"),
        (&format!("{COLLECTOR}metrics:\n  enabled: maybe\n"), "test.yaml: metrics.enabled:"),
    ];
    for (yaml, needle) in cases {
        let e = error(yaml);
        assert!(e.contains(needle), "{yaml:?}\n  gave {e:?}\n  expected {needle:?}");
        assert_eq!(e.lines().count(), 1, "one line: {e}");
    }
}

#[test]
fn unavailable_fields_pass_in_synthetic_mode() {
    let yaml = format!("{COLLECTOR}templates:\n  - id: 1004\n    fields: [SourceIPv4Address, BgpSourceAsNumber]\n");
    let file = parse(&yaml, "f").unwrap();
    assert!(validate(&file, "f", Strictness::Agent).is_err());
    assert!(validate(&file, "f", Strictness::Synthetic).is_ok());
}

#[test]
fn interface_names_follow_the_kernels_rules() {
    for bad in ["a:b", "..", "sixteen_chars_xx", "a b", "a/b", ""] {
        let yaml = format!("interfaces:\n  - name: \"{bad}\"\n{COLLECTOR}");
        let e = error(&yaml);
        assert!(
            e.contains("interfaces[0]: name:") && e.contains("not a valid interface name"),
            "{bad:?}: {e}"
        );
    }
    for good in ["eth0", "wan.100", "fifteen_chars_x"] {
        let yaml = format!("interfaces:\n  - name: {good}\n{COLLECTOR}");
        assert_eq!(check(&yaml).unwrap().interfaces[0].name, good);
    }
}

#[test]
fn the_built_in_templates_build() {
    let t = super::default_templates().unwrap();
    assert_eq!(
        t.iter().map(|t| (t.id, t.ip_version())).collect::<Vec<_>>(),
        [(256, Some(4)), (257, Some(6))]
    );
}

#[test]
fn udp_messages_are_capped_at_the_largest_datagram_of_their_ip_version() {
    let udp =
        |address: &str, size: u32| format!("collectors:\n  - address: \"{address}\"\n    maxMessageSize: {size}\n");
    assert_eq!(
        check(&udp("127.0.0.1:4739", 65507)).unwrap().collectors[0].max_message_size,
        65507
    );
    assert_eq!(
        check(&udp("[::1]:4739", 65527)).unwrap().collectors[0].max_message_size,
        65527
    );
    assert!(error(&udp("127.0.0.1:4739", 65508))
        .contains("collectors[0].maxMessageSize: 65508 is more than a UDP datagram over IPv4 carries (65507)"));
    assert!(error(&udp("[::1]:4739", 65535)).contains("more than a UDP datagram over IPv6 carries (65527)"));
    let tcp = "collectors:\n  - address: 127.0.0.1:4739\n    transport: tcp\n    maxMessageSize: 65535\n";
    assert_eq!(check(tcp).unwrap().collectors[0].max_message_size, 65535);
}

/// A file in a fresh private directory, with `mode`.
fn file_with_mode(name: &str, mode: u32) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("flowctl-config-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("agent.yaml");
    std::fs::write(&path, "collectors:\n  - address: 127.0.0.1:4739\n").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

#[test]
fn files_others_can_write_are_refused_from_the_open_descriptor() {
    for (mode, expected) in [
        (0o600, None),
        (0o644, None),
        (0o664, Some("writable by its group")),
        (0o646, Some("writable by every user")),
    ] {
        let path = file_with_mode(&format!("{mode:o}"), mode);
        let result = super::read(&path);
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
        match expected {
            None => assert!(result.is_ok(), "{mode:o}: {:?}", result.err()),
            Some(text) => {
                let message = result.unwrap_err().to_string();
                assert!(message.contains(text) && !message.contains('\n'), "{mode:o}: {message}");
            }
        }
    }
}

#[test]
fn files_of_other_users_are_refused_but_roots_are_trusted() {
    use std::os::unix::fs::MetadataExt;
    let path = file_with_mode("owner", 0o600);
    let meta = std::fs::metadata(&path).unwrap();
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    let owner = meta.uid();
    assert_eq!(super::check_trusted(&meta, owner), Ok(()));
    let other = owner.wrapping_add(1);
    if owner == 0 {
        // Root's files are trusted by every user.
        assert_eq!(super::check_trusted(&meta, other), Ok(()));
    } else {
        let refused = super::check_trusted(&meta, other).unwrap_err();
        assert!(refused.contains(&format!("owned by uid {owner}")), "{refused}");
    }
}

#[test]
fn directories_and_devices_are_not_read_as_configuration() {
    let dir = std::env::temp_dir();
    let message = super::read(&dir).unwrap_err().to_string();
    assert!(message.contains("not a regular file"), "{message}");
    let message = super::read(std::path::Path::new("/dev/zero")).unwrap_err().to_string();
    assert!(message.contains("not a regular file"), "{message}");
}

#[test]
fn totals_are_carried_only_for_templates_that_export_them() {
    assert!(
        !check(COLLECTOR).unwrap().exports_totals(),
        "the built-in templates do not"
    );
    let with_totals = format!(
        "{COLLECTOR}templates:\n  - id: 300\n    fields: [sourceIPv4Address, packetTotalCount]\n  - id: 301\n    fields: [sourceIPv6Address]\n"
    );
    assert!(check(&with_totals).unwrap().exports_totals());
}

#[test]
fn the_log_format_is_text_unless_the_file_says_json() {
    use crate::log_format::LogFormat;
    assert_eq!(check(COLLECTOR).unwrap().log_format, LogFormat::Text);
    let json = check(&format!("{COLLECTOR}log:\n  format: json\n")).unwrap();
    assert_eq!(json.log_format, LogFormat::Json);
    assert_eq!(
        error(&format!("{COLLECTOR}log:\n  format: yaml\n")),
        "test.yaml: log.format: \"yaml\" is not text or json"
    );
    assert!(error(&format!("{COLLECTOR}log:\n  level: debug\n")).contains("log.level: unknown field `level`"));
}

#[test]
fn without_a_collector_the_agent_refuses_to_start_and_says_how_to_add_one() {
    let e = error("interfaces: []\n");
    assert!(
        e.starts_with("test.yaml: collectors: no collector configured: the agent does not start without one"),
        "{e}"
    );
    assert!(e.contains("collectors: [{address: "), "{e}");
}
