//! Attaching, detaching and listing the classifier.
//!
//! Each attach loads one program instance per interface (its namespace
//! inode and link kind are set in it at load time) for both directions; the
//! maps are shared, pinned once. Two hooks:
//!
//! - **tcx** (Linux >= 6.6, [`tcx`]): a bpf link pinned at
//!   `links/<netns>/<ifindex>-<direction>`, first in the interface's chain
//!   of tcx programs unless asked to append;
//! - **tc** (every kernel flowctl supports, [`tc`]): a direct-action bpf
//!   filter under a clsact qdisc, the program pinned at
//!   `links/<netns>/<ifindex>-<direction>-tc`.
//!
//! [`AttachMode::Auto`] takes tcx where the kernel has it. Both stay attached
//! after flowctl exits and are found again by their pins, so attach is
//! idempotent. An attachment whose interface is gone (deleted, or deleted
//! and created again under the same index in a new namespace) is stale:
//! status shows it defunct, attach replaces it.

mod load;
mod tc;
mod tcx;

use std::{collections::HashMap, fmt, fs, io, path::Path, str::FromStr};

use aya::{programs::TcAttachType, util::KernelVersion};
use flowctl_model::{DatapathCounters, FlowSource, Sampling};

pub use load::fill_ring;
pub(crate) use load::{classifier_mut, load_object, pinned_flows_map, program_sampling};

use crate::{
    netlink::{self, Interface},
    netns::{self, NetnsGuard},
    Direction, Error, FlowTable, PinLayout, Result,
};

/// Flow cache size used when nothing is pinned yet and no size is given.
pub const DEFAULT_MAX_FLOWS: u32 = 65536;

/// How to hook the classifier into tc, as asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AttachMode {
    /// tcx where the kernel has it (Linux >= 6.6), else tc.
    #[default]
    Auto,
    /// tcx only.
    Tcx,
    /// A tc filter under a clsact qdisc.
    Tc,
}

/// The hook an attachment uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    /// A tcx link.
    Tcx,
    /// A direct-action filter under clsact.
    Tc,
}

/// Where in the interface's chain of programs the classifier goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Order {
    /// Before every other program (tcx first; tc priority 1), so a program
    /// that ends processing (TC_ACT_OK, SHOT, REDIRECT) hides nothing.
    #[default]
    First,
    /// After the others (tcx last; tc priority 65535).
    Last,
}

impl AttachMode {
    /// The hook this mode uses on this kernel.
    pub fn hook(self) -> Result<Hook> {
        match self {
            AttachMode::Auto if tcx_available() => Ok(Hook::Tcx),
            AttachMode::Auto | AttachMode::Tc => Ok(Hook::Tc),
            AttachMode::Tcx if tcx_available() => Ok(Hook::Tcx),
            AttachMode::Tcx => Err(Error::TcxUnavailable {
                kernel: KernelVersion::current().map_or_else(|_| "unknown".into(), |v| format!("{v:?}")),
            }),
        }
    }
}

/// Whether the kernel has tcx (Linux 6.6), as aya decides it.
fn tcx_available() -> bool {
    KernelVersion::current().is_ok_and(|v| v >= KernelVersion::new(6, 6, 0))
}

macro_rules! names {
    ($ty:ty, $what:literal, $($variant:path => $name:literal),+) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $($variant => $name),+ })
            }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($name => Ok($variant),)+
                    other => Err(format!(concat!("unknown ", $what, " {:?} (expected {})"), other, [$($name),+].join(", "))),
                }
            }
        }
    };
}
names!(AttachMode, "attach mode", AttachMode::Auto => "auto", AttachMode::Tcx => "tcx", AttachMode::Tc => "tc");
names!(Hook, "hook", Hook::Tcx => "tcx", Hook::Tc => "tc");
names!(Order, "order", Order::First => "first", Order::Last => "last");

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
    /// Which hook.
    pub mode: AttachMode,
    /// Where in the chain.
    pub order: Order,
    /// Which packets are metered. An attachment there with another
    /// sampling is replaced.
    pub sampling: Sampling,
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
    /// The hook it uses.
    pub hook: Hook,
    /// Which packets it meters; `None` when that cannot be read (defunct).
    pub sampling: Option<Sampling>,
    /// Its state.
    pub state: AttachmentState,
}

/// Whether an attachment is live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttachmentState {
    /// Attached now.
    Attached {
        /// BPF program id.
        program_id: u32,
        /// BPF link id (tcx only).
        link_id: Option<u32>,
    },
    /// Just attached by this call.
    NewlyAttached,
    /// Was already attached before this call.
    AlreadyAttached,
    /// Removed by this call.
    Detached,
    /// Pinned, but its interface or namespace is gone.
    Defunct,
}

/// The kernel objects of a live attachment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Live {
    program_id: u32,
    link_id: Option<u32>,
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

fn attach_type(direction: Direction) -> TcAttachType {
    match direction {
        Direction::Ingress => TcAttachType::Ingress,
        Direction::Egress => TcAttachType::Egress,
    }
}

/// Where the attachment of `hook` on one interface and direction is pinned.
fn pin_path(layout: &PinLayout, netns_ino: u32, ifindex: u32, direction: Direction, hook: Hook) -> std::path::PathBuf {
    let link = layout.link(netns_ino, ifindex, direction);
    match hook {
        Hook::Tcx => link,
        // bpffs refuses names with dots.
        Hook::Tc => {
            let mut name = link.into_os_string();
            name.push("-tc");
            name.into()
        }
    }
}

/// The pinned attachment of one interface and direction, if any, with its
/// state (`None`: stale). Run in the attachment's namespace.
fn pinned(layout: &PinLayout, netns_ino: u32, ifindex: u32, direction: Direction) -> Option<(Hook, Option<Live>)> {
    [Hook::Tcx, Hook::Tc].into_iter().find_map(|hook| {
        let pin = pin_path(layout, netns_ino, ifindex, direction, hook);
        pin.exists().then(|| (hook, live(&pin, ifindex, direction, hook)))
    })
}

fn live(pin: &Path, ifindex: u32, direction: Direction, hook: Hook) -> Option<Live> {
    match hook {
        Hook::Tcx => tcx::state(pin, ifindex),
        Hook::Tc => tc::state(pin, ifindex, direction),
    }
}

/// Removes an attachment and its pin. Run in the attachment's namespace
/// (tc filters are deleted over netlink there).
fn remove(pin: &Path, ifindex: u32, direction: Direction, hook: Hook) -> Result<()> {
    match hook {
        Hook::Tcx => tcx::detach(pin),
        Hook::Tc => tc::detach(pin, ifindex, direction),
    }
}

fn remove_pin(pin: &Path) -> Result<()> {
    match fs::remove_file(pin) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(format!("removing {}", pin.display()), e)),
        _ => Ok(()),
    }
}

/// Loads the classifier if needed and attaches it to one interface, pinning
/// maps and the attachment so it stays after this process exits. Attaching
/// where flowctl is attached and live changes nothing (idempotent); a stale
/// attachment there is replaced.
pub fn attach(layout: &PinLayout, req: &AttachRequest) -> Result<Vec<Attachment>> {
    crate::kernel::check()?;
    layout.prepare()?;
    load::check_pinned_maps(layout, req.max_flows)?;
    let _guard = NetnsGuard::enter_optional(req.netns.as_deref())?;
    let netns_ino = netns::current_netns_ino()?;
    let netns_name = netns::describe_netns(netns_ino);
    let iface = resolve(&req.interface, &netns_name)?;
    crate::pins::create_private_dir(&layout.links_dir().join(netns_ino.to_string()))?;

    let mut loaded = None;
    let mut out = Vec::new();
    for &direction in &req.directions {
        let found = pinned(layout, netns_ino, iface.ifindex, direction);
        let (hook, state) = match found {
            Some((hook, Some(live))) if same_sampling(program_sampling(live.program_id), req.sampling) => {
                (hook, AttachmentState::AlreadyAttached)
            }
            other => {
                if let Some((hook, live)) = other {
                    let pin = pin_path(layout, netns_ino, iface.ifindex, direction, hook);
                    match live {
                        None => log::info!("replacing the stale attachment {}", pin.display()),
                        Some(l) => log::info!(
                            "replacing the attachment {} ({}) for sampling {}",
                            pin.display(),
                            program_sampling(l.program_id).map_or("unknown".into(), |s| s.to_string()),
                            req.sampling
                        ),
                    }
                    remove(&pin, iface.ifindex, direction, hook)?;
                }
                let hook = req.mode.hook()?;
                // Loaded once, for the first direction that needs it.
                let mut ebpf = match loaded.take() {
                    Some(ebpf) => ebpf,
                    None => load_object(layout, netns_ino, req.max_flows, iface.kind, req.sampling)?,
                };
                let program = classifier_mut(&mut ebpf, direction)?;
                if program.fd().is_err() {
                    let name = direction.program_name();
                    program.load().map_err(|e| Error::program_load(name, e))?;
                }
                let pin = pin_path(layout, netns_ino, iface.ifindex, direction, hook);
                match hook {
                    Hook::Tcx => tcx::attach(program, &req.interface, direction, req.order, &pin)?,
                    Hook::Tc => tc::attach(program, &req.interface, direction, req.order, &pin)?,
                }
                loaded = Some(ebpf);
                (hook, AttachmentState::NewlyAttached)
            }
        };
        out.push(Attachment {
            netns_ino,
            netns: netns_name.clone(),
            ifindex: iface.ifindex,
            interface: Some(req.interface.clone()),
            direction,
            hook,
            sampling: Some(req.sampling),
            state,
        });
    }
    Ok(out)
}

/// Whether an attachment's sampling (`None`: unreadable, so a program
/// older than sampling, which meters every packet) is `wanted`.
fn same_sampling(found: Option<Sampling>, wanted: Sampling) -> bool {
    let found = found.unwrap_or(Sampling::NONE);
    found.word() == wanted.word()
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
    let ifindex = netlink::interface_index(interface).map_err(|e| in_netns(e, &netns_name))?;
    let mut out = Vec::new();
    for &direction in directions {
        let Some((hook, _)) = pinned(layout, netns_ino, ifindex, direction) else {
            continue;
        };
        remove(
            &pin_path(layout, netns_ino, ifindex, direction, hook),
            ifindex,
            direction,
            hook,
        )?;
        out.push(Attachment {
            netns_ino,
            netns: netns_name.clone(),
            ifindex,
            interface: Some(interface.to_string()),
            direction,
            hook,
            sampling: None,
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
    each_attachment(layout, |pin, mut a| {
        remove(pin, a.ifindex, a.direction, a.hook)?;
        a.state = AttachmentState::Detached;
        out.push(a);
        Ok(())
    })?;
    if purge && layout.root().exists() {
        fs::remove_dir_all(layout.root()).map_err(|e| Error::io(format!("removing {}", layout.root().display()), e))?;
        if let Some(base) = layout.root().parent() {
            // Only removes the base when no other layout version lives there.
            let _ = fs::remove_dir(base);
        }
    }
    out.sort_by(|a, b| (&a.netns, a.ifindex, a.direction).cmp(&(&b.netns, b.ifindex, b.direction)));
    Ok(out)
}

/// Removes one attachment (as [`attachments`] lists it) and its pin: the
/// agent's cleanup after its interface went away.
pub fn remove_attachment(layout: &PinLayout, a: &Attachment) -> Result<()> {
    let _guard = enter_netns(a.netns_ino);
    remove(
        &pin_path(layout, a.netns_ino, a.ifindex, a.direction, a.hook),
        a.ifindex,
        a.direction,
        a.hook,
    )
}

/// Attachments, cache fill and datapath counters.
pub fn status(layout: &PinLayout) -> Result<Status> {
    let table = FlowTable::open(layout)?;
    Ok(Status {
        attachments: attachments(layout)?,
        max_flows: table.capacity(),
        flows: table.len()?,
        counters: table.counters()?,
    })
}

/// Every pinned attachment, with interface names resolved in their
/// namespace now (an attachment whose interface is gone is defunct).
/// Cheaper than [`status`]: the flow cache is not read.
pub fn attachments(layout: &PinLayout) -> Result<Vec<Attachment>> {
    let mut out = Vec::new();
    each_attachment(layout, |_, a| {
        out.push(a);
        Ok(())
    })?;
    out.sort_by(|a, b| (&a.netns, a.ifindex, a.direction).cmp(&(&b.netns, b.ifindex, b.direction)));
    Ok(out)
}

/// Visits every attachment pin under `layout` with its attachment as it is
/// now, from inside its network namespace (entered once per namespace; a
/// namespace that is gone leaves its attachments defunct).
fn each_attachment(layout: &PinLayout, mut visit: impl FnMut(&Path, Attachment) -> Result<()>) -> Result<()> {
    let Ok(netns_dirs) = fs::read_dir(layout.links_dir()) else {
        return Ok(());
    };
    for ns_dir in netns_dirs.flatten() {
        let Some(netns_ino) = ns_dir.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let netns_name = netns::describe_netns(netns_ino);
        let guard = enter_netns(netns_ino);
        let names: Option<HashMap<u32, String>> = match &guard {
            Some(_) => netlink::interface_names().ok(),
            None => None,
        };
        let Ok(pins) = fs::read_dir(ns_dir.path()) else {
            continue;
        };
        for pin in pins.flatten() {
            let file = pin.file_name();
            let Some((ifindex, direction, hook)) = file.to_str().and_then(parse_pin_name) else {
                continue;
            };
            let interface = names.as_ref().and_then(|n| n.get(&ifindex).cloned());
            let live = interface
                .as_ref()
                .and_then(|_| live(&pin.path(), ifindex, direction, hook));
            let sampling = live.map(|l| program_sampling(l.program_id).unwrap_or(Sampling::NONE));
            let state = match live {
                Some(l) => AttachmentState::Attached {
                    program_id: l.program_id,
                    link_id: l.link_id,
                },
                None => AttachmentState::Defunct,
            };
            let attachment = Attachment {
                netns_ino,
                netns: netns_name.clone(),
                ifindex,
                interface,
                direction,
                hook,
                sampling,
                state,
            };
            visit(&pin.path(), attachment)?;
        }
        drop(guard);
    }
    Ok(())
}

/// Enters the namespace of inode `netns_ino` for the current thread;
/// `Some(None)` when the thread is in it already, `None` when it is gone
/// or cannot be entered.
fn enter_netns(netns_ino: u32) -> Option<Option<NetnsGuard>> {
    if netns::current_netns_ino().ok()? == netns_ino {
        return Some(None);
    }
    NetnsGuard::enter_path(&netns::netns_file(netns_ino)?).ok().map(Some)
}

fn resolve(interface: &str, netns_name: &str) -> Result<Interface> {
    netlink::interface(interface).map_err(|e| in_netns(e, netns_name))
}

/// Names the namespace in an unknown-interface error.
fn in_netns(e: Error, netns_name: &str) -> Error {
    match e {
        Error::UnknownInterface { name, .. } => Error::UnknownInterface {
            name,
            netns: format!("network namespace {netns_name}"),
        },
        other => other,
    }
}

/// `<ifindex>-<direction>` (tcx link) or `<ifindex>-<direction>-tc` (tc program).
fn parse_pin_name(name: &str) -> Option<(u32, Direction, Hook)> {
    let (name, hook) = match name.strip_suffix("-tc") {
        Some(n) => (n, Hook::Tc),
        None => (name, Hook::Tcx),
    };
    let (ifindex, direction) = name.split_once('-')?;
    Some((ifindex.parse().ok()?, direction.parse().ok()?, hook))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_names_round_trip() {
        let layout = PinLayout::under("/x");
        let version = flowctl_model::LAYOUT_VERSION;
        for (hook, suffix) in [(Hook::Tcx, ""), (Hook::Tc, "-tc")] {
            let pin = pin_path(&layout, 4026531840, 7, Direction::Egress, hook);
            assert_eq!(
                pin,
                Path::new(&format!("/x/v{version}/links/4026531840/7-egress{suffix}"))
            );
            let name = pin.file_name().unwrap().to_str().unwrap();
            assert_eq!(parse_pin_name(name), Some((7, Direction::Egress, hook)));
        }
        assert_eq!(parse_pin_name("7-sideways"), None);
        assert_eq!(parse_pin_name("x-egress"), None);
    }

    #[test]
    fn modes_and_orders_parse_and_print() {
        for m in [AttachMode::Auto, AttachMode::Tcx, AttachMode::Tc] {
            assert_eq!(m.to_string().parse::<AttachMode>(), Ok(m));
        }
        assert_eq!("last".parse::<Order>(), Ok(Order::Last));
        assert_eq!(
            "xdp".parse::<AttachMode>().unwrap_err(),
            "unknown attach mode \"xdp\" (expected auto, tcx, tc)"
        );
        assert_eq!(AttachMode::Tc.hook().unwrap(), Hook::Tc);
    }
}
