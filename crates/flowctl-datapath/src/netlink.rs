//! Interface lookups over rtnetlink, in the calling thread's network namespace.
//!
//! The functions are synchronous: each runs a small current-thread tokio
//! runtime on the calling thread, so the netlink socket is opened in the
//! namespace that thread is in (see [`crate::netns::NetnsGuard`]). Do not call
//! them from inside an async runtime; use `spawn_blocking`.

use std::collections::HashMap;

use futures::TryStreamExt;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};

use crate::{
    netns::{self, NetnsGuard},
    Error, Result,
};

/// Index of the interface called `name`.
pub fn interface_index(name: &str) -> Result<u32> {
    let links = query(Some(name))?;
    links
        .into_iter()
        .next()
        .map(|(index, _)| index)
        .ok_or_else(|| Error::UnknownInterface {
            name: name.to_string(),
            netns: "this network namespace".to_string(),
        })
}

/// Every interface of the namespace: index to name.
pub fn interface_names() -> Result<HashMap<u32, String>> {
    Ok(query(None)?.into_iter().collect())
}

/// Every interface of the namespace with that inode (see
/// [`netns::netns_file`]), `None` if it cannot be found or entered.
pub fn interface_names_in(netns_ino: u32) -> Option<HashMap<u32, String>> {
    if netns::current_netns_ino().ok()? == netns_ino {
        return interface_names().ok();
    }
    let _guard = NetnsGuard::enter_path(&netns::netns_file(netns_ino)?).ok()?;
    interface_names().ok()
}

/// Interface names per namespace, looked up once per namespace.
#[derive(Debug, Default)]
pub struct InterfaceNames {
    by_netns: HashMap<u32, Option<HashMap<u32, String>>>,
}

impl InterfaceNames {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Name of `ifindex` in the namespace with inode `netns_ino`; `None` for
    /// index 0 or an interface that is gone.
    pub fn name(&mut self, netns_ino: u32, ifindex: u32) -> Option<String> {
        if ifindex == 0 {
            return None;
        }
        self.by_netns
            .entry(netns_ino)
            .or_insert_with(|| interface_names_in(netns_ino))
            .as_ref()?
            .get(&ifindex)
            .cloned()
    }
}

fn query(name: Option<&str>) -> Result<Vec<(u32, String)>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the netlink runtime", e))?;
    rt.block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| Error::io("opening rtnetlink", e))?;
        let task = tokio::spawn(conn);
        let mut request = handle.link().get();
        if let Some(name) = name {
            request = request.match_name(name.to_string());
        }
        let result: std::result::Result<Vec<LinkMessage>, rtnetlink::Error> = request.execute().try_collect().await;
        task.abort();
        match result {
            Ok(msgs) => Ok(msgs.iter().map(|m| (m.header.index, link_name(m))).collect()),
            // The kernel answers ENODEV for a name that does not exist.
            Err(rtnetlink::Error::NetlinkError(e)) if name.is_some() && e.raw_code() == -libc::ENODEV => Ok(Vec::new()),
            Err(e) => Err(Error::bpf("listing interfaces over rtnetlink", e)),
        }
    })
}

fn link_name(msg: &LinkMessage) -> String {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        })
        .unwrap_or_default()
}
