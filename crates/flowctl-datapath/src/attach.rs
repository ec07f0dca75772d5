//! Attaching, detaching and listing the classifier (tcx links pinned in bpffs).

use std::{fs, io, mem::size_of, path::Path};

use aya::{
    maps::MapInfo,
    programs::{
        links::{FdLink, PinnedLink},
        SchedClassifier, TcAttachType,
    },
    EbpfLoader,
};
use flowctl_model::{DatapathCounters, FlowKey, FlowSource, FlowStats, COUNTERS_MAP, FLOWS_MAP, NETNS_INO_GLOBAL};

use crate::{
    netlink,
    netns::{self, NetnsGuard},
    Direction, Error, FlowTable, PinLayout, Result, DATAPATH_OBJECT,
};

/// Flow cache size used when nothing is pinned yet and no size is given.
pub const DEFAULT_MAX_FLOWS: u32 = 65536;

/// What to attach where.
#[derive(Clone, Debug)]
pub struct AttachRequest {
    /// Interface name inside `netns`.
    pub interface: String,
    /// Directions to meter.
    pub directions: Vec<Direction>,
    /// `ip netns` name; `None` for the caller's namespace.
    pub netns: Option<String>,
    /// Flow cache size; only used when the cache is created.
    pub max_flows: Option<u32>,
}

/// One pinned attachment of the classifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// Inode of the interface's network namespace.
    pub netns_ino: u32,
    /// Name of that namespace (see [`netns::describe_netns`]).
    pub netns: String,
    /// Interface index in that namespace.
    pub ifindex: u32,
    /// Interface name, if the interface still exists.
    pub interface: Option<String>,
    /// ingress or egress.
    pub direction: Direction,
    /// State of the pinned link.
    pub state: AttachmentState,
}

/// Whether an attachment is live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttachmentState {
    /// Attached now; kernel link and program ids.
    Attached {
        /// BPF link id.
        link_id: u32,
        /// BPF program id.
        program_id: u32,
    },
    /// Just attached by this call.
    NewlyAttached,
    /// Was already attached before this call.
    AlreadyAttached,
    /// Removed by this call.
    Detached,
    /// The link pin exists but its interface or namespace is gone.
    Defunct,
}

/// Everything `flowctl status` shows.
#[derive(Clone, Debug)]
pub struct Status {
    /// Pinned attachments.
    pub attachments: Vec<Attachment>,
    /// Capacity of the flow cache.
    pub max_flows: u32,
    /// Flows in the cache now.
    pub flows: usize,
    /// Datapath counters summed over CPUs.
    pub counters: DatapathCounters,
}

/// Loads the classifier if needed and attaches it to one interface, pinning
/// maps and links so it stays attached after this process exits. Attaching
/// where flowctl is already attached changes nothing (idempotent).
pub fn attach(layout: &PinLayout, req: &AttachRequest) -> Result<Vec<Attachment>> {
    layout.prepare()?;
    check_pinned_maps(layout, req.max_flows)?;
    let _guard = NetnsGuard::enter_optional(req.netns.as_deref())?;
    let netns_ino = netns::current_netns_ino()?;
    let netns_name = netns::describe_netns(netns_ino);
    let ifindex = resolve(&req.interface, &netns_name)?;
    crate::pins::create_private_dir(&layout.links_dir().join(netns_ino.to_string()))?;

    let mut loaded = None;
    let mut out = Vec::new();
    for &direction in &req.directions {
        let pin = layout.link(netns_ino, ifindex, direction);
        let state = if live_link(&pin).is_some() {
            AttachmentState::AlreadyAttached
        } else {
            remove_stale(&pin)?;
            // Loaded once, for the first direction that needs it.
            let mut ebpf = match loaded.take() {
                Some(ebpf) => ebpf,
                None => load_object(layout, netns_ino, req.max_flows)?,
            };
            attach_one(&mut ebpf, &req.interface, direction, &pin)?;
            loaded = Some(ebpf);
            AttachmentState::NewlyAttached
        };
        out.push(Attachment {
            netns_ino,
            netns: netns_name.clone(),
            ifindex,
            interface: Some(req.interface.clone()),
            direction,
            state,
        });
    }
    Ok(out)
}

/// Detaches the classifier from one interface. The flow cache and what it
/// counted stay pinned.
pub fn detach(
    layout: &PinLayout,
    interface: &str,
    directions: &[Direction],
    netns: Option<&str>,
) -> Result<Vec<Attachment>> {
    let _guard = NetnsGuard::enter_optional(netns)?;
    let netns_ino = netns::current_netns_ino()?;
    let netns_name = netns::describe_netns(netns_ino);
    let ifindex = resolve(interface, &netns_name)?;
    let mut out = Vec::new();
    for &direction in directions {
        let pin = layout.link(netns_ino, ifindex, direction);
        if !pin.exists() {
            continue;
        }
        unpin_link(&pin)?;
        out.push(Attachment {
            netns_ino,
            netns: netns_name.clone(),
            ifindex,
            interface: Some(interface.to_string()),
            direction,
            state: AttachmentState::Detached,
        });
    }
    if out.is_empty() {
        let direction = match directions {
            [one] => one.to_string(),
            _ => "any direction".to_string(),
        };
        return Err(Error::NotAttachedTo {
            interface: interface.to_string(),
            direction,
        });
    }
    Ok(out)
}

/// Detaches every pinned attachment; with `purge` also removes the pinned
/// maps (and so every counted flow) and the pin directory.
pub fn detach_all(layout: &PinLayout, purge: bool) -> Result<Vec<Attachment>> {
    let mut out = Vec::new();
    for mut a in list_attachments(layout)? {
        unpin_link(&layout.link(a.netns_ino, a.ifindex, a.direction))?;
        a.state = AttachmentState::Detached;
        out.push(a);
    }
    if purge && layout.root().exists() {
        fs::remove_dir_all(layout.root()).map_err(|e| Error::io(format!("removing {}", layout.root().display()), e))?;
        if let Some(base) = layout.root().parent() {
            // Only removes the base when no other layout version lives there.
            let _ = fs::remove_dir(base);
        }
    }
    Ok(out)
}

/// Attachments, cache fill and datapath counters.
pub fn status(layout: &PinLayout) -> Result<Status> {
    let table = FlowTable::open(layout)?;
    Ok(Status {
        attachments: list_attachments(layout)?,
        max_flows: table.capacity(),
        flows: table.len()?,
        counters: table.counters()?,
    })
}

/// Every pinned attachment, with interface names resolved in their
/// namespace now (an interface that is gone makes its attachment defunct).
/// Cheaper than [`status`]: the flow cache is not read.
pub fn attachments(layout: &PinLayout) -> Result<Vec<Attachment>> {
    list_attachments(layout)
}

fn resolve(interface: &str, netns_name: &str) -> Result<u32> {
    netlink::interface_index(interface).map_err(|e| match e {
        Error::UnknownInterface { name, .. } => Error::UnknownInterface {
            name,
            netns: format!("network namespace {netns_name}"),
        },
        other => other,
    })
}

/// Refuses pinned maps of another layout or another requested size.
fn check_pinned_maps(layout: &PinLayout, max_flows: Option<u32>) -> Result<()> {
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

/// Loads the object with its maps pinned under `layout` (reusing pinned ones).
pub(crate) fn load_object(layout: &PinLayout, netns_ino: u32, max_flows: Option<u32>) -> Result<aya::Ebpf> {
    check_pinned_maps(layout, max_flows)?;
    let flows_pin = layout.flows_map();
    let counters_pin = layout.counters_map();
    EbpfLoader::new()
        .map_pin_path(FLOWS_MAP, flows_pin.as_path())
        .map_pin_path(COUNTERS_MAP, counters_pin.as_path())
        .map_max_entries(FLOWS_MAP, max_flows.unwrap_or(DEFAULT_MAX_FLOWS))
        .override_global(NETNS_INO_GLOBAL, &netns_ino, true)
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

fn attach_one(ebpf: &mut aya::Ebpf, interface: &str, direction: Direction, pin: &Path) -> Result<()> {
    let name = direction.program_name();
    let attach_type = match direction {
        Direction::Ingress => TcAttachType::Ingress,
        Direction::Egress => TcAttachType::Egress,
    };
    let program = classifier_mut(ebpf, direction)?;
    if program.fd().is_err() {
        program.load().map_err(|e| Error::bpf(format!("verifying {name}"), e))?;
    }
    let action = || format!("attaching to {interface} ({direction})");
    let id = program
        .attach(interface, attach_type)
        .map_err(|e| Error::bpf(action(), e))?;
    let link = program.take_link(id).map_err(|e| Error::bpf(action(), e))?;
    let fd_link =
        FdLink::try_from(link).map_err(|e| Error::bpf(format!("{}: tcx needs Linux 6.6 or newer", action()), e))?;
    fd_link
        .pin(pin)
        .map_err(|e| Error::bpf(format!("pinning the link at {}", pin.display()), e))?;
    Ok(())
}

/// The pinned link at `pin` if it exists and the kernel still knows it.
fn live_link(pin: &Path) -> Option<(u32, u32)> {
    let link = PinnedLink::from_pin(pin).ok()?;
    let info = FdLink::from(link).info().ok()?;
    Some((info.id(), info.program_id()))
}

fn remove_stale(pin: &Path) -> Result<()> {
    match fs::remove_file(pin) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(format!("removing {}", pin.display()), e)),
        _ => Ok(()),
    }
}

/// Removes a link pin; the kernel detaches the program when the last
/// reference to the link goes away.
fn unpin_link(pin: &Path) -> Result<()> {
    match PinnedLink::from_pin(pin) {
        Ok(link) => {
            link.unpin()
                .map_err(|e| Error::io(format!("unpinning {}", pin.display()), e))?;
            Ok(())
        }
        Err(_) => remove_stale(pin),
    }
}

/// Every link pin under the layout, with names resolved where possible.
fn list_attachments(layout: &PinLayout) -> Result<Vec<Attachment>> {
    let mut out = Vec::new();
    let Ok(netns_dirs) = fs::read_dir(layout.links_dir()) else {
        return Ok(out);
    };
    for ns_dir in netns_dirs.flatten() {
        let Some(netns_ino) = ns_dir.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let netns_name = netns::describe_netns(netns_ino);
        let names = netlink::interface_names_in(netns_ino);
        let Ok(pins) = fs::read_dir(ns_dir.path()) else {
            continue;
        };
        for pin in pins.flatten() {
            let file = pin.file_name();
            let Some((ifindex, direction)) = file.to_str().and_then(parse_link_pin) else {
                continue;
            };
            let interface = names.as_ref().and_then(|n| n.get(&ifindex).cloned());
            let state = match live_link(&pin.path()) {
                Some((link_id, program_id)) if interface.is_some() => AttachmentState::Attached { link_id, program_id },
                _ => AttachmentState::Defunct,
            };
            out.push(Attachment {
                netns_ino,
                netns: netns_name.clone(),
                ifindex,
                interface,
                direction,
                state,
            });
        }
    }
    out.sort_by(|a, b| (&a.netns, a.ifindex, a.direction).cmp(&(&b.netns, b.ifindex, b.direction)));
    Ok(out)
}

fn parse_link_pin(name: &str) -> Option<(u32, Direction)> {
    let (ifindex, direction) = name.split_once('-')?;
    Some((ifindex.parse().ok()?, direction.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_pin_names_round_trip() {
        let layout = PinLayout::under("/x");
        let pin = layout.link(4026531840, 7, Direction::Egress);
        let version = flowctl_model::LAYOUT_VERSION;
        assert_eq!(pin, Path::new(&format!("/x/v{version}/links/4026531840/7-egress")));
        let name = pin.file_name().unwrap().to_str().unwrap();
        assert_eq!(parse_link_pin(name), Some((7, Direction::Egress)));
        assert_eq!(parse_link_pin("7-sideways"), None);
        assert_eq!(parse_link_pin("x-egress"), None);
    }
}
