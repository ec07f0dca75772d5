//! Test topologies: two namespaces joined by a veth pair, addressed for IPv4
//! and IPv6, with an optional VLAN on top. Dropping the topology deletes the
//! namespaces (and with them the links), even when the test failed.

use std::{fs::File, os::fd::AsRawFd, process::Command, thread};

/// Runs `ip` with arguments, panicking with its stderr on failure.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("iproute2 `ip` is needed by the tests");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `f` on a new thread that has entered network namespace `ns`.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    thread::spawn(move || {
        let file = File::open(&path).expect("open netns");
        // SAFETY: setns on a valid nsfs fd affects only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

/// Writes a sysctl inside a namespace.
pub fn sysctl(ns: &str, key: &str, value: &str) {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let value = value.to_string();
    in_netns(ns, move || {
        std::fs::write(&path, value).unwrap_or_else(|e| panic!("{path}: {e}"))
    })
    .join()
    .unwrap();
}

/// Namespaces `a` and `b`, veth `va` (in a) <-> `vb` (in b).
///
/// Addresses: a = 10.201.0.1/24, fd00:201::1/64; b = .2 / ::2. No default
/// route: nothing can leave the pair.
pub struct Topology {
    /// Namespace of the metered side.
    pub a: String,
    /// Namespace of the peer.
    pub b: String,
}

/// Metered interface (in namespace a).
pub const A_IF: &str = "va";
/// Peer interface (in namespace b).
pub const B_IF: &str = "vb";
/// IPv4 address of a.
pub const A4: &str = "10.201.0.1";
/// IPv4 address of b.
pub const B4: &str = "10.201.0.2";
/// IPv6 address of a.
pub const A6: &str = "fd00:201::1";
/// IPv6 address of b.
pub const B6: &str = "fd00:201::2";

impl Topology {
    /// Creates the namespaces and links; `tag` keeps parallel tests apart.
    pub fn new(tag: &str) -> Self {
        let pid = std::process::id();
        let t = Topology {
            a: format!("fct-{tag}-{pid}-a"),
            b: format!("fct-{tag}-{pid}-b"),
        };
        for ns in [&t.a, &t.b] {
            ip(&["netns", "add", ns]);
        }
        for ns in [&t.a, &t.b] {
            // Keep the link quiet: no router solicitations.
            sysctl(ns, "net.ipv6.conf.default.router_solicitations", "0");
            sysctl(ns, "net.ipv6.conf.all.router_solicitations", "0");
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        ip(&[
            "link", "add", A_IF, "netns", &t.a, "type", "veth", "peer", "name", B_IF, "netns", &t.b,
        ]);
        for (ns, dev, v4, v6) in [(&t.a, A_IF, A4, A6), (&t.b, B_IF, B4, B6)] {
            ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", dev]);
            ip(&["-n", ns, "addr", "add", &format!("{v6}/64"), "dev", dev, "nodad"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        // Until the kernel's link watch has activated the qdisc, packets are
        // dropped: wait for operstate UP on both ends.
        for (ns, dev) in [(&t.a, A_IF), (&t.b, B_IF)] {
            wait_until_up(ns, dev);
        }
        t
    }

    /// ifindex of an interface in a namespace.
    pub fn ifindex(ns: &str, dev: &str) -> u32 {
        let dev = std::ffi::CString::new(dev).unwrap();
        // SAFETY: `dev` is a NUL-terminated string that outlives the call.
        in_netns(ns, move || unsafe { libc::if_nametoindex(dev.as_ptr()) })
            .join()
            .unwrap()
    }
}

/// Waits (up to 5 s) until `dev` in `ns` has operstate UP.
pub fn wait_until_up(ns: &str, dev: &str) {
    for _ in 0..250 {
        let out = Command::new("ip")
            .args(["-n", ns, "-o", "link", "show", "dev", dev])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("state UP") {
            return;
        }
        thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("{dev} in {ns} did not come up");
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
