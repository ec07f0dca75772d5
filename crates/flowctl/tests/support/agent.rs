//! The flowctl agent as a child process, stopped with SIGTERM (or killed on
//! drop if the test failed first).

use std::{
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

/// A running `flowctl agent`.
pub struct Agent {
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl Agent {
    /// Starts `flowctl agent ARGS` with the given pin directory; its log goes to `log`.
    /// Unless ARGS choose otherwise, metrics listen on a free loopback port
    /// (parallel agents would clash on the default 127.0.0.1:9999), and the
    /// spool is `spool/` next to the log (not the system's).
    pub fn start(pin_dir: &Path, args: &[&str], log: &Path) -> Self {
        Self::start_with_env(pin_dir, args, &[], log)
    }

    /// As [`Agent::start`], with extra environment variables (NOTIFY_SOCKET, ...).
    pub fn start_with_env(pin_dir: &Path, args: &[&str], env: &[(&str, &str)], log: &Path) -> Self {
        let file = std::fs::File::create(log).unwrap();
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if !args
            .iter()
            .any(|a| a.starts_with("--metrics-address") || a == "--no-metrics")
        {
            args.extend(["--metrics-address".into(), "127.0.0.1:0".into()]);
        }
        if !args.iter().any(|a| a == "--spool-dir") {
            let spool = log.parent().unwrap().join("spool");
            args.extend(["--spool-dir".into(), spool.display().to_string()]);
        }
        let child = Command::new(env!("CARGO_BIN_EXE_flowctl"))
            .arg("agent")
            .args(&args)
            .env("FLOWCTL_PIN_DIR", pin_dir)
            .env("FLOWCTL_CONTROL_SOCKET", super::flowctl_cli::control_socket(pin_dir))
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("start flowctl agent");
        let agent = Self {
            child: Some(child),
            log: log.to_path_buf(),
        };
        agent.wait_for_log("agent running", Duration::from_secs(20));
        agent
    }

    /// Where the metrics endpoint listens, from the agent's log.
    pub fn metrics_address(&self) -> std::net::SocketAddr {
        let log = self.log();
        let line = log.lines().find_map(|l| l.split("metrics on http://").nth(1));
        let addr = line.and_then(|l| l.strip_suffix("/metrics"));
        addr.unwrap_or_else(|| panic!("no metrics address in the log:\n{log}"))
            .parse()
            .unwrap()
    }

    /// The agent's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`; panics with the log otherwise.
    pub fn wait_for_log(&self, needle: &str, within: Duration) {
        let start = Instant::now();
        while start.elapsed() < within {
            if self.log().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("agent log never showed {needle:?}:\n{}", self.log());
    }

    /// The agent's process ID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap()
    }

    /// File descriptors the agent has open.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).unwrap().count()
    }

    /// Sets the agent's RLIMIT_NOFILE (soft and hard), as systemd would.
    pub fn limit_fds(&self, limit: u64) {
        let rlimit = libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        };
        // SAFETY: prlimit reads the rlimit we pass and writes nothing (null).
        let rc = unsafe { libc::prlimit(self.pid() as i32, libc::RLIMIT_NOFILE, &rlimit, std::ptr::null_mut()) };
        assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    }

    /// Sends a signal.
    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: kill takes no pointers; the pid is our own child.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }

    /// Whether the process is still running (not exited).
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    /// SIGTERM, then waits for the exit status.
    pub fn stop(self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait()
    }

    /// Waits (30 s at most) for the agent to exit on its own.
    pub fn wait(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("agent did not exit after SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
