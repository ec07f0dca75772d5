//! Feeding packets to the classifier without attaching it, through
//! `BPF_PROG_TEST_RUN`: the way parser tests and fuzzing exercise the real
//! datapath on crafted input. Counts land in the pinned maps like live traffic.

use crate::{
    attach::{classifier_mut, load_object},
    Direction, Error, PinLayout, Result,
};
use aya::programs::{SchedClassifier, TestRun, TestRunOptions};
use flowctl_model::Sampling;

/// Offsets in the kernel's `struct __sk_buff` (include/uapi/linux/bpf.h).
const SKB_INGRESS_IFINDEX: usize = 36;
const SKB_IFINDEX: usize = 40;
const SKB_GSO_SEGS: usize = 164;
const SKB_GSO_SIZE: usize = 176;
const SKB_SIZE: usize = 192;

/// The parts of `struct __sk_buff` a test run may set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkbContext {
    /// `skb->ingress_ifindex` the program sees.
    pub ingress_ifindex: u32,
    /// `skb->ifindex`; must be 1 (lo) or an existing interface of the caller's netns.
    pub ifindex: u32,
    /// GSO segments (0 or 1 for a plain packet).
    pub gso_segs: u32,
    /// GSO segment payload size.
    pub gso_size: u32,
}

impl Default for SkbContext {
    fn default() -> Self {
        Self {
            ingress_ifindex: 0,
            ifindex: 1,
            gso_segs: 0,
            gso_size: 0,
        }
    }
}

impl SkbContext {
    fn to_bytes(self) -> [u8; SKB_SIZE] {
        let mut b = [0u8; SKB_SIZE];
        for (off, v) in [
            (SKB_INGRESS_IFINDEX, self.ingress_ifindex),
            (SKB_IFINDEX, self.ifindex),
            (SKB_GSO_SEGS, self.gso_segs),
            (SKB_GSO_SIZE, self.gso_size),
        ] {
            b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        }
        b
    }
}

/// Both classifiers loaded (verified) and their maps pinned, attached nowhere.
pub struct DetachedDatapath {
    ebpf: aya::Ebpf,
}

impl DetachedDatapath {
    /// Loads the datapath with its maps pinned under `layout`; flows are keyed
    /// with `netns_ino`.
    pub fn load(layout: &PinLayout, netns_ino: u32, max_flows: Option<u32>) -> Result<Self> {
        Self::load_sampled(layout, netns_ino, max_flows, Sampling::NONE)
    }

    /// [`DetachedDatapath::load`], metering the packets `sampling` selects.
    pub fn load_sampled(
        layout: &PinLayout,
        netns_ino: u32,
        max_flows: Option<u32>,
        sampling: Sampling,
    ) -> Result<Self> {
        layout.prepare()?;
        let mut ebpf = load_object(
            layout,
            netns_ino,
            max_flows,
            crate::netlink::LinkKind::Ethernet,
            sampling,
        )?;
        for direction in Direction::BOTH {
            let program = classifier_mut(&mut ebpf, direction)?;
            program
                .load()
                .map_err(|e| Error::program_load(direction.program_name(), e))?;
        }
        Ok(Self { ebpf })
    }

    /// Runs one packet (starting at its Ethernet header) through the
    /// classifier of `direction`; returns the program's verdict.
    pub fn run(&self, direction: Direction, packet: &[u8], ctx: SkbContext) -> Result<i32> {
        self.run_repeated(direction, packet, ctx, 1)
    }

    /// Runs one packet `repeat` times in one `BPF_PROG_TEST_RUN` (on one CPU,
    /// the caller's); returns the verdict of the last run.
    pub fn run_repeated(&self, direction: Direction, packet: &[u8], ctx: SkbContext, repeat: u32) -> Result<i32> {
        let name = direction.program_name();
        let program: &SchedClassifier = self
            .ebpf
            .program(name)
            .ok_or_else(|| Error::Bpf {
                action: "test run".into(),
                message: format!("program {name} missing"),
            })?
            .try_into()
            .map_err(|e| Error::bpf(format!("program {name}"), e))?;
        let ctx_bytes = ctx.to_bytes();
        let mut out = vec![0u8; packet.len() + 256];
        let opts = TestRunOptions {
            data_in: Some(packet),
            data_out: Some(&mut out),
            ctx_in: Some(&ctx_bytes),
            repeat: repeat.max(1),
            ..TestRunOptions::new()
        };
        let result = program.test_run(opts).map_err(|e| Error::bpf("BPF_PROG_TEST_RUN", e))?;
        Ok(result.return_value as i32)
    }
}
