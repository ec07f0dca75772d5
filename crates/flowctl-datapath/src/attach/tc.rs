//! The tc hook (every kernel flowctl supports): the classifier as a
//! direct-action bpf filter under the interface's clsact qdisc, added over
//! netlink. The filter holds the program, not a link: the program is pinned
//! in bpffs (`<ifindex>-<direction>-tc`) so that status and detach find the
//! filter again by the program's id. Filters run by priority, lowest
//! first: flowctl takes priority 1 (first) or 65535 (last).

use std::path::Path;

use aya::programs::{
    tc::{self, NlOptions, TcAttachOptions},
    ProgramInfo, SchedClassifier,
};

use super::{attach_type, Live, Order};
use crate::{
    netlink::tc::{bpf_filters, delete_filter},
    Direction, Error, Result,
};

/// Filter priority when flowctl goes first.
const PRIORITY_FIRST: u16 = 1;
/// Filter priority when flowctl goes last.
const PRIORITY_LAST: u16 = u16::MAX;

/// Adds the clsact qdisc if needed, attaches `program` as a filter of
/// `interface` and pins the program at `pin`.
pub(super) fn attach(
    program: &mut SchedClassifier,
    interface: &str,
    direction: Direction,
    order: Order,
    pin: &Path,
) -> Result<()> {
    let action = || format!("attaching to {interface} ({direction}, tc)");
    match tc::qdisc_add_clsact(interface) {
        Err(tc::TcError::NetlinkError(e)) if e.raw_os_error() == Some(libc::EEXIST) => {}
        Err(e) => return Err(Error::bpf(format!("adding a clsact qdisc to {interface}"), e)),
        Ok(()) => {}
    }
    let priority = match order {
        Order::First => PRIORITY_FIRST,
        Order::Last => PRIORITY_LAST,
    };
    let options = TcAttachOptions::Netlink(NlOptions {
        priority,
        ..Default::default()
    });
    let id = program
        .attach_with_options(interface, attach_type(direction), options)
        .map_err(|e| Error::bpf(action(), e))?;
    program
        .pin(pin)
        .map_err(|e| Error::bpf(format!("pinning the program at {}", pin.display()), e))?;
    // aya removes the filter when its link handle is dropped: the filter
    // must outlive this process, so the handle is let go of.
    let link = program.take_link(id).map_err(|e| Error::bpf(action(), e))?;
    std::mem::forget(link);
    Ok(())
}

/// Id of the program pinned at `pin`.
fn pinned_program_id(pin: &Path) -> Option<u32> {
    ProgramInfo::from_pin(pin).ok().map(|info| info.id())
}

/// The state of the program pinned at `pin`: live if a filter on
/// `direction`'s hook of `ifindex` (in this thread's namespace) runs it.
pub(super) fn state(pin: &Path, ifindex: u32, direction: Direction) -> Option<Live> {
    let program_id = pinned_program_id(pin)?;
    let filters = bpf_filters(ifindex, direction).ok()?;
    filters
        .iter()
        .any(|f| f.program_id == Some(program_id))
        .then_some(Live {
            program_id,
            link_id: None,
        })
}

/// Deletes the filters that run the program pinned at `pin` from
/// `direction`'s hook of `ifindex` (in this thread's namespace), if the
/// interface is still there, then removes the pin.
pub(super) fn detach(pin: &Path, ifindex: u32, direction: Direction) -> Result<()> {
    if let Some(program_id) = pinned_program_id(pin) {
        for filter in bpf_filters(ifindex, direction)?
            .iter()
            .filter(|f| f.program_id == Some(program_id))
        {
            match delete_filter(ifindex, direction, filter) {
                Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => {}
                other => other?,
            }
        }
    }
    super::remove_pin(pin)
}
