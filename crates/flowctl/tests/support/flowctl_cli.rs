//! The flowctl binary, run against a private pin directory that is removed
//! (with everything attached through it) when the value is dropped.

use std::{
    path::PathBuf,
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

use serde_json::Value;

/// The control socket of the agent that goes with the pin directory
/// `pin_dir` in a test: never the system's.
pub fn control_socket(pin_dir: &std::path::Path) -> PathBuf {
    let name = pin_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::env::temp_dir().join(format!("{name}.sock"))
}

/// A flowctl with its own pin directory under /sys/fs/bpf.
pub struct Flowctl {
    /// The pin base directory (FLOWCTL_PIN_DIR).
    pub pin_dir: PathBuf,
}

impl Flowctl {
    /// A new, empty pin directory for this test.
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        Self {
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/flowctl-test-{tag}-{}-{n}", std::process::id())),
        }
    }

    /// Runs flowctl with `args`; returns its output whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_flowctl"))
            .args(args)
            .env("FLOWCTL_PIN_DIR", &self.pin_dir)
            .env("FLOWCTL_CONTROL_SOCKET", control_socket(&self.pin_dir))
            .output()
            .expect("run flowctl")
    }

    /// Runs flowctl and panics unless it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "flowctl {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `flowctl dump -o json`, parsed.
    pub fn dump(&self) -> Vec<Value> {
        serde_json::from_str::<Value>(&self.ok(&["dump", "-o", "json"]))
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for Flowctl {
    fn drop(&mut self) {
        let _ = self.run(&["detach", "--all", "--purge"]);
        let _ = std::fs::remove_dir_all(&self.pin_dir);
    }
}
