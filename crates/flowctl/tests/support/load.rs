//! Traffic for the fault tests: steady UDP flows that run in the background
//! while the test breaks things, and many short flows towards a receiver that
//! counts what arrived.

use std::{
    net::{SocketAddr, UdpSocket},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use super::netns::in_netns;

/// UDP flows from `src_ip:port` (one per port, in namespace `src_ns`) to a
/// bound sink, one datagram per flow every `gap`, until [`Steady::stop`].
pub struct Steady {
    stop: Arc<AtomicBool>,
    sender: Option<JoinHandle<Vec<u64>>>,
    _sink: UdpSocket,
}

impl Steady {
    /// Starts sending; `dst` is bound in `dst_ns` so no ICMP error comes back.
    pub fn start(
        src_ns: &str,
        src_ip: &str,
        ports: Vec<u16>,
        dst_ns: &str,
        dst: SocketAddr,
        payload: usize,
        gap: Duration,
    ) -> Self {
        let sink = in_netns(dst_ns, move || UdpSocket::bind(dst).expect("bind UDP sink"))
            .join()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let src_ip: std::net::IpAddr = src_ip.parse().unwrap();
        let sender = in_netns(src_ns, move || {
            let socks: Vec<UdpSocket> = ports
                .iter()
                .map(|&p| UdpSocket::bind(SocketAddr::new(src_ip, p)).expect("bind UDP source"))
                .collect();
            let mut sent = vec![0u64; socks.len()];
            let body = vec![0x5a; payload];
            while !stop2.load(Ordering::SeqCst) {
                for (s, n) in socks.iter().zip(sent.iter_mut()) {
                    s.send_to(&body, dst).expect("send UDP");
                    *n += 1;
                }
                std::thread::sleep(gap);
            }
            sent
        });
        Self {
            stop,
            sender: Some(sender),
            _sink: sink,
        }
    }

    /// Stops sending; returns the datagrams sent per port, in the order given.
    pub fn stop(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::SeqCst);
        let sent = self.sender.take().unwrap().join().expect("sender thread");
        std::thread::sleep(Duration::from_millis(100));
        sent
    }
}

impl Drop for Steady {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.sender.take() {
            let _ = t.join();
        }
    }
}

/// Many short UDP flows: `per_flow` datagrams of `payload` bytes from each
/// source port in `ports` (namespace `src_ns`, address `src_ip`) to `dst`
/// (namespace `dst_ns`), pausing `pause` after each flow.
pub struct ManyFlows<'a> {
    /// Sender's namespace.
    pub src_ns: &'a str,
    /// Sender's address.
    pub src_ip: &'a str,
    /// One flow per source port.
    pub ports: std::ops::Range<u16>,
    /// Receiver's namespace.
    pub dst_ns: &'a str,
    /// Receiver's address and port.
    pub dst: SocketAddr,
    /// Datagrams per flow.
    pub per_flow: usize,
    /// UDP payload bytes.
    pub payload: usize,
    /// Pause after each flow.
    pub pause: Duration,
}

impl ManyFlows<'_> {
    /// Sends; returns how many datagrams the receiver got (it waits up to
    /// 3 s for the last ones).
    pub fn run(&self) -> u64 {
        let (dst, per_flow, payload, pause) = (self.dst, self.per_flow, self.payload, self.pause);
        let ports = self.ports.clone();
        let expected = ports.len() as u64 * per_flow as u64;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let receiver = in_netns(self.dst_ns, move || {
            let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
            sock.set_recv_buffer_size(16 << 20).unwrap();
            sock.bind(&dst.into()).expect("bind receiver");
            let sock: UdpSocket = sock.into();
            sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
            ready_tx.send(()).unwrap();
            let (mut got, mut last) = (0u64, Instant::now());
            let mut buf = [0u8; 2048];
            while got < expected && last.elapsed() < Duration::from_secs(3) {
                if sock.recv(&mut buf).is_ok() {
                    got += 1;
                    last = Instant::now();
                }
            }
            got
        });
        ready_rx.recv().unwrap();
        let src_ip: std::net::IpAddr = self.src_ip.parse().unwrap();
        in_netns(self.src_ns, move || {
            let body = vec![0x33; payload];
            for p in ports {
                let s = UdpSocket::bind(SocketAddr::new(src_ip, p)).expect("bind UDP source");
                for _ in 0..per_flow {
                    s.send_to(&body, dst).expect("send UDP");
                }
                std::thread::sleep(pause);
            }
        })
        .join()
        .unwrap();
        receiver.join().unwrap()
    }
}
