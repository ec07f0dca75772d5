//! A collector that is gone, as the kernel tells it: over UDP, which
//! datagrams it refused; over TCP, that it closed the connection.
//!
//! A datagram sent to a closed port is lost, and `send` reported success for
//! it; the ICMP port-unreachable that comes back only makes a *later* `send`
//! fail with ECONNREFUSED, and that later datagram is not sent at all (the
//! kernel reports the pending error instead). So retrying the failed send is
//! right, and the refused datagram is the one to recover: with `IP_RECVERR`
//! the kernel queues every ICMP error with the start of the datagram it
//! answers, [`drain`] reads them, and [`Recent`] maps them back to the
//! records of that datagram so the collector task can queue them again.

use std::{collections::VecDeque, io, os::fd::RawFd};

use flowctl_model::FlowRecord;

/// Datagrams remembered (their first bytes and records).
const REMEMBERED: usize = 256;
/// Bytes of a datagram kept to recognise it: IPFIX header (export time,
/// sequence number, domain), set header and the start of the first record.
const PREFIX: usize = 64;

/// Asks the kernel to queue ICMP errors with the datagram they answer.
pub fn enable(fd: RawFd, ipv6: bool) -> io::Result<()> {
    let (level, name) = if ipv6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVERR)
    } else {
        (libc::IPPROTO_IP, libc::IP_RECVERR)
    };
    let on: libc::c_int = 1;
    // SAFETY: `on` lives across the call and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &on as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The start of every datagram refused since the last call (never blocks).
pub fn drain(fd: RawFd) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; PREFIX];
    let mut control = [0u64; 64];
    loop {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: a zeroed msghdr is valid; every pointer set below refers
        // to a live local buffer of the given length.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: fd is a socket owned by the caller; msg is set up above.
        let n = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
        if n < 0 {
            return out; // EAGAIN: nothing (more) queued
        }
        if refused(&msg) {
            out.push(buf[..n as usize].to_vec());
        }
    }
}

/// TCP: whether the collector closed or reset the connection. A collector
/// never sends, so anything readable (end of stream, or an error) means it
/// is gone; a write would still be accepted, and its message lost.
pub fn peer_closed(fd: RawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: a one-byte peek into a live local.
    let n = unsafe {
        libc::recv(
            fd,
            &mut byte as *mut u8 as *mut libc::c_void,
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => true,
        n if n > 0 => false,
        _ => io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock,
    }
}

/// Whether an error-queue message is "port unreachable" (ECONNREFUSED).
fn refused(msg: &libc::msghdr) -> bool {
    // SAFETY: msg was filled by recvmsg; the CMSG macros stay within msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let c = &*cmsg;
            let ip_err = (c.cmsg_level == libc::IPPROTO_IP && c.cmsg_type == libc::IP_RECVERR)
                || (c.cmsg_level == libc::IPPROTO_IPV6 && c.cmsg_type == libc::IPV6_RECVERR);
            if ip_err {
                let e = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::sock_extended_err);
                return e.ee_errno == libc::ECONNREFUSED as u32;
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    false
}

/// The last datagrams sent with records, to find the records of a refused one.
#[derive(Debug, Default)]
pub struct Recent {
    sent: VecDeque<(Vec<u8>, Vec<FlowRecord>)>,
}

impl Recent {
    /// Remembers a data message and the records it carried.
    pub fn remember(&mut self, message: &[u8], records: impl IntoIterator<Item = FlowRecord>) {
        if self.sent.len() == REMEMBERED {
            self.sent.pop_front();
        }
        let prefix = message[..message.len().min(PREFIX)].to_vec();
        self.sent.push_back((prefix, records.into_iter().collect()));
    }

    /// The records of the datagram that starts with `quoted` (once).
    pub fn take(&mut self, quoted: &[u8]) -> Option<Vec<FlowRecord>> {
        // The header alone (16 bytes) would match templates and data alike.
        if quoted.len() < 24 {
            return None;
        }
        let i = self.sent.iter().position(|(prefix, _)| {
            let n = prefix.len().min(quoted.len());
            prefix[..n] == quoted[..n]
        })?;
        self.sent.remove(i).map(|(_, records)| records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_datagram_is_found_once_by_its_first_bytes() {
        let mut r = Recent::default();
        let rec = FlowRecord {
            key: Default::default(),
            stats: flowctl_model::FlowStats {
                packets: 1,
                octets: 1,
                ..Default::default()
            },
            total_packets: 1,
            total_octets: 1,
            reason: flowctl_model::EndReason::IdleTimeout,
            ..Default::default()
        };
        let a: Vec<u8> = (0..100).collect();
        let mut b = a.clone();
        b[30] = 0xff;
        r.remember(&a, [rec]);
        r.remember(&b, [rec, rec]);
        assert_eq!(r.take(&b[..40]).map(|v| v.len()), Some(2));
        assert_eq!(r.take(&b[..40]), None, "only once");
        assert_eq!(r.take(&a[..16]), None, "a header alone is not enough");
        assert_eq!(r.take(&a).map(|v| v.len()), Some(1));
    }

    #[test]
    fn only_the_last_datagrams_are_remembered() {
        let mut r = Recent::default();
        for i in 0..(REMEMBERED as u32 + 1) {
            r.remember(&[i.to_be_bytes().as_slice(); 8].concat(), []);
        }
        assert_eq!(r.sent.len(), REMEMBERED);
        assert!(r.take(&[0u32.to_be_bytes().as_slice(); 8].concat()).is_none());
    }

    #[test]
    fn a_closed_tcp_peer_is_seen_before_writing() {
        use std::net::{TcpListener, TcpStream};
        use std::os::fd::AsRawFd;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        assert!(!peer_closed(client.as_raw_fd()), "open and quiet");
        drop(server);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(peer_closed(client.as_raw_fd()), "end of stream");
    }

    #[test]
    fn the_kernel_reports_the_refused_datagram_and_does_not_send_the_failing_one() {
        use std::net::UdpSocket;
        use std::os::fd::AsRawFd;
        let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.connect(("127.0.0.1", port)).unwrap();
        enable(s.as_raw_fd(), false).unwrap();
        let first = [1u8; 40];
        s.send(&first).expect("the first datagram leaves");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let listener = UdpSocket::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let err = s.send(&[2u8; 40]).expect_err("the pending error is reported");
        assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
        assert_eq!(drain(s.as_raw_fd()), vec![first.to_vec()], "the refused one");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut buf = [0u8; 64];
        assert!(listener.recv(&mut buf).is_err(), "the failed send sent nothing");
    }
}
