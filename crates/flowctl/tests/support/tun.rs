//! A tun device (an L3 interface: packets start at the IP header) in a
//! namespace, with its file descriptor: IP packets written to it arrive on
//! the interface (tc ingress), packets the kernel routes out of it (tc
//! egress) are read from it.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Write},
    os::fd::AsRawFd,
};

use super::netns::{in_netns, ip};

/// `struct ifreq` as TUNSETIFF takes it.
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: libc::c_short,
    _pad: [u8; 22],
}

const TUNSETIFF: libc::c_ulong = 0x400454ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;

/// An open tun device; the device goes with the namespace.
pub struct Tun {
    file: File,
}

impl Tun {
    /// Creates tun device `name` in namespace `ns`, opens it (no packet
    /// information header) and brings it up.
    pub fn create(ns: &str, name: &str) -> Self {
        if !std::path::Path::new("/dev/net/tun").exists() {
            // A kernel that has not loaded tun yet (the kernel guest).
            let status = std::process::Command::new("modprobe").arg("tun").status();
            assert!(status.is_ok_and(|s| s.success()), "modprobe tun");
        }
        let dev = name.to_string();
        let file = in_netns(ns, move || {
            let file = OpenOptions::new().read(true).write(true).open("/dev/net/tun").unwrap();
            let mut req = IfReq {
                name: [0; 16],
                flags: IFF_TUN | IFF_NO_PI,
                _pad: [0; 22],
            };
            req.name[..dev.len()].copy_from_slice(dev.as_bytes());
            // SAFETY: TUNSETIFF reads and writes the ifreq we own.
            let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req) };
            assert_eq!(rc, 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
            // SAFETY: sets O_NONBLOCK on our own descriptor.
            unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
            file
        })
        .join()
        .unwrap();
        ip(&["-n", ns, "link", "set", name, "up"]);
        Self { file }
    }

    /// Delivers one IP packet to the interface, as if it had been received.
    pub fn inject(&mut self, packet: &[u8]) {
        self.file.write_all(packet).unwrap();
    }

    /// Every packet the kernel sent out of the interface so far.
    pub fn sent(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = self.file.read(&mut buf) {
            out.push(buf[..n].to_vec());
        }
        out
    }
}
