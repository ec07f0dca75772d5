//! What the running kernel must offer, checked before anything is loaded.
//!
//! flowctl needs, oldest first:
//!
//! | feature | since |
//! |---|---|
//! | the `bpf_jiffies64` helper (the clock cache) | Linux 5.5 |
//! | `__sk_buff.gso_size` (wire packets of GSO packets) | Linux 5.7 |
//! | the `bpf_ktime_get_boot_ns` helper (timestamps) | Linux 5.8 |
//! | `BPF_MAP_LOOKUP_AND_DELETE_ELEM` on hash maps (taking a flow out without losing a packet) | Linux 5.14 |
//!
//! So the oldest kernel flowctl runs on is 5.14. Each feature is probed for
//! (a tiny program or map created and dropped), not read off the version,
//! so distribution kernels with backports pass on what they have. tcx
//! (Linux 6.6) is optional: without it the classifier is attached as a tc
//! filter under a clsact qdisc.

use std::sync::OnceLock;

use crate::{
    map_ops::sys::{bpf, bpf_fd, cmd},
    Error, Result,
};

/// One thing flowctl needs from the kernel.
struct Feature {
    what: &'static str,
    since: &'static str,
    probe: fn() -> bool,
}

const FEATURES: [Feature; 4] = [
    Feature {
        what: "the bpf_jiffies64 helper",
        since: "5.5",
        probe: || loads(&[call(BPF_FUNC_JIFFIES64), MOV_R0_0, EXIT]),
    },
    Feature {
        what: "__sk_buff.gso_size",
        since: "5.7",
        probe: || loads(&[LOAD_R0_GSO_SIZE, MOV_R0_0, EXIT]),
    },
    Feature {
        what: "the bpf_ktime_get_boot_ns helper",
        since: "5.8",
        probe: || loads(&[call(BPF_FUNC_KTIME_GET_BOOT_NS), MOV_R0_0, EXIT]),
    },
    Feature {
        what: "BPF_MAP_LOOKUP_AND_DELETE_ELEM on hash maps",
        since: "5.14",
        probe: lookup_and_delete_works,
    },
];

/// Checks once per process that the kernel has everything flowctl needs;
/// the error names the oldest missing feature.
pub fn check() -> Result<()> {
    static CHECKED: OnceLock<std::result::Result<(), (&'static str, &'static str)>> = OnceLock::new();
    let result = CHECKED.get_or_init(|| {
        FEATURES
            .iter()
            .find(|f| !(f.probe)())
            .map_or(Ok(()), |f| Err((f.what, f.since)))
    });
    result.map_err(|(feature, since)| Error::KernelTooOld {
        kernel: kernel_release(),
        feature,
        since,
    })
}

/// `uname -r`.
fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    /// dst_reg in the low nibble, src_reg in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const BPF_FUNC_JIFFIES64: i32 = 118;
const BPF_FUNC_KTIME_GET_BOOT_NS: i32 = 125;
/// `offsetof(struct __sk_buff, gso_size)` in the UAPI.
const SKB_GSO_SIZE: i16 = 176;

const fn call(helper: i32) -> Insn {
    Insn {
        code: 0x85, // BPF_JMP | BPF_CALL
        regs: 0,
        off: 0,
        imm: helper,
    }
}
/// `r0 = 0`.
const MOV_R0_0: Insn = Insn {
    code: 0xb7, // BPF_ALU64 | BPF_MOV | BPF_K
    regs: 0,
    off: 0,
    imm: 0,
};
/// `r0 = *(u32 *)(r1 + gso_size)`: r1 is the context.
const LOAD_R0_GSO_SIZE: Insn = Insn {
    code: 0x61, // BPF_LDX | BPF_MEM | BPF_W
    regs: 0x10,
    off: SKB_GSO_SIZE,
    imm: 0,
};
const EXIT: Insn = Insn {
    code: 0x95, // BPF_JMP | BPF_EXIT
    regs: 0,
    off: 0,
    imm: 0,
};

/// The head of `union bpf_attr` for `BPF_PROG_LOAD`.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// Whether the verifier accepts `insns` as a tc classifier.
fn loads(insns: &[Insn]) -> bool {
    const BPF_PROG_TYPE_SCHED_CLS: u32 = 3;
    let license = c"GPL";
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_SCHED_CLS,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
    };
    bpf_fd(cmd::PROG_LOAD, &mut attr).is_ok()
}

/// The head of `union bpf_attr` for `BPF_MAP_CREATE`.
#[repr(C)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

/// The head of `union bpf_attr` for the `BPF_MAP_*_ELEM` commands.
#[repr(C)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// Whether a hash map entry can be read and deleted in one command.
fn lookup_and_delete_works() -> bool {
    use std::os::fd::AsRawFd;
    const BPF_MAP_TYPE_HASH: u32 = 1;
    let mut create = MapCreateAttr {
        map_type: BPF_MAP_TYPE_HASH,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        map_flags: 0,
    };
    let Ok(map) = bpf_fd(cmd::MAP_CREATE, &mut create) else {
        return false;
    };
    let (key, mut value) = (7u32, 42u32);
    let elem = |command, value: &mut u32| {
        let mut attr = ElemAttr {
            map_fd: map.as_raw_fd() as u32,
            _pad: 0,
            key: &key as *const u32 as u64,
            value: value as *mut u32 as u64,
            flags: 0,
        };
        bpf(command, &mut attr).is_ok()
    };
    let mut out = 0u32;
    elem(cmd::MAP_UPDATE_ELEM, &mut value) && elem(cmd::MAP_LOOKUP_AND_DELETE_ELEM, &mut out) && out == 42
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
    fn this_kernel_has_everything() {
        for f in &FEATURES {
            assert!((f.probe)(), "{} (Linux {}) probed missing", f.what, f.since);
        }
        check().unwrap();
        // The probes tell a missing helper from a present one.
        assert!(loads(&[MOV_R0_0, EXIT]));
        assert!(
            !loads(&[call(100_000), MOV_R0_0, EXIT]),
            "an unknown helper must not load"
        );
    }

    #[test]
    fn features_are_listed_oldest_first_and_the_error_names_one() {
        let since: Vec<(u32, u32)> = FEATURES
            .iter()
            .map(|f| {
                let (a, b) = f.since.split_once('.').unwrap();
                (a.parse().unwrap(), b.parse().unwrap())
            })
            .collect();
        assert!(since.windows(2).all(|w| w[0] <= w[1]));
        let e = Error::KernelTooOld {
            kernel: "5.10.0-28-amd64".into(),
            feature: FEATURES[3].what,
            since: FEATURES[3].since,
        };
        assert_eq!(
            e.to_string(),
            "this kernel (5.10.0-28-amd64) lacks BPF_MAP_LOOKUP_AND_DELETE_ELEM on hash maps, which flowctl needs (Linux 5.14 or newer)"
        );
    }
}
