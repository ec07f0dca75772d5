//! Proves that the Rust mirrors have the same layout as `bpf/flowctl.h`:
//! compiles a small C program against the header with the system C compiler
//! and compares every size and field offset it prints with `offset_of!`.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeMap, mem::offset_of, path::PathBuf, process::Command};

use flowctl_model::{
    meta, DatapathCounters, FlowKey, FlowSlot, FrontEntry, RingPair, Sampler, SlotRing, SpareSlot, FRONT_BITS,
    FRONT_ENTRIES, LAYOUT_VERSION, SAMPLING_INTERVAL_MASK, SAMPLING_RANDOM, SLOT_CLOSING, SLOT_FREE, SLOT_LIVE,
};

const FIELDS: &[(&str, &[&str])] = &[
    (
        "flow_key",
        &[
            "netns_ino",
            "ingress_ifindex",
            "egress_ifindex",
            "src_addr",
            "dst_addr",
            "src_port",
            "dst_port",
            "vlan_id",
            "inner_vlan_id",
            "direction",
            "ip_version",
            "protocol",
            "sampling_tag",
            "mpls_label",
        ],
    ),
    (
        "flow_slot",
        &[
            "key",
            "sampling",
            "packets",
            "octets",
            "first_seen_ns",
            "last_seen_ns",
            "meta",
            "shared_packets",
            "shared_octets",
        ],
    ),
    ("slot_ring", &["head", "tail", "mask", "pad"]),
    ("spare_slot", &["slot", "held"]),
    ("front_entry", &["check", "slot"]),
    ("sampler", &["count", "sampling"]),
    ("ring_pair", &["slot"]),
    (
        "datapath_counters",
        &[
            "non_ip_packets",
            "non_ip_octets",
            "malformed_packets",
            "malformed_octets",
            "not_recorded_packets",
            "not_recorded_octets",
        ],
    ),
];

/// Constants of the header, by the name the comparison uses.
const CONSTANTS: &[(&str, &str)] = &[
    ("slot_free", "FLOWCTL_SLOT_FREE"),
    ("slot_live", "FLOWCTL_SLOT_LIVE"),
    ("slot_closing", "FLOWCTL_SLOT_CLOSING"),
    ("ttl_min_shift", "FLOWCTL_META_TTL_MIN_SHIFT"),
    ("ttl_max_shift", "FLOWCTL_META_TTL_MAX_SHIFT"),
    ("tos_shift", "FLOWCTL_META_TOS_SHIFT"),
    ("owner_shift", "FLOWCTL_META_OWNER_SHIFT"),
    ("state_shift", "FLOWCTL_META_STATE_SHIFT"),
    ("reason_shift", "FLOWCTL_META_REASON_SHIFT"),
    ("owner_none", "FLOWCTL_OWNER_NONE"),
    ("owner_open", "FLOWCTL_OWNER_OPEN"),
    ("front_bits", "FLOWCTL_FRONT_BITS"),
    ("front_entries", "FLOWCTL_FRONT_ENTRIES"),
    ("sampling_random", "FLOWCTL_SAMPLING_RANDOM"),
    ("sampling_interval_mask", "FLOWCTL_SAMPLING_INTERVAL_MASK"),
];

/// Compiles and runs the C side; returns "struct.field" -> offset and "struct" -> size.
fn c_layout() -> BTreeMap<String, usize> {
    let bpf_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bpf");
    let mut src = String::from("#include <stdio.h>\n#include <stddef.h>\n#include \"flowctl.h\"\nint main(void) {\n");
    src.push_str("printf(\"version %d\\n\", FLOWCTL_LAYOUT_VERSION);\n");
    for (name, c_name) in CONSTANTS {
        src.push_str(&format!("printf(\"{name} %lu\\n\", (unsigned long){c_name});\n"));
    }
    for (name, fields) in FIELDS {
        src.push_str(&format!("printf(\"{name} %zu\\n\", sizeof(struct {name}));\n"));
        for f in *fields {
            src.push_str(&format!(
                "printf(\"{name}.{f} %zu\\n\", offsetof(struct {name}, {f}));\n"
            ));
        }
    }
    src.push_str("return 0; }\n");

    let dir = std::env::temp_dir().join(format!("flowctl-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c_file = dir.join("layout.c");
    let exe = dir.join("layout");
    std::fs::write(&c_file, src).unwrap();
    let status = Command::new("cc")
        .arg("-I")
        .arg(&bpf_dir)
        .arg(&c_file)
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("a C compiler (cc) is needed for the layout test");
    assert!(status.success(), "compiling the layout probe failed");
    let out = Command::new(&exe).output().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

macro_rules! rust_layout {
    ($map:ident, $name:literal, $ty:ty, [$($f:ident),*]) => {
        $map.insert($name.to_string(), std::mem::size_of::<$ty>());
        $( $map.insert(format!("{}.{}", $name, stringify!($f)), offset_of!($ty, $f)); )*
    };
}

#[test]
fn rust_types_match_c_header() {
    let c = c_layout();
    let mut rust = BTreeMap::new();
    rust.insert("version".to_string(), LAYOUT_VERSION as usize);
    rust.insert("slot_free".to_string(), SLOT_FREE as usize);
    rust.insert("slot_live".to_string(), SLOT_LIVE as usize);
    rust.insert("slot_closing".to_string(), SLOT_CLOSING as usize);
    rust.insert("ttl_min_shift".to_string(), meta::TTL_MIN_SHIFT as usize);
    rust.insert("ttl_max_shift".to_string(), meta::TTL_MAX_SHIFT as usize);
    rust.insert("tos_shift".to_string(), meta::TOS_SHIFT as usize);
    rust.insert("owner_shift".to_string(), meta::OWNER_SHIFT as usize);
    rust.insert("state_shift".to_string(), meta::STATE_SHIFT as usize);
    rust.insert("reason_shift".to_string(), meta::REASON_SHIFT as usize);
    rust.insert("owner_none".to_string(), meta::OWNER_NONE as usize);
    rust.insert("owner_open".to_string(), meta::OWNER_OPEN as usize);
    rust.insert("front_bits".to_string(), FRONT_BITS as usize);
    rust.insert("front_entries".to_string(), FRONT_ENTRIES as usize);
    rust.insert("sampling_random".to_string(), SAMPLING_RANDOM as usize);
    rust.insert("sampling_interval_mask".to_string(), SAMPLING_INTERVAL_MASK as usize);
    rust_layout!(
        rust,
        "flow_key",
        FlowKey,
        [
            netns_ino,
            ingress_ifindex,
            egress_ifindex,
            src_addr,
            dst_addr,
            src_port,
            dst_port,
            vlan_id,
            inner_vlan_id,
            direction,
            ip_version,
            protocol,
            sampling_tag,
            mpls_label
        ]
    );
    rust_layout!(
        rust,
        "flow_slot",
        FlowSlot,
        [
            key,
            sampling,
            packets,
            octets,
            first_seen_ns,
            last_seen_ns,
            meta,
            shared_packets,
            shared_octets
        ]
    );
    rust_layout!(rust, "slot_ring", SlotRing, [head, tail, mask, pad]);
    rust_layout!(rust, "spare_slot", SpareSlot, [slot, held]);
    rust_layout!(rust, "front_entry", FrontEntry, [check, slot]);
    rust_layout!(rust, "sampler", Sampler, [count, sampling]);
    rust_layout!(rust, "ring_pair", RingPair, [slot]);
    rust_layout!(
        rust,
        "datapath_counters",
        DatapathCounters,
        [
            non_ip_packets,
            non_ip_octets,
            malformed_packets,
            malformed_octets,
            not_recorded_packets,
            not_recorded_octets
        ]
    );
    assert_eq!(c, rust);
}
