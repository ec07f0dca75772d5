//! Loading the classifier object: its maps pinned (and checked against this
//! build's layout), its per-attachment globals set.

use std::{fs, io, mem::size_of, path::Path};

use aya::{maps::MapInfo, programs::SchedClassifier, EbpfLoader};
use flowctl_model::{
    front_array_entries, DatapathCounters, FlowKey, FlowSlot, FrontEntry, RingPair, Sampler, Sampling, SlotRing,
    SpareSlot, COUNTERS_MAP, FLOWS_MAP, FRONT_MAP, NETNS_INO_GLOBAL, RAW_IP_GLOBAL, RINGCTL_MAP, RING_MAP, SAMPLER_MAP,
    SAMPLE_INTERVAL_GLOBAL, SAMPLE_THRESHOLD_GLOBAL, SAMPLING_GLOBAL, SAMPLING_TAG_GLOBAL, SLOTS_MAP, SPARE_MAP,
};

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
    let u32_key = size_of::<u32>();
    for (path, value) in [
        (layout.slots_map(), size_of::<FlowSlot>()),
        (layout.ring_map(), size_of::<RingPair>()),
        (layout.ringctl_map(), size_of::<SlotRing>()),
        (layout.spare_map(), size_of::<SpareSlot>()),
        (layout.front_map(), size_of::<FrontEntry>()),
        (layout.counters_map(), size_of::<DatapathCounters>()),
    ] {
        checked_map_info(&path, u32_key, value)?;
    }
    Ok(())
}

/// Kernel info of the pinned flow cache, checked against this build's layout.
pub(crate) fn pinned_flows_map(layout: &PinLayout) -> Result<Option<MapInfo>> {
    checked_map_info(&layout.flows_map(), size_of::<FlowKey>(), size_of::<u32>())
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
/// for an interface of `kind` in the namespace `netns_ino`, selecting
/// packets as `sampling` says.
pub(crate) fn load_object(
    layout: &PinLayout,
    netns_ino: u32,
    max_flows: Option<u32>,
    kind: LinkKind,
    sampling: Sampling,
) -> Result<aya::Ebpf> {
    check_pinned_maps(layout, max_flows)?;
    let cpus = crate::map_ops::possible_cpus().map_err(|e| Error::io("counting the possible CPUs", e))?;
    if pinned_flows_map(layout)?.is_none() {
        crate::cache_memory::check(max_flows.unwrap_or(DEFAULT_MAX_FLOWS), cpus)?;
    }
    let max_flows = max_flows.unwrap_or(DEFAULT_MAX_FLOWS);
    let pins = [
        (FLOWS_MAP, layout.flows_map()),
        (SLOTS_MAP, layout.slots_map()),
        (RING_MAP, layout.ring_map()),
        (RINGCTL_MAP, layout.ringctl_map()),
        (SPARE_MAP, layout.spare_map()),
        (FRONT_MAP, layout.front_map()),
        (COUNTERS_MAP, layout.counters_map()),
    ];
    let mut loader = EbpfLoader::new();
    for (name, pin) in &pins {
        loader.map_pin_path(name, pin.as_path());
    }
    let mut ebpf = loader
        .map_max_entries(FLOWS_MAP, max_flows)
        .map_max_entries(SLOTS_MAP, max_flows)
        .map_max_entries(RING_MAP, ring_pairs(max_flows))
        .map_max_entries(FRONT_MAP, front_array_entries(cpus))
        .override_global(NETNS_INO_GLOBAL, &netns_ino, true)
        .override_global(RAW_IP_GLOBAL, &u8::from(kind == LinkKind::RawIp), true)
        .override_global(SAMPLE_INTERVAL_GLOBAL, &sampling.interval, true)
        .override_global(SAMPLE_THRESHOLD_GLOBAL, &sampling.threshold(), true)
        .override_global(SAMPLING_GLOBAL, &sampling.word(), true)
        .override_global(SAMPLING_TAG_GLOBAL, &sampling.tag(), true)
        .load(DATAPATH_OBJECT)
        .map_err(|e| Error::bpf("loading the eBPF datapath", e))?;
    fill_ring(&ebpf)?;
    note_sampling(&mut ebpf, sampling)?;
    Ok(ebpf)
}

/// Writes the sampling into every CPU's element of the object's private
/// sampler map, where [`program_sampling`] reads it back for `flowctl status`
/// and for attach to tell whether an attachment has the rate asked for.
fn note_sampling(ebpf: &mut aya::Ebpf, sampling: Sampling) -> Result<()> {
    let map = ebpf.map_mut(SAMPLER_MAP).ok_or_else(|| Error::Bpf {
        action: "loading".into(),
        message: format!("map {SAMPLER_MAP} missing from the object"),
    })?;
    let mut array: aya::maps::PerCpuArray<&mut aya::maps::MapData, Sampler> =
        aya::maps::PerCpuArray::try_from(map).map_err(|e| Error::bpf(format!("map {SAMPLER_MAP}"), e))?;
    let cpus = crate::map_ops::possible_cpus().map_err(|e| Error::io("counting the possible CPUs", e))?;
    let value = Sampler {
        count: 0,
        sampling: sampling.word(),
    };
    let values = aya::maps::PerCpuValues::try_from(vec![value; cpus])
        .map_err(|e| Error::io("sizing the sampler's per-CPU values", e))?;
    array
        .set(0, values, 0)
        .map_err(|e| Error::bpf(format!("writing {SAMPLER_MAP}"), e))
}

/// The sampling of a loaded program (by id), from its private sampler map;
/// `None` when the program has no such map (or it cannot be read).
pub(crate) fn program_sampling(program_id: u32) -> Option<Sampling> {
    let info = aya::programs::loaded_programs()
        .flatten()
        .find(|p| p.id() == program_id)?;
    for map_id in info.map_ids().ok()?.unwrap_or_default() {
        let Ok(data) = aya::maps::MapData::from_id(map_id) else {
            continue;
        };
        let Ok(map_info) = data.info() else {
            continue;
        };
        if map_info.name_as_str() != Some(SAMPLER_MAP) {
            continue;
        }
        let array: aya::maps::PerCpuArray<aya::maps::MapData, Sampler> =
            aya::maps::PerCpuArray::try_from(aya::maps::Map::PerCpuArray(data)).ok()?;
        let values = array.get(&0, 0).ok()?;
        return values.iter().next().map(|v| Sampling::from_word(v.sampling));
    }
    None
}

/// Elements of the ring of free slots for a cache of `max_flows`: two
/// positions each, a power of two of them, at least `max_flows`.
fn ring_pairs(max_flows: u32) -> u32 {
    max_flows.max(2).next_power_of_two() / 2
}

/// Puts every slot on the ring of a cache just created (a no-op for one
/// that was pinned already): done by every load here; public for tools
/// that load [`crate::DATAPATH_OBJECT`] themselves, with private maps.
pub fn fill_ring(ebpf: &aya::Ebpf) -> Result<()> {
    use std::os::fd::AsFd;
    let fd = |name: &str| -> Result<std::os::fd::BorrowedFd<'_>> {
        let map = ebpf.map(name).ok_or_else(|| Error::Bpf {
            action: "loading".into(),
            message: format!("map {name} missing from the object"),
        })?;
        let data: &aya::maps::MapData = match map {
            aya::maps::Map::Array(d) | aya::maps::Map::HashMap(d) | aya::maps::Map::PerCpuArray(d) => d,
            _ => {
                return Err(Error::Bpf {
                    action: "loading".into(),
                    message: format!("map {name} has an unexpected type"),
                })
            }
        };
        Ok(data.fd().as_fd())
    };
    fn mapped<T>(fd: Result<std::os::fd::BorrowedFd<'_>>, name: &str) -> Result<crate::map_ops::MappedArray<T>> {
        fd.and_then(|f| crate::map_ops::MappedArray::new(f).map_err(|e| Error::io(format!("mapping {name}"), e)))
    }
    let slots: crate::map_ops::MappedArray<FlowSlot> = mapped(fd(SLOTS_MAP), SLOTS_MAP)?;
    let ring = crate::flow_table::FreeRing {
        pairs: mapped(fd(RING_MAP), RING_MAP)?,
        ctl: mapped(fd(RINGCTL_MAP), RINGCTL_MAP)?,
    };
    ring.fill_once(slots.len() as u32);
    Ok(())
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
