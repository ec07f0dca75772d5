//! Loading the classifier object: its maps pinned (and checked against this
//! build's layout), its per-attachment globals set.

use std::{fs, io, mem::size_of, path::Path};

use aya::{maps::MapInfo, programs::SchedClassifier, EbpfLoader};
use flowctl_model::{DatapathCounters, FlowKey, FlowStats, COUNTERS_MAP, FLOWS_MAP, NETNS_INO_GLOBAL, RAW_IP_GLOBAL};

use super::DEFAULT_MAX_FLOWS;
use crate::{netlink::LinkKind, Direction, Error, PinLayout, Result, DATAPATH_OBJECT};

/// Refuses pinned maps of another layout or another requested size.
pub(crate) fn check_pinned_maps(layout: &PinLayout, max_flows: Option<u32>) -> Result<()> {
    if let Some(info) = pinned_flows_map(layout)? {
        if let Some(requested) = max_flows.filter(|&m| m != info.max_entries()) {
            return Err(Error::MaxFlowsMismatch {
                found: info.max_entries(),
                requested,
            });
        }
    }
    checked_map_info(&layout.counters_map(), size_of::<u32>(), size_of::<DatapathCounters>())?;
    Ok(())
}

/// Kernel info of the pinned flow cache, checked against this build's layout.
pub(crate) fn pinned_flows_map(layout: &PinLayout) -> Result<Option<MapInfo>> {
    checked_map_info(&layout.flows_map(), size_of::<FlowKey>(), size_of::<FlowStats>())
}

/// Kernel info of a pinned map, refusing one whose key or value size is not
/// this build's; `None` if nothing is pinned there.
fn checked_map_info(path: &Path, key_size: usize, value_size: usize) -> Result<Option<MapInfo>> {
    let Some(info) = pinned_map_info(path)? else {
        return Ok(None);
    };
    for (what, found, expected) in [
        ("key size", info.key_size(), key_size as u32),
        ("value size", info.value_size(), value_size as u32),
    ] {
        if found != expected {
            return Err(Error::LayoutMismatch {
                path: path.to_path_buf(),
                what,
                found,
                expected,
            });
        }
    }
    Ok(Some(info))
}

/// Kernel info of a pinned map, `None` if nothing is pinned there.
fn pinned_map_info(path: &Path) -> Result<Option<MapInfo>> {
    match fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        Ok(_) => {}
    }
    MapInfo::from_pin(path)
        .map(Some)
        .map_err(|e| Error::bpf(format!("reading pinned map {}", path.display()), e))
}

/// Loads the object with its maps pinned under `layout` (reusing pinned ones)
/// for an interface of `kind` in the namespace `netns_ino`.
pub(crate) fn load_object(
    layout: &PinLayout,
    netns_ino: u32,
    max_flows: Option<u32>,
    kind: LinkKind,
) -> Result<aya::Ebpf> {
    check_pinned_maps(layout, max_flows)?;
    if pinned_flows_map(layout)?.is_none() {
        let cpus = crate::map_ops::possible_cpus().map_err(|e| Error::io("counting the possible CPUs", e))?;
        crate::cache_memory::check(max_flows.unwrap_or(DEFAULT_MAX_FLOWS), cpus)?;
    }
    let flows_pin = layout.flows_map();
    let counters_pin = layout.counters_map();
    EbpfLoader::new()
        .map_pin_path(FLOWS_MAP, flows_pin.as_path())
        .map_pin_path(COUNTERS_MAP, counters_pin.as_path())
        .map_max_entries(FLOWS_MAP, max_flows.unwrap_or(DEFAULT_MAX_FLOWS))
        .override_global(NETNS_INO_GLOBAL, &netns_ino, true)
        .override_global(RAW_IP_GLOBAL, &u8::from(kind == LinkKind::RawIp), true)
        .load(DATAPATH_OBJECT)
        .map_err(|e| Error::bpf("loading the eBPF datapath", e))
}

/// The classifier of `direction` in a loaded object.
pub(crate) fn classifier_mut(ebpf: &mut aya::Ebpf, direction: Direction) -> Result<&mut SchedClassifier> {
    let name = direction.program_name();
    ebpf.program_mut(name)
        .ok_or_else(|| Error::Bpf {
            action: "loading".into(),
            message: format!("program {name} missing from the object"),
        })?
        .try_into()
        .map_err(|e| Error::bpf(format!("program {name}"), e))
}
