//! The pinned maps' layout guard (root needed): a map left pinned by a build
//! with another layout is refused with a clear error, never silently reused.
// Test code: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use aya::maps::{MapData, PerCpuHashMap};
use flowctl_datapath::{test_run::DetachedDatapath, Error, FlowTable, PinLayout};
use flowctl_model::{FlowKey, FlowSource};

struct PinDir(PathBuf);

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn a_pinned_map_with_another_value_size_is_refused() {
    let dir = PinDir(PathBuf::from(format!(
        "/sys/fs/bpf/flowctl-test-pins-{}",
        std::process::id()
    )));
    let layout = PinLayout::under(&dir.0);
    layout.prepare().expect("bpffs (run as root)");

    // A map of another layout (8-byte values) left at the flow hash's pin.
    let stale = PerCpuHashMap::<MapData, FlowKey, u64>::create(16, 0).unwrap();
    stale.pin(layout.flows_map()).unwrap();

    let load = DetachedDatapath::load(&layout, 1, None);
    let err = load.err().expect("loading over a foreign layout must fail");
    assert!(
        matches!(
            err,
            Error::LayoutMismatch {
                what: "value size",
                found: 8,
                expected: 4,
                ..
            }
        ),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("value size 8") && msg.contains("expects 4;"), "{msg}");

    let open = FlowTable::open(&layout);
    assert!(
        matches!(open, Err(Error::LayoutMismatch { .. })),
        "readers refuse it too"
    );
}

#[test]
#[ignore = "needs root: loads eBPF into the kernel (misc/test.sh runs it as root)"]
fn the_pin_directory_is_versioned_and_private() {
    let dir = PinDir(PathBuf::from(format!(
        "/sys/fs/bpf/flowctl-test-pins-mode-{}",
        std::process::id()
    )));
    let layout = PinLayout::under(&dir.0);
    assert!(layout.root().ends_with(format!("v{}", flowctl_model::LAYOUT_VERSION)));
    DetachedDatapath::load(&layout, 1, Some(64)).expect("load (run as root)");
    use std::os::unix::fs::PermissionsExt;
    for d in [dir.0.clone(), layout.root().to_path_buf(), layout.links_dir()] {
        assert_eq!(
            std::fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700,
            "{}",
            d.display()
        );
    }
    let maps = [
        layout.flows_map(),
        layout.slots_map(),
        layout.ring_map(),
        layout.ringctl_map(),
        layout.spare_map(),
        layout.front_map(),
        layout.counters_map(),
    ];
    for f in maps {
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600,
            "{}",
            f.display()
        );
    }
    assert_eq!(FlowTable::open(&layout).unwrap().capacity(), 64);
}
