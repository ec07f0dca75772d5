//! Security properties, checked for real (root needed to set them up):
//! pins under 0700 directories and 0600 files, world-writable configuration
//! refused, each missing capability named before anything is touched, the
//! documented minimal capability set enough for a non-root user, and no
//! external command anywhere in the code that makes the binary.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    fs,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Command, Output},
};

use serde_json::Value;
use support::{
    collectors::TempDir,
    flowctl_cli::Flowctl,
    netns::{Topology, A4, A_IF, B4},
    traffic,
};

const NOBODY: u32 = 65534;
const CAP_NET_ADMIN: u32 = 12;
const CAP_BPF: u32 = 39;

/// How to run a program: optionally inside a namespace, as another user,
/// with exactly some capabilities.
#[derive(Clone, Default)]
struct Runner {
    /// `ip netns` name to run in (nsenter, network namespace only).
    netns: Option<String>,
    /// Run as this uid and gid (setpriv).
    uid: Option<u32>,
    /// setpriv capability list, e.g. `+bpf,+net_admin`: the inheritable,
    /// ambient and bounding sets become exactly these.
    caps: Option<&'static str>,
    /// Capabilities removed from the bounding set (uid stays 0), e.g. `-bpf,-sys_admin`.
    drop_caps: Option<&'static str>,
}

impl Runner {
    fn command(&self, program: &str) -> Command {
        let mut argv: Vec<String> = Vec::new();
        if let Some(ns) = &self.netns {
            argv.extend(["nsenter".into(), format!("--net=/var/run/netns/{ns}")]);
        }
        if self.uid.is_some() || self.caps.is_some() || self.drop_caps.is_some() {
            argv.push("setpriv".into());
            if let Some(uid) = self.uid {
                argv.extend([
                    format!("--reuid={uid}"),
                    format!("--regid={uid}"),
                    "--clear-groups".into(),
                ]);
            }
            if let Some(caps) = self.caps {
                for set in ["--inh-caps", "--ambient-caps", "--bounding-set"] {
                    argv.push(format!("{set}=-all,{caps}"));
                }
            }
            if let Some(drop) = self.drop_caps {
                argv.push(format!("--bounding-set={drop}"));
            }
        }
        argv.push(program.into());
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).env_remove("RUST_BACKTRACE").env_remove("RUST_LOG");
        cmd
    }

    fn flowctl(&self, pin_dir: &Path, args: &[&str]) -> Output {
        self.command(env!("CARGO_BIN_EXE_flowctl"))
            .args(args)
            .env("FLOWCTL_PIN_DIR", pin_dir)
            .env("FLOWCTL_CONTROL_SOCKET", support::flowctl_cli::control_socket(pin_dir))
            .output()
            .expect("run flowctl (nsenter/setpriv from util-linux)")
    }

    fn flowctl_ok(&self, pin_dir: &Path, args: &[&str]) -> String {
        let out = self.flowctl(pin_dir, args);
        assert!(
            out.status.success(),
            "flowctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The failure line of a flowctl run that must fail (exit code 1).
    fn flowctl_err(&self, pin_dir: &Path, args: &[&str]) -> String {
        self.flowctl_err_code(pin_dir, args, 1)
    }

    /// The failure line of a flowctl run that must fail with `code`.
    fn flowctl_err_code(&self, pin_dir: &Path, args: &[&str], code: i32) -> String {
        let out = self.flowctl(pin_dir, args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "flowctl {args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "flowctl {args:?}: {stderr:?}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        stderr.trim_end().to_string()
    }

    /// `CapEff` and the real uid of a process started this way.
    fn identity(&self) -> (u64, u32) {
        let out = self.command("cat").arg("/proc/self/status").output().unwrap();
        let status = String::from_utf8(out.stdout).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("{name} in {status}"))
                .split_whitespace()
                .next()
                .unwrap()
                .to_string()
        };
        (
            u64::from_str_radix(&field("CapEff:"), 16).unwrap(),
            field("Uid:").parse().unwrap(),
        )
    }
}

/// Every directory and file under `dir`, `dir` included.
fn walk(dir: &Path) -> Vec<(PathBuf, fs::Metadata)> {
    let mut out = vec![(dir.to_path_buf(), fs::symlink_metadata(dir).unwrap())];
    for e in fs::read_dir(dir).unwrap().flatten() {
        let md = fs::symlink_metadata(e.path()).unwrap();
        if md.is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push((e.path(), md));
        }
    }
    out
}

#[test]
#[ignore = "needs root: sets up users, capabilities and eBPF pins (misc/test.sh runs it as root)"]
fn pins_are_private_directories_and_files() {
    let topo = Topology::new("secmode");
    let fc = Flowctl::new("secmode");
    // A base directory left too open is tightened.
    fs::create_dir(&fc.pin_dir).unwrap();
    fs::set_permissions(&fc.pin_dir, fs::Permissions::from_mode(0o755)).unwrap();
    fc.ok(&["attach", "--netns", &topo.a, "-i", A_IF, "--direction", "both"]);

    let entries = walk(&fc.pin_dir);
    let (mut dirs, mut pins) = (0, 0);
    for (path, md) in &entries {
        let mode = md.permissions().mode() & 0o7777;
        if md.is_dir() {
            assert_eq!(mode, 0o700, "{} is {mode:o}", path.display());
            dirs += 1;
        } else {
            assert!(md.is_file(), "{} is neither a directory nor a pin", path.display());
            assert_eq!(mode, 0o600, "{} is {mode:o}", path.display());
            pins += 1;
        }
        assert_eq!(md.uid(), 0, "{} owned by uid {}", path.display(), md.uid());
    }
    // base, v<N>, links, links/<netns>; the seven maps of the cache and two links.
    assert_eq!((dirs, pins), (4, 9), "{entries:#?}");
}

#[test]
#[ignore = "needs root: sets up users, capabilities and eBPF pins (misc/test.sh runs it as root)"]
fn configuration_others_can_write_is_refused() {
    let fc = Flowctl::new("secconf");
    let dir = TempDir::new("secconf");
    let file = dir.file("agent.yaml", "collectors:\n  - address: 127.0.0.1:4739\n");
    let path = file.to_str().unwrap();
    let root = Runner::default();

    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    let ok = root.flowctl_ok(&fc.pin_dir, &["config", "check", path]);
    assert!(ok.contains("ok: 1 collector(s)"), "{ok}");

    fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
    // (the agent stopped by its configuration exits 78, EX_CONFIG)
    for (args, code) in [
        (&["config", "check", path][..], 1),
        (&["agent", "--config", path], 78),
        (&["ipfix", "send", "--config", path, "--flows", path], 1),
    ] {
        let line = root.flowctl_err_code(&fc.pin_dir, args, code);
        assert!(
            line.contains(path) && line.contains("writable by every user"),
            "{args:?}: {line}"
        );
    }
    // Group-writable, or owned by another user: refused the same way.
    fs::set_permissions(&file, fs::Permissions::from_mode(0o620)).unwrap();
    let line = root.flowctl_err_code(&fc.pin_dir, &["agent", "--config", path], 78);
    assert!(line.contains(path) && line.contains("writable by its group"), "{line}");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&file, Some(65534), None).unwrap();
    let line = root.flowctl_err_code(&fc.pin_dir, &["agent", "--config", path], 78);
    assert!(line.contains(path) && line.contains("owned by uid 65534"), "{line}");
    // The agent refused before creating anything.
    assert!(!fc.pin_dir.exists(), "the agent touched {}", fc.pin_dir.display());
}

#[test]
#[ignore = "needs root: sets up users, capabilities and eBPF pins (misc/test.sh runs it as root)"]
fn each_missing_capability_is_named_before_anything_is_touched() {
    let topo = Topology::new("seccaps");
    let fc = Flowctl::new("seccaps");
    let ns = topo.a.as_str();
    let attach = ["attach", "--netns", ns, "-i", A_IF];
    let here = Runner {
        netns: Some(topo.a.clone()),
        ..Default::default()
    };

    // Root without CAP_BPF (and CAP_SYS_ADMIN, which would stand in for it).
    let no_bpf = Runner {
        drop_caps: Some("-bpf,-sys_admin"),
        ..here.clone()
    };
    let agent = ["agent", "-i", A_IF, "--collector", "udp://127.0.0.1:9"];
    for args in [
        &["attach", "-i", A_IF][..],
        &["dump"],
        &["status"],
        &["flush", "--all", "--discard"],
        &["detach", "--all"],
        &agent,
    ] {
        let line = no_bpf.flowctl_err(&fc.pin_dir, args);
        let expected = format!(
            "flowctl {}: missing capability CAP_BPF (run as root or grant CAP_BPF",
            args[0]
        );
        assert!(line.starts_with(&expected), "{args:?}: {line}");
    }
    assert_eq!(
        no_bpf.flowctl_err(&fc.pin_dir, &["attach", "-i", A_IF]),
        "flowctl attach: missing capability CAP_BPF (run as root or grant CAP_BPF, CAP_NET_ADMIN)"
    );
    assert!(!fc.pin_dir.exists(), "nothing may be created without the capabilities");

    // Without CAP_NET_ADMIN: the cache can be read, not attached.
    Runner::default().flowctl_ok(&fc.pin_dir, &attach);
    let no_net_admin = Runner {
        drop_caps: Some("-net_admin,-sys_admin"),
        ..here.clone()
    };
    assert_eq!(
        no_net_admin.flowctl_err(&fc.pin_dir, &["attach", "-i", A_IF, "--direction", "ingress"]),
        "flowctl attach: missing capability CAP_NET_ADMIN (run as root or grant CAP_BPF, CAP_NET_ADMIN)"
    );
    no_net_admin.flowctl_ok(&fc.pin_dir, &["dump", "-o", "json"]);
    no_net_admin.flowctl_ok(&fc.pin_dir, &["status"]);

    // Entering a namespace needs CAP_SYS_ADMIN.
    let no_sys_admin = Runner {
        drop_caps: Some("-sys_admin"),
        ..Default::default()
    };
    assert_eq!(
        no_sys_admin.flowctl_err(&fc.pin_dir, &attach),
        "flowctl attach: missing capability CAP_SYS_ADMIN to enter another network namespace \
         (run as root or grant CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)"
    );
    assert!(no_sys_admin
        .flowctl_err(&fc.pin_dir, &["detach", "--netns", ns, "-i", A_IF])
        .contains("missing capability CAP_SYS_ADMIN"));
    // Without it, an attachment in another namespace cannot be looked at.
    let status = no_sys_admin.flowctl_ok(&fc.pin_dir, &["status"]);
    assert!(
        status.contains("unknown (looking into its namespace needs CAP_SYS_ADMIN)"),
        "{status}"
    );
    let status = Runner::default().flowctl_ok(&fc.pin_dir, &["status"]);
    assert!(status.contains("attached ("), "{status}");
}

#[test]
#[ignore = "needs root: sets up users, capabilities and eBPF pins (misc/test.sh runs it as root)"]
fn the_documented_minimal_set_is_enough_for_a_non_root_user() {
    let topo = Topology::new("secmin");
    let fc = Flowctl::new("secmin");
    // The pin base belongs to the service user, as an installer would set it up.
    fs::create_dir(&fc.pin_dir).unwrap();
    std::os::unix::fs::chown(&fc.pin_dir, Some(NOBODY), Some(NOBODY)).unwrap();
    let minimal = Runner {
        netns: Some(topo.a.clone()),
        uid: Some(NOBODY),
        caps: Some("+bpf,+net_admin"),
        ..Default::default()
    };
    assert_eq!(minimal.identity(), ((1 << CAP_BPF) | (1 << CAP_NET_ADMIN), NOBODY));

    let attached = minimal.flowctl_ok(&fc.pin_dir, &["attach", "-i", A_IF, "--direction", "both"]);
    assert_eq!(attached.lines().count(), 2, "{attached}");
    traffic::udp(
        &topo.a,
        format!("{A4}:41001").parse().unwrap(),
        &topo.b,
        format!("{B4}:41002").parse().unwrap(),
        7,
        100,
    );
    let flows: Value = serde_json::from_str(&minimal.flowctl_ok(&fc.pin_dir, &["dump", "-o", "json"])).unwrap();
    let ours: Vec<&Value> = flows
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["sport"] == 41001 && f["dport"] == 41002)
        .collect();
    assert_eq!(ours.len(), 1, "{flows:#}");
    assert_eq!(ours[0]["packets"], 7, "{flows:#}");
    assert_eq!(ours[0]["direction"], "egress");
    assert_eq!((ours[0]["src"].as_str(), ours[0]["dst"].as_str()), (Some(A4), Some(B4)));

    let status = minimal.flowctl_ok(&fc.pin_dir, &["status"]);
    assert_eq!(status.matches("attached (").count(), 2, "{status}");
    minimal.flowctl_ok(&fc.pin_dir, &["flush", "--all", "--discard"]);
    let detached = minimal.flowctl_ok(&fc.pin_dir, &["detach", "-i", A_IF]);
    assert_eq!(detached.lines().count(), 2, "{detached}");
    let status = minimal.flowctl_ok(&fc.pin_dir, &["status"]);
    assert!(status.contains("not attached to any interface"), "{status}");
    for (path, md) in walk(&fc.pin_dir) {
        assert_eq!(md.uid(), NOBODY, "{} owned by uid {}", path.display(), md.uid());
    }
}

#[test]
#[ignore = "needs root: sets up users, capabilities and eBPF pins (misc/test.sh runs it as root)"]
fn another_user_with_every_bpf_capability_cannot_use_roots_pins() {
    let topo = Topology::new("secother");
    let fc = Flowctl::new("secother");
    fc.ok(&["attach", "--netns", &topo.a, "-i", A_IF]);
    let other = Runner {
        uid: Some(NOBODY),
        caps: Some("+bpf,+net_admin,+perfmon"),
        ..Default::default()
    };
    for args in [&["dump"][..], &["flush", "--all", "--discard"], &["status"]] {
        let line = other.flowctl_err(&fc.pin_dir, args);
        assert!(line.contains("permission denied"), "{args:?}: {line}");
    }
    let status: Value = serde_json::from_str(&fc.ok(&["status", "-o", "json"])).unwrap();
    assert_eq!(status["attachments"].as_array().unwrap().len(), 1, "{status:#}");
}

/// Source files of the crates that make up the flowctl binary.
fn product_sources() -> Vec<PathBuf> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut out = Vec::new();
    for name in [
        "flowctl",
        "flowctl-agent",
        "flowctl-aging",
        "flowctl-model",
        "flowctl-datapath",
        "flowctl-export",
        "flowctl-ipfix",
    ] {
        let src = crates.join(name).join("src");
        assert!(src.is_dir(), "{}", src.display());
        out.extend(
            walk(&src)
                .into_iter()
                .map(|(p, _)| p)
                .filter(|p| p.extension().is_some_and(|e| e == "rs")),
        );
    }
    out
}

#[test]
#[ignore = "needs root: sets up users, capabilities and eBPF pins (misc/test.sh runs it as root)"]
fn no_external_command_is_ever_run() {
    let sources = product_sources();
    assert!(sources.len() > 20, "{sources:?}");
    for path in sources {
        let text = fs::read_to_string(&path).unwrap();
        for needle in [
            "process::Command",
            "Command::new(",
            "libc::system",
            "libc::exec",
            "libc::fork",
            "libc::posix_spawn",
        ] {
            assert!(!text.contains(needle), "{} uses {needle}", path.display());
        }
    }
}

/// The unit file's hardening, and `systemd-analyze verify` where systemd is installed.
#[test]
#[ignore = "needs root: sets up users, capabilities and eBPF pins (misc/test.sh runs it as root)"]
fn the_systemd_unit_is_hardened_and_valid() {
    let unit_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../misc/flowctl.service");
    let unit = fs::read_to_string(&unit_path).unwrap();
    let settings: Vec<&str> = unit
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .collect();
    for required in [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30s",
        "User=root",
        "CapabilityBoundingSet=CAP_BPF CAP_NET_ADMIN CAP_PERFMON CAP_SYS_ADMIN",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "BindPaths=/sys/fs/bpf:/run/flowctl/bpffs",
        "ProtectKernelTunables=yes",
        "RuntimeDirectory=flowctl",
        "StateDirectory=flowctl",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "SystemCallArchitectures=native",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "RestartPreventExitStatus=78",
        "ExecStart=/usr/bin/flowctl --pin-dir /run/flowctl/bpffs/flowctl agent --config /etc/flowctl/agent.yaml",
        "ExecReload=/usr/bin/flowctl config check /etc/flowctl/agent.yaml",
    ] {
        assert!(settings.contains(&required), "misc/flowctl.service lacks {required:?}");
    }
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        println!("systemd-analyze not installed: only the settings were checked");
        return;
    };
    assert!(out.status.success());
    // The binary is not installed here: point the unit at the one under test.
    let dir = std::env::temp_dir().join(format!("flowctl-unit-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("flowctl.service");
    fs::write(&copy, unit.replace("/usr/bin/flowctl", env!("CARGO_BIN_EXE_flowctl"))).unwrap();
    // (--man=no: the Documentation= pages are not installed here; the
    // installed-package test, misc/package-test.sh, verifies with them.)
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&copy)
        .output()
        .unwrap();
    let _ = fs::remove_dir_all(&dir);
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}
