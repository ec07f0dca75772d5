//! `flowctl-bench send`: round-robin UDP frames for N flows out of an
//! interface through an AF_PACKET socket, so tc/tcx egress programs and
//! packet taps see every frame (no PACKET_QDISC_BYPASS).

use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};

use crate::{cli::SendArgs, frames, netns, signals};

/// Most frames handed to one sendmmsg call.
const MAX_BATCH: usize = 64;

/// What a run did.
#[derive(Debug)]
struct Outcome {
    sent: u64,
    seconds: f64,
    errors: u64,
}

/// Runs the generator and prints one JSON line.
pub fn run(args: &SendArgs) -> Result<()> {
    signals::install()?;
    netns::enter(&args.netns)?;
    let sock = Sock::open(&args.ifname)?;
    let spec = frames::FrameSpec {
        src_mac: sock.mac,
        dst_mac: args.dst_mac,
        src_ip: args.src_ip,
        dst_ip: args.dst_ip,
        dst_port: args.dst_port,
        size: args.size,
    };
    let frames = frames::build(&spec, args.flows);
    let out = send_loop(&sock, &frames, args.rate, Duration::from_secs_f64(args.duration))?;
    let pps = if out.seconds > 0.0 {
        out.sent as f64 / out.seconds
    } else {
        0.0
    };
    println!(
        "{}",
        serde_json::json!({"sent": out.sent, "seconds": out.seconds, "pps": pps, "errors": out.errors})
    );
    Ok(())
}

/// A raw packet socket plus the interface it sends on.
struct Sock {
    fd: OwnedFd,
    ifindex: i32,
    mac: [u8; 6],
}

impl Sock {
    fn open(ifname: &str) -> Result<Self> {
        let name = CString::new(ifname).context("interface name contains NUL")?;
        if name.as_bytes().len() >= libc::IFNAMSIZ {
            bail!("interface name {ifname:?} is too long");
        }
        // SAFETY: plain libc calls on owned, initialised arguments.
        unsafe {
            let ifindex = libc::if_nametoindex(name.as_ptr());
            if ifindex == 0 {
                bail!("no interface {ifname:?} in this network namespace");
            }
            // Protocol 0: bound to the interface, the socket only sends, it never receives.
            let raw = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0);
            if raw < 0 {
                return Err(io::Error::last_os_error()).context("opening an AF_PACKET socket (root needed)");
            }
            let fd = OwnedFd::from_raw_fd(raw);
            let mut local: libc::sockaddr_ll = std::mem::zeroed();
            local.sll_family = libc::AF_PACKET as u16;
            local.sll_ifindex = ifindex as i32;
            let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
            if libc::bind(fd.as_raw_fd(), (&local as *const libc::sockaddr_ll).cast(), len) < 0 {
                return Err(io::Error::last_os_error()).with_context(|| format!("binding to {ifname}"));
            }
            let mut ifr: libc::ifreq = std::mem::zeroed();
            for (dst, src) in ifr.ifr_name.iter_mut().zip(name.as_bytes()) {
                *dst = *src as libc::c_char;
            }
            if libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &mut ifr) < 0 {
                return Err(io::Error::last_os_error()).with_context(|| format!("reading the MAC of {ifname}"));
            }
            let mut mac = [0u8; 6];
            for (m, b) in mac.iter_mut().zip(ifr.ifr_ifru.ifru_hwaddr.sa_data.iter()) {
                *m = *b as u8;
            }
            Ok(Self {
                fd,
                ifindex: ifindex as i32,
                mac,
            })
        }
    }

    fn dest(&self, dst_mac: [u8; 6]) -> libc::sockaddr_ll {
        // SAFETY: sockaddr_ll is plain data; all-zero is valid.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_IP as u16).to_be();
        sll.sll_ifindex = self.ifindex;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&dst_mac);
        sll
    }
}

/// Frames per sendmmsg call: at most ~1 ms of traffic when paced.
fn batch_size(rate: u64) -> usize {
    if rate == 0 {
        MAX_BATCH
    } else {
        (rate / 1000).clamp(1, MAX_BATCH as u64) as usize
    }
}

fn send_loop(sock: &Sock, frames: &[Vec<u8>], rate: u64, duration: Duration) -> Result<Outcome> {
    let dst_mac: [u8; 6] = frames
        .first()
        .and_then(|f| f.get(0..6))
        .and_then(|mac| mac.try_into().ok())
        .context("no Ethernet frame to send")?;
    let mut dest = sock.dest(dst_mac);
    let batch = batch_size(rate);
    // SAFETY: iovec is plain data; all zeroes is valid. The pointers set
    // below stay valid (frames, dest and iovs outlive every sendmmsg call).
    let mut iovs: Vec<libc::iovec> = vec![unsafe { std::mem::zeroed() }; batch];
    // SAFETY: mmsghdr is plain data; all zeroes is valid.
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; batch];
    for (m, iov) in msgs.iter_mut().zip(iovs.iter_mut()) {
        m.msg_hdr.msg_name = (&mut dest as *mut libc::sockaddr_ll).cast();
        m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        m.msg_hdr.msg_iov = iov;
        m.msg_hdr.msg_iovlen = 1;
    }

    let start = Instant::now();
    let (mut sent, mut errors, mut next) = (0u64, 0u64, 0usize);
    loop {
        let now = Instant::now();
        if now.duration_since(start) >= duration || signals::stop_requested() {
            break;
        }
        if rate > 0 {
            let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
            if due > now {
                std::thread::sleep((due - now).min(duration.saturating_sub(now.duration_since(start))));
                continue;
            }
        }
        for (k, iov) in iovs.iter_mut().enumerate() {
            let f = &frames[(next + k) % frames.len()];
            iov.iov_base = f.as_ptr() as *mut libc::c_void;
            iov.iov_len = f.len();
        }
        // SAFETY: msgs point at live iovecs, frames and dest (see above).
        let n = unsafe { libc::sendmmsg(sock.fd.as_raw_fd(), msgs.as_mut_ptr(), batch as u32, 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR) => {
                    errors += 1;
                    std::thread::yield_now();
                    continue;
                }
                _ => return Err(e).context("sending frames"),
            }
        }
        sent += n as u64;
        next = (next + n as usize) % frames.len();
    }
    Ok(Outcome {
        sent,
        seconds: start.elapsed().as_secs_f64(),
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_bounded() {
        assert_eq!(batch_size(0), MAX_BATCH);
        assert_eq!(batch_size(1), 1);
        assert_eq!(batch_size(10_000), 10);
        assert_eq!(batch_size(10_000_000), MAX_BATCH);
    }
}
