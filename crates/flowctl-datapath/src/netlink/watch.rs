//! Interface events (RTNLGRP_LINK: an interface appears, is renamed, changes
//! its alias or goes away), as the kernel announces them over rtnetlink in
//! one network namespace.

use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::{
    netns::{self, NetnsGuard},
    Error, Result,
};

/// The rtnetlink multicast group of link events.
const RTMGRP_LINK: u32 = 1;

/// Subscribes to the link events of the namespace with inode `netns_ino` and
/// calls `changed` on a thread of its own after each one, until it returns
/// false. The subscription is made before this returns, so no event after
/// it is missed. The socket keeps the namespace alive while it is open.
pub fn watch_links(netns_ino: u32, mut changed: impl FnMut() -> bool + Send + 'static) -> Result<()> {
    let socket = subscribe(netns_ino)?;
    std::thread::Builder::new()
        .name(format!("links-{netns_ino}"))
        .spawn(move || {
            let mut buf = Vec::with_capacity(64 * 1024);
            loop {
                buf.clear();
                match socket.recv(&mut buf, 0) {
                    Ok(_) => {
                        if !changed() {
                            return;
                        }
                    }
                    // ENOBUFS: events were lost; the caller reads the whole state again.
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        if !changed() {
                            return;
                        }
                    }
                    Err(e) => {
                        log::warn!("watching the interfaces of netns {netns_ino}: {e}");
                        return;
                    }
                }
            }
        })
        .map_err(|e| Error::io("starting the interface watch", e))?;
    Ok(())
}

/// A netlink socket in the namespace, member of the link events group.
fn subscribe(netns_ino: u32) -> Result<Socket> {
    let _guard = if netns::current_netns_ino()? == netns_ino {
        None
    } else {
        let file = netns::netns_file(netns_ino).ok_or_else(|| Error::UnknownNetns(format!("netns:{netns_ino}")))?;
        Some(NetnsGuard::enter_path(&file)?)
    };
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| Error::io("opening rtnetlink", e))?;
    socket
        .bind(&SocketAddr::new(0, RTMGRP_LINK))
        .map_err(|e| Error::io("joining the rtnetlink link group", e))?;
    Ok(socket)
}
