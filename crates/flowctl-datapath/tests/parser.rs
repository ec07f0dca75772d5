//! The real classifier, fed crafted packets through BPF_PROG_TEST_RUN (root
//! needed): every parse path lands in the right flow with the right counts.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicU32, Ordering},
};

use etherparse::PacketBuilder;
use flowctl_common::{key_addr, FlowKey};
use flowctl_datapath::{
    test_run::{DetachedDatapath, SkbContext},
    Direction, FlowStats, FlowTable, PinLayout,
};

const TC_ACT_UNSPEC: i32 = -1;

/// A freshly loaded datapath with its own pin directory, removed on drop.
struct Harness {
    base: PathBuf,
    layout: PinLayout,
    datapath: DetachedDatapath,
}

impl Harness {
    fn new(max_flows: Option<u32>) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let base = PathBuf::from(format!(
            "/sys/fs/bpf/flowctl-test-parser-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let layout = PinLayout::under(&base);
        let datapath = DetachedDatapath::load(&layout, 4242, max_flows).expect("load datapath (run as root)");
        Self { base, layout, datapath }
    }

    fn send(&self, direction: Direction, packet: &[u8], ctx: SkbContext) {
        let verdict = self.datapath.run(direction, packet, ctx).expect("test run");
        assert_eq!(verdict, TC_ACT_UNSPEC, "the classifier must never change the verdict");
    }

    fn egress(&self, packet: &[u8]) {
        self.send(Direction::Egress, packet, SkbContext::default());
    }

    fn flows(&self) -> Vec<(FlowKey, FlowStats)> {
        let mut f = FlowTable::open(&self.layout).unwrap().read_all().unwrap();
        f.sort_by_key(|(k, _)| *k);
        f
    }

    fn only_flow(&self) -> (FlowKey, FlowStats) {
        let f = self.flows();
        assert_eq!(f.len(), 1, "expected exactly one flow, got {f:#?}");
        f[0]
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn udp4(payload: usize) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
        .udp(1000, 2000);
    let mut out = Vec::new();
    b.write(&mut out, &vec![0xab; payload]).unwrap();
    out
}

#[test]
fn ipv4_udp_is_one_flow_with_l3_octets() {
    let h = Harness::new(None);
    h.egress(&udp4(100));
    h.egress(&udp4(100));
    let (k, s) = h.only_flow();
    assert_eq!(k.ip_version, 4);
    assert_eq!(k.protocol, 17);
    assert_eq!(k.netns_ino, 4242);
    assert_eq!(k.direction, 1);
    assert_eq!(k.egress_ifindex, 1);
    assert_eq!(k.src_addr, key_addr("192.0.2.1".parse().unwrap()));
    assert_eq!(k.dst_addr, key_addr("192.0.2.2".parse().unwrap()));
    assert_eq!((k.src_port, k.dst_port), (1000, 2000));
    assert_eq!(s.packets, 2);
    assert_eq!(s.octets, 2 * (20 + 8 + 100));
    assert_eq!((s.min_ttl, s.max_ttl), (64, 64));
    assert!(s.first_seen_ns > 0 && s.last_seen_ns >= s.first_seen_ns);
}
