//! Real collectors from Debian packages, on loopback ports of the test's own:
//! nfcapd (read back with nfdump) and a tshark capture of the export.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU16, Ordering},
    time::{Duration, Instant},
};

use serde_json::Value;

/// A loopback UDP/TCP port unlikely to clash with a parallel test.
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    loop {
        let port = 20000 + (std::process::id() % 2000) as u16 * 10 + NEXT.fetch_add(1, Ordering::SeqCst) % 10;
        let free_udp = std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok();
        let free_tcp = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free_udp && free_tcp {
            return port;
        }
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `/tmp/flowctl-test-<tag>-<pid>-<n>`.
    pub fn new(tag: &str) -> Self {
        static N: AtomicU16 = AtomicU16::new(0);
        let p = std::env::temp_dir().join(format!(
            "flowctl-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    /// Writes `text` to `name` in the directory; returns its path.
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn stop_child(child: &mut Child) {
    // SAFETY: kill takes no pointers; the pid is our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// nfcapd listening on 127.0.0.1:port, writing into a temporary directory.
pub struct Nfcapd {
    child: Option<Child>,
    /// Where the capture files go.
    pub dir: TempDir,
    /// UDP port.
    pub port: u16,
}

impl Nfcapd {
    /// Starts nfcapd and waits until it listens.
    pub fn start(port: u16) -> Self {
        let dir = TempDir::new("nfcapd");
        let child = Command::new("nfcapd")
            .args(["-b", "127.0.0.1", "-p", &port.to_string(), "-w"])
            .arg(&dir.0)
            .args(["-t", "3600"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nfcapd (Debian package nfdump)");
        // nfcapd binds at once; give it a moment to be ready to receive.
        let start = Instant::now();
        while std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child: Some(child),
            dir,
            port,
        }
    }

    /// Stops nfcapd (which writes its file) and returns the flows as nfdump shows them.
    pub fn stop_and_read(mut self) -> Vec<Value> {
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c);
        }
        read_nfdump(&self.dir.0)
    }
}

impl Drop for Nfcapd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `nfdump -R DIR -o json`, parsed (times in UTC).
pub fn read_nfdump(dir: &Path) -> Vec<Value> {
    let out = Command::new("nfdump")
        .arg("-R")
        .arg(dir)
        .args(["-o", "json"])
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(out.status.success(), "nfdump: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    if text.trim().is_empty() {
        return Vec::new();
    }
    serde_json::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("nfdump json: {e}\n{text}"))
        .as_array()
        .unwrap()
        .clone()
}

/// tshark capturing the export traffic to a port on loopback.
pub struct Tshark {
    child: Option<Child>,
    /// The capture file.
    pub pcap: PathBuf,
    _dir: TempDir,
    port: u16,
}

impl Tshark {
    /// Starts capturing `udp or tcp port PORT` on lo and waits until tshark is ready.
    pub fn start(port: u16) -> Self {
        let dir = TempDir::new("tshark");
        let pcap = dir.0.join("export.pcap");
        let log = dir.0.join("tshark.log");
        let child = Command::new("tshark")
            .args(["-i", "lo", "-f", &format!("port {port}"), "-w"])
            .arg(&pcap)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("tshark (Debian package tshark)");
        let start = Instant::now();
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("Capturing on")
        {
            assert!(start.elapsed() < Duration::from_secs(20), "tshark did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child: Some(child),
            pcap,
            _dir: dir,
            port,
        }
    }

    /// Stops the capture.
    pub fn stop(&mut self) {
        std::thread::sleep(Duration::from_millis(300));
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c);
        }
    }

    /// Runs tshark on the capture, decoding the port as IPFIX (cflow).
    pub fn read(&self, args: &[&str]) -> String {
        let decode_as = [
            format!("udp.port=={},cflow", self.port),
            format!("tcp.port=={},cflow", self.port),
        ];
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&self.pcap)
            .args(["-d", &decode_as[0], "-d", &decode_as[1]])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Tshark {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: tshark then stops its dumpcap child, which
        // a killed tshark leaves capturing (a test that failed early).
        if let Some(mut c) = self.child.take() {
            stop_child(&mut c);
        }
    }
}
