//! Ground truth: an AF_PACKET capture on the metered interface, parsed with
//! etherparse (an implementation independent of the datapath's C parser).
//!
//! `PACKET_VNET_HDR` gives each GSO super-packet's `gso_size`, from which the
//! wire packets and octets are computed; `PACKET_AUXDATA` gives offloaded
//! VLAN tags. Outgoing packets are egress flows, incoming ones ingress flows.

use std::{
    collections::BTreeMap,
    mem::{size_of, zeroed},
    net::IpAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc,
    },
    thread::JoinHandle,
};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

use super::netns::in_netns;

const PACKET_AUXDATA: i32 = 8;
const PACKET_VNET_HDR: i32 = 15;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
const PACKET_OUTGOING: u8 = 4;
const VNET_HDR_LEN: usize = 10;

/// One captured skb.
#[derive(Clone, Debug)]
pub struct Captured {
    /// Sent by the interface (egress) rather than received.
    pub outgoing: bool,
    /// `gso_size` from the vnet header (0 for a plain packet).
    pub gso_size: u16,
    /// Offloaded VLAN id, if any.
    pub vlan_tci: Option<u16>,
    /// The frame from the Ethernet header on.
    pub frame: Vec<u8>,
}

/// A running capture; [`Capture::stop`] returns what it saw.
pub struct Capture {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Captured>>,
}

impl Capture {
    /// Starts capturing on `ifindex` in namespace `ns`; returns once the
    /// socket is bound, so nothing sent afterwards is missed.
    pub fn start(ns: &str, ifindex: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let stop2 = stop.clone();
        let thread = in_netns(ns, move || {
            let fd = open_socket(ifindex);
            ready_tx.send(()).unwrap();
            let mut out = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                if let Some(p) = receive(fd) {
                    out.push(p);
                }
            }
            // Drain what is queued already.
            while let Some(p) = receive(fd) {
                out.push(p);
            }
            // SAFETY: fd is the capture socket this thread opened and owns.
            unsafe { libc::close(fd) };
            out
        });
        ready_rx.recv().expect("capture thread failed to start");
        Self { stop, thread }
    }

    /// Stops and returns the captured packets.
    pub fn stop(self) -> Vec<Captured> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("capture thread")
    }
}

fn setsockopt<T>(fd: i32, level: i32, name: i32, value: &T) {
    // SAFETY: value points to a live T of the given size.
    let rc = unsafe { libc::setsockopt(fd, level, name, value as *const T as *const _, size_of::<T>() as u32) };
    assert_eq!(rc, 0, "setsockopt {name}: {}", std::io::Error::last_os_error());
}

fn open_socket(ifindex: u32) -> i32 {
    let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
    // SAFETY: plain socket calls with owned, initialised arguments.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto);
        assert!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
        setsockopt(fd, libc::SOL_PACKET, PACKET_VNET_HDR, &1i32);
        setsockopt(fd, libc::SOL_PACKET, PACKET_AUXDATA, &1i32);
        setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &(32i32 << 20));
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 50_000,
        };
        setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv);
        let mut sll: libc::sockaddr_ll = zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto as u16;
        sll.sll_ifindex = ifindex as i32;
        let rc = libc::bind(
            fd,
            &sll as *const _ as *const libc::sockaddr,
            size_of::<libc::sockaddr_ll>() as u32,
        );
        assert_eq!(rc, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
        fd
    }
}

#[repr(C)]
struct TpacketAuxdata {
    tp_status: u32,
    tp_len: u32,
    tp_snaplen: u32,
    tp_mac: u16,
    tp_net: u16,
    tp_vlan_tci: u16,
    tp_vlan_tpid: u16,
}

fn receive(fd: i32) -> Option<Captured> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut control = [0u64; 64];
    // SAFETY: every pointer handed to recvmsg refers to a live local buffer.
    unsafe {
        let mut sll: libc::sockaddr_ll = zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr() as *mut _,
            iov_len: buf.len(),
        };
        let mut msg: libc::msghdr = zeroed();
        msg.msg_name = &mut sll as *mut _ as *mut _;
        msg.msg_namelen = size_of::<libc::sockaddr_ll>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut _;
        msg.msg_controllen = size_of::<[u64; 64]>();
        let n = libc::recvmsg(fd, &mut msg, 0);
        if n < VNET_HDR_LEN as isize {
            return None;
        }
        let mut vlan_tci = None;
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_PACKET && (*cmsg).cmsg_type == PACKET_AUXDATA {
                let aux = &*(libc::CMSG_DATA(cmsg) as *const TpacketAuxdata);
                if aux.tp_status & TP_STATUS_VLAN_VALID != 0 {
                    vlan_tci = Some(aux.tp_vlan_tci & 0x0fff);
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        let n = n as usize;
        Some(Captured {
            outgoing: sll.sll_pkttype == PACKET_OUTGOING,
            gso_size: u16::from_le_bytes([buf[4], buf[5]]),
            vlan_tci,
            frame: buf[VNET_HDR_LEN..n].to_vec(),
        })
    }
}

/// A flow as the capture sees it, in the terms of `flowctl dump -o json`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TruthKey {
    /// "ingress" or "egress".
    pub direction: &'static str,
    /// IP protocol.
    pub proto: u8,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (0 for ICMP).
    pub sport: u16,
    /// Destination port or ICMP type * 256 + code.
    pub dport: u16,
    /// Outer VLAN id, 0 if none.
    pub vlan: u16,
    /// Inner VLAN id, 0 if none.
    pub inner_vlan: u16,
}

/// Counters of one ground-truth flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TruthCount {
    /// Wire packets.
    pub packets: u64,
    /// L3 octets.
    pub bytes: u64,
    /// OR of TCP flags.
    pub tcp_flags: u16,
    /// Captured skbs that were GSO super-packets.
    pub gso_skbs: u64,
}

/// Wire-level flows of a capture. Non-IP frames are skipped.
pub fn flows(packets: &[Captured]) -> BTreeMap<TruthKey, TruthCount> {
    let mut out: BTreeMap<TruthKey, TruthCount> = BTreeMap::new();
    for p in packets {
        let Ok(sliced) = SlicedPacket::from_ethernet(&p.frame) else {
            continue;
        };
        // Offloaded tag first (it was the outermost), then in-band tags.
        let in_band = sliced.link_exts.iter().filter_map(|e| match e {
            etherparse::LinkExtSlice::Vlan(v) => Some(v.vlan_identifier().value()),
            _ => None,
        });
        let tags: Vec<u16> = p.vlan_tci.into_iter().chain(in_band).collect();
        let (vlan, inner_vlan) = (tags.first().copied().unwrap_or(0), tags.get(1).copied().unwrap_or(0));
        let (src, dst, proto, l3_len, l3_hdr) = match &sliced.net {
            Some(NetSlice::Ipv4(v4)) => {
                let h = v4.header();
                (
                    IpAddr::V4(h.source_addr()),
                    IpAddr::V4(h.destination_addr()),
                    h.protocol().0,
                    h.total_len() as u64,
                    h.ihl() as u64 * 4,
                )
            }
            Some(NetSlice::Ipv6(v6)) => {
                let h = v6.header();
                let ext_len = v6.extensions().slice().len() as u64;
                (
                    IpAddr::V6(h.source_addr()),
                    IpAddr::V6(h.destination_addr()),
                    v6.payload().ip_number.0,
                    40 + h.payload_length() as u64,
                    40 + ext_len,
                )
            }
            _ => continue,
        };
        let (sport, dport, l4_hdr, flags) = match &sliced.transport {
            Some(TransportSlice::Tcp(t)) => {
                let flags = (t.slice()[12] as u16 & 0x0f) << 8 | t.slice()[13] as u16;
                (t.source_port(), t.destination_port(), t.header_len() as u64, flags)
            }
            Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port(), 8, 0),
            Some(TransportSlice::Icmpv4(i)) => (0, u16::from_be_bytes([i.type_u8(), i.code_u8()]), 8, 0),
            Some(TransportSlice::Icmpv6(i)) => (0, u16::from_be_bytes([i.type_u8(), i.code_u8()]), 8, 0),
            _ => (0, 0, 0, 0),
        };
        let (packets, bytes) = if p.gso_size > 0 {
            let headers = l3_hdr + l4_hdr;
            let payload = l3_len - headers;
            let segs = payload.div_ceil(p.gso_size as u64).max(1);
            (segs, payload + segs * headers)
        } else {
            (1, l3_len)
        };
        let key = TruthKey {
            direction: if p.outgoing { "egress" } else { "ingress" },
            proto,
            src,
            dst,
            sport,
            dport,
            vlan,
            inner_vlan,
        };
        let c = out.entry(key).or_default();
        c.packets += packets;
        c.bytes += bytes;
        c.tcp_flags |= flags;
        c.gso_skbs += (p.gso_size > 0 && packets > 1) as u64;
    }
    out
}
