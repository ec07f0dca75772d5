//! The tcx hook (Linux >= 6.6): the classifier as a bpf link, pinned in
//! bpffs so it outlives flowctl, first in the chain of tcx programs unless
//! asked to append.

use std::{
    io,
    mem::size_of,
    os::fd::{AsFd, AsRawFd},
    path::Path,
};

use aya::programs::{
    links::{FdLink, PinnedLink},
    tc::TcAttachOptions,
    LinkOrder, SchedClassifier,
};

use super::{attach_type, Live, Order};
use crate::{
    map_ops::sys::{bpf, cmd, obj_get},
    Direction, Error, Result,
};

/// Attaches `program` to `interface` and pins the link at `pin`.
pub(super) fn attach(
    program: &mut SchedClassifier,
    interface: &str,
    direction: Direction,
    order: Order,
    pin: &Path,
) -> Result<()> {
    let action = || format!("attaching to {interface} ({direction}, tcx)");
    let order = match order {
        Order::First => LinkOrder::first(),
        Order::Last => LinkOrder::last(),
    };
    let id = program
        .attach_with_options(interface, attach_type(direction), TcAttachOptions::TcxOrder(order))
        .map_err(|e| Error::bpf(action(), e))?;
    let link = program.take_link(id).map_err(|e| Error::bpf(action(), e))?;
    let fd_link = FdLink::try_from(link).map_err(|e| Error::bpf(action(), e))?;
    fd_link
        .pin(pin)
        .map_err(|e| Error::bpf(format!("pinning the link at {}", pin.display()), e))?;
    Ok(())
}

/// The state of the link pinned at `pin` for interface `ifindex`: live only
/// if the kernel still has it attached to that very interface. A link whose
/// device was deleted stays pinned but answers ifindex 0 (defunct); a
/// device created again later, even with the same index, is a new device.
pub(super) fn state(pin: &Path, ifindex: u32) -> Option<Live> {
    let link = obj_get(pin).ok()?;
    let info = TcxLinkInfo::of(link.as_fd()).ok()?;
    (info.ifindex == ifindex && ifindex != 0).then_some(Live {
        program_id: info.prog_id,
        link_id: Some(info.id),
    })
}

/// Removes a link pin; the kernel detaches the program when the last
/// reference to the link goes away.
pub(super) fn detach(pin: &Path) -> Result<()> {
    match PinnedLink::from_pin(pin) {
        Ok(link) => link
            .unpin()
            .map(drop)
            .map_err(|e| Error::io(format!("unpinning {}", pin.display()), e)),
        Err(_) => super::remove_pin(pin),
    }
}

/// The head of `struct bpf_link_info` for a tcx link.
#[repr(C)]
#[derive(Debug, Default)]
struct TcxLinkInfo {
    link_type: u32,
    id: u32,
    prog_id: u32,
    _pad: u32,
    /// `tcx.ifindex`: 0 once the device is gone.
    ifindex: u32,
    attach_type: u32,
}

impl TcxLinkInfo {
    fn of(link: std::os::fd::BorrowedFd<'_>) -> io::Result<Self> {
        #[repr(C)]
        struct InfoAttr {
            bpf_fd: u32,
            info_len: u32,
            info: u64,
        }
        let mut info = Self::default();
        let mut attr = InfoAttr {
            bpf_fd: link.as_raw_fd() as u32,
            info_len: size_of::<Self>() as u32,
            info: &mut info as *mut Self as u64,
        };
        bpf(cmd::OBJ_GET_INFO_BY_FD, &mut attr)?;
        Ok(info)
    }
}
