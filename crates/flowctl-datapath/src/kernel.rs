//! What the running kernel must offer, checked before anything is loaded.
//!
//! flowctl needs, oldest first:
//!
//! | feature | since |
//! |---|---|
//! | the `bpf_jiffies64` helper (the clock cache) | Linux 5.5 |
//! | memory-mappable arrays (the flow slots, read in place) | Linux 5.5 |
//! | `BPF_MAP_DELETE_BATCH` on hash maps (closing flows) | Linux 5.6 |
//! | `__sk_buff.gso_size` (wire packets of GSO packets) | Linux 5.7 |
//! | the `bpf_ktime_get_boot_ns` helper (timestamps) | Linux 5.8 |
//! | atomic fetch, or and compare-and-exchange instructions (counting from every CPU into one slot) | Linux 5.12 |
//!
//! So the oldest kernel flowctl runs on is 5.12. Each feature is probed for
//! (a tiny program or map created and dropped), not read off the version,
//! so distribution kernels with backports pass on what they have. tcx
//! (Linux 6.6) is optional: without it the classifier is attached as a tc
//! filter under a clsact qdisc.

use std::sync::OnceLock;

use crate::{
    map_ops::sys::{bpf, bpf_fd, cmd, BatchAttr, CreateAttr, ElemAttr, F_MMAPABLE, MAP_TYPE_ARRAY, MAP_TYPE_HASH},
    Error, Result,
};

/// One thing flowctl needs from the kernel.
struct Feature {
    what: &'static str,
    since: &'static str,
    probe: fn() -> bool,
}

const FEATURES: [Feature; 6] = [
    Feature {
        what: "the bpf_jiffies64 helper",
        since: "5.5",
        probe: || loads(&[call(BPF_FUNC_JIFFIES64), MOV_R0_0, EXIT]),
    },
    Feature {
        what: "memory-mappable BPF arrays",
        since: "5.5",
        probe: mmapable_array_works,
    },
    Feature {
        what: "BPF_MAP_DELETE_BATCH on hash maps",
        since: "5.6",
        probe: delete_batch_works,
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
        what: "the atomic compare-and-exchange instruction",
        since: "5.12",
        probe: || loads(&[STORE_STACK_0, MOV_R0_0, MOV_R1_1, CMPXCHG_STACK_R1, MOV_R0_0, EXIT]),
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
/// `r1 = 1`.
const MOV_R1_1: Insn = Insn {
    code: 0xb7,
    regs: 0x01,
    off: 0,
    imm: 1,
};
/// `*(u64 *)(r10 - 8) = 0`.
const STORE_STACK_0: Insn = Insn {
    code: 0x7a, // BPF_ST | BPF_MEM | BPF_DW
    regs: 0x0a,
    off: -8,
    imm: 0,
};
/// `r0 = cmpxchg((u64 *)(r10 - 8), r0, r1)`.
const CMPXCHG_STACK_R1: Insn = Insn {
    code: 0xdb, // BPF_STX | BPF_ATOMIC | BPF_DW
    regs: 0x1a,
    off: -8,
    imm: 0xf1, // BPF_CMPXCHG (BPF_FETCH included)
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

/// Creates a map of `map_type`, 4-byte keys and values, one entry.
fn small_map(map_type: u32, map_flags: u32) -> Option<std::os::fd::OwnedFd> {
    let mut create = CreateAttr {
        map_type,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        map_flags,
        ..Default::default()
    };
    bpf_fd(cmd::MAP_CREATE, &mut create).ok()
}

/// Whether an array user space can mmap can be created.
fn mmapable_array_works() -> bool {
    small_map(MAP_TYPE_ARRAY, F_MMAPABLE).is_some()
}

/// Whether hash map keys can be deleted in one batch command.
fn delete_batch_works() -> bool {
    use std::os::fd::AsRawFd;
    let Some(map) = small_map(MAP_TYPE_HASH, 0) else {
        return false;
    };
    let (key, value) = (7u32, 42u32);
    let mut update = ElemAttr {
        map_fd: map.as_raw_fd() as u32,
        key: &key as *const u32 as u64,
        value: &value as *const u32 as u64,
        ..Default::default()
    };
    if bpf(cmd::MAP_UPDATE_ELEM, &mut update).is_err() {
        return false;
    }
    let mut batch = BatchAttr {
        keys: &key as *const u32 as u64,
        count: 1,
        map_fd: map.as_raw_fd() as u32,
        ..Default::default()
    };
    bpf(cmd::MAP_DELETE_BATCH, &mut batch).is_ok() && batch.count == 1
}
