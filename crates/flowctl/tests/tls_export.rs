//! IPFIX over TLS end to end (root needed): the agent meters a veth pair in
//! namespaces the test creates and exports over mutual TLS, with
//! certificates the test makes, to `flowctl collect` and to OpenSSL's
//! `s_server` (a TLS terminator flowctl did not write), whose plaintext is
//! replayed to nfcapd; every flow must arrive exact. A collector whose
//! certificate comes from another CA is refused, and so is an exporter
//! without the collector's client CA.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::BTreeMap,
    io::Read,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use support::{
    agent::Agent,
    capture::{self, Capture},
    collect::{totals_by_sport, Collect},
    collectors::{free_port, Nfcapd, TempDir},
    flowctl_cli::Flowctl,
    netns::{Topology, A4, A6, A_IF, B4, B6},
    traffic,
};

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// A CA and a certificate it signs for `name`: (ca.pem, cert.pem, key.pem).
fn issue(dir: &TempDir, prefix: &str, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("flowctl test {prefix} CA"));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    (
        dir.file(&format!("{prefix}-ca.pem"), &ca.pem()),
        dir.file(&format!("{prefix}-cert.pem"), &cert.pem()),
        dir.file(&format!("{prefix}-key.pem"), &key.serialize_pem()),
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `openssl s_server` requiring a client certificate from `client_ca`,
/// writing what it decrypts to a file. Its stdin is kept open: at EOF on
/// stdin it would end the connection.
struct SServer {
    child: Child,
    out: PathBuf,
}

impl SServer {
    fn start(port: u16, cert: &Path, key: &Path, client_ca: &Path, dir: &TempDir) -> Self {
        let out = dir.0.join("s_server.out");
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-accept", &format!("127.0.0.1:{port}")])
            .args([
                "-cert",
                p(cert),
                "-key",
                p(key),
                "-CAfile",
                p(client_ca),
                "-Verify",
                "1",
            ])
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(dir.0.join("s_server.err")).unwrap())
            .spawn()
            .expect("openssl (Debian package openssl)");
        let start = Instant::now();
        while std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            assert!(start.elapsed() < Duration::from_secs(10), "s_server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, out }
    }

    /// The plaintext received so far.
    fn received(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        std::fs::File::open(&self.out).unwrap().read_to_end(&mut bytes).unwrap();
        bytes
    }
}

impl Drop for SServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Per source port of the test's flows: (packets, octets) on the wire.
fn truth_by_sport(cap: Capture, sports: &[u16]) -> BTreeMap<u16, (u64, u64)> {
    let mut out: BTreeMap<u16, (u64, u64)> = BTreeMap::new();
    for (k, c) in capture::flows(&cap.stop()) {
        if sports.contains(&k.sport) {
            let e = out.entry(k.sport).or_default();
            e.0 += c.packets;
            e.1 += c.bytes;
        }
    }
    out
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn mutual_tls_to_flowctl_collect_and_openssl_carries_every_flow_exactly() {
    let topo = Topology::new("tls");
    let fc = Flowctl::new("tls");
    let dir = TempDir::new("tls");
    let (server_ca, server_cert, server_key) = issue(&dir, "collector", "collector.test");
    let (client_ca, client_cert, client_key) = issue(&dir, "exporter", "exporter.test");
    let (_, rogue_cert, rogue_key) = issue(&dir, "rogue", "collector.test");
    let (good, rogue, openssl, replay) = (free_port(), free_port(), free_port(), free_port());
    let tls = |cert: &Path, key: &Path| {
        vec![
            "--tls-cert".to_string(),
            p(cert).to_string(),
            "--tls-key".to_string(),
            p(key).to_string(),
            "--tls-ca".to_string(),
            p(&client_ca).to_string(),
        ]
    };
    let good_args = tls(&server_cert, &server_key);
    let collect = Collect::start_with(
        good,
        &dir,
        "good.json",
        &good_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let rogue_args = tls(&rogue_cert, &rogue_key);
    let rogue_collect = Collect::start_with(
        rogue,
        &dir,
        "rogue.json",
        &rogue_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let s_server = SServer::start(openssl, &server_cert, &server_key, &client_ca, &dir);

    let va = Topology::ifindex(&topo.a, A_IF);
    let cap = Capture::start(&topo.a, va);
    let collectors = [good, rogue, openssl].map(|port| format!("tls://127.0.0.1:{port}"));
    let mut args = vec![
        "--netns",
        &topo.a,
        "-i",
        A_IF,
        "--direction",
        "both",
        "--scan-interval",
        "200ms",
    ];
    args.extend(["--idle-timeout", "1s"]);
    for c in &collectors {
        args.extend(["--collector", c.as_str()]);
    }
    let (ca, cert, key) = (p(&server_ca), p(&client_cert), p(&client_key));
    args.extend(["--tls-ca", ca, "--tls-cert", cert, "--tls-key", key]);
    args.extend(["--tls-server-name", "collector.test"]);
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent.log"));

    traffic::udp(&topo.a, sa(A4, 46001), &topo.b, sa(B4, 46002), 7, 300);
    traffic::udp(&topo.a, sa(A6, 46003), &topo.b, sa(B6, 46004), 5, 1200);
    traffic::tcp_session(&topo.a, sa(A4, 46005), &topo.b, sa(B4, 5601), 200_000);
    collect.wait_for_flow(46005);
    std::thread::sleep(Duration::from_millis(1500)); // the last ACKs end idle too
    assert!(agent.stop().success(), "the agent exits 0, a refused collector and all");
    let sports = [46001, 46003, 46005, 5601];
    let truth = truth_by_sport(cap, &sports);
    assert_eq!(truth.len(), 4, "{truth:?}");

    // flowctl collect (rustls) terminated mutual TLS: every flow exact.
    let errors = collect.errors();
    let got: BTreeMap<_, _> = totals_by_sport(&collect.stop())
        .into_iter()
        .filter(|(s, _)| sports.contains(s))
        .collect();
    assert_eq!(got, truth, "flowctl collect over TLS; its stderr:\n{errors}");

    // The collector whose certificate another CA signed was refused, in one
    // line, with backoff; it decoded nothing.
    let log = agent_log(&dir);
    let refusal = log
        .lines()
        .find(|l| l.contains(&format!("tls://127.0.0.1:{rogue}: cannot connect")))
        .unwrap_or_else(|| panic!("no refusal in the agent log:\n{log}"));
    assert!(
        refusal.contains("invalid peer certificate") && refusal.contains("UnknownIssuer"),
        "{refusal}"
    );
    assert!(!log.contains("panicked"), "{log}");
    let rogue_errors = rogue_collect.errors();
    assert!(rogue_collect.stop().is_empty(), "nothing reached the rogue collector");
    assert!(rogue_errors.contains("TLS handshake failed"), "{rogue_errors}");

    // OpenSSL terminated the same TLS; its plaintext, replayed over UDP to
    // nfcapd, is every flow exact.
    let plaintext = s_server.received();
    let (messages, used) = flowctl_ipfix::split_stream(&plaintext).unwrap();
    assert_eq!(used, plaintext.len(), "whole IPFIX messages");
    let nfcapd = Nfcapd::start(replay);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for m in &messages {
        udp.send_to(m, ("127.0.0.1", replay)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut nf: BTreeMap<u16, (u64, u64)> = BTreeMap::new();
    for f in nfcapd.stop_and_read() {
        let sport = f["src_port"].as_u64().unwrap_or(0) as u16;
        if sports.contains(&sport) {
            let e = nf.entry(sport).or_default();
            e.0 += f["in_packets"].as_u64().unwrap();
            e.1 += f["in_bytes"].as_u64().unwrap();
        }
    }
    assert_eq!(nf, truth, "nfdump, from what openssl s_server decrypted");
}

#[test]
#[ignore = "needs root: eBPF in network namespaces (misc/test.sh runs it as root)"]
fn a_collector_requiring_another_client_ca_refuses_the_agent() {
    let topo = Topology::new("tlsca");
    let fc = Flowctl::new("tlsca");
    let dir = TempDir::new("tlsca");
    let (server_ca, server_cert, server_key) = issue(&dir, "collector", "collector.test");
    let (_, client_cert, client_key) = issue(&dir, "exporter", "exporter.test");
    let (other_client_ca, _, _) = issue(&dir, "other", "other.test");
    let port = free_port();
    let extra = [
        "--tls-cert",
        p(&server_cert),
        "--tls-key",
        p(&server_key),
        "--tls-ca",
        p(&other_client_ca),
    ];
    let collect = Collect::start_with(port, &dir, "collect.json", &extra);
    let collector = format!("tls://127.0.0.1:{port}");
    let args = [
        "--netns",
        &topo.a,
        "-i",
        A_IF,
        "--scan-interval",
        "200ms",
        "--idle-timeout",
        "1s",
        "--collector",
        &collector,
        "--tls-ca",
        p(&server_ca),
        "--tls-cert",
        p(&client_cert),
        "--tls-key",
        p(&client_key),
        "--tls-server-name",
        "collector.test",
    ];
    let agent = Agent::start(&fc.pin_dir, &args, &dir.0.join("agent.log"));
    traffic::udp(&topo.a, sa(A4, 46101), &topo.b, sa(B4, 46102), 3, 100);
    let start = Instant::now();
    while !collect.errors().contains("TLS handshake failed") {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no refusal: {}",
            collect.errors()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(agent.stop().success());
    let errors = collect.errors();
    assert!(errors.lines().all(|l| !l.contains("panicked")), "{errors}");
    assert!(
        collect.stop().is_empty(),
        "nothing decoded from an exporter it does not trust"
    );
}

fn agent_log(dir: &TempDir) -> String {
    std::fs::read_to_string(dir.0.join("agent.log")).unwrap()
}
