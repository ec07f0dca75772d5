//! rtnetlink in the calling thread's network namespace: interfaces (index,
//! name, link type) here, tc filters in [`tc`].
//!
//! The functions are synchronous: each runs a small current-thread tokio
//! runtime on the calling thread, so the netlink socket is opened in the
//! namespace that thread is in (see [`crate::netns::NetnsGuard`]). Do not call
//! them from inside an async runtime; use `spawn_blocking`.

pub mod tc;
pub mod watch;

use std::{collections::HashMap, future::Future};

use futures::TryStreamExt;
use netlink_packet_route::link::{LinkAttribute, LinkLayerType, LinkMessage};
use rtnetlink::Handle;

use crate::{
    netns::{self, NetnsGuard},
    Error, Result,
};

/// How packets start on an interface, which decides where the classifier
/// finds the IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    /// An Ethernet header first (Ethernet, veth, bridges, VLAN devices,
    /// VXLAN, loopback, gretap...).
    Ethernet,
    /// The IP header first: the device has no link-layer header (tun,
    /// WireGuard, ipip, sit, ip6tnl, point-to-point gre, ppp, raw-IP modems).
    RawIp,
}

impl LinkKind {
    /// The kind of a device of ARPHRD link type `link_type`; `None` for
    /// link types whose packets flowctl cannot parse.
    pub fn of(link_type: LinkLayerType) -> Option<Self> {
        use LinkLayerType as L;
        match link_type {
            L::Ether | L::Loopback => Some(LinkKind::Ethernet),
            L::None | L::Tunnel | L::Tunnel6 | L::Sit | L::Ipgre | L::Ip6gre | L::Ppp | L::Rawip => {
                Some(LinkKind::RawIp)
            }
            _ => None,
        }
    }
}

/// An interface: its index and how its packets start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Interface index.
    pub ifindex: u32,
    /// Where packets start.
    pub kind: LinkKind,
}

/// The interface called `name`: refuses one whose link type flowctl cannot
/// parse, naming it.
pub fn interface(name: &str) -> Result<Interface> {
    let link = query(Some(name))?
        .into_iter()
        .next()
        .ok_or_else(|| Error::UnknownInterface {
            name: name.to_string(),
            netns: "this network namespace".to_string(),
        })?;
    let link_type = link.header.link_layer_type;
    let kind = LinkKind::of(link_type).ok_or_else(|| Error::UnsupportedLinkType {
        interface: name.to_string(),
        link_type: format!("{link_type:?}").to_lowercase(),
    })?;
    Ok(Interface {
        ifindex: link.header.index,
        kind,
    })
}

/// Index of the interface called `name`.
pub fn interface_index(name: &str) -> Result<u32> {
    let links = query(Some(name))?;
    links
        .first()
        .map(|m| m.header.index)
        .ok_or_else(|| Error::UnknownInterface {
            name: name.to_string(),
            netns: "this network namespace".to_string(),
        })
}

/// Every interface of the namespace: index to name.
pub fn interface_names() -> Result<HashMap<u32, String>> {
    Ok(query(None)?.iter().map(|m| (m.header.index, link_name(m))).collect())
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

/// An interface's name and alias (`ip link set DEV alias TEXT`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkNames {
    /// The kernel's name.
    pub name: String,
    /// The alias, if one is set.
    pub alias: Option<String>,
}

/// Every interface of the namespace with that inode: index to name and
/// alias; `None` if the namespace cannot be found or entered.
pub fn link_names_in(netns_ino: u32) -> Option<HashMap<u32, LinkNames>> {
    let _guard = if netns::current_netns_ino().ok()? == netns_ino {
        None
    } else {
        Some(NetnsGuard::enter_path(&netns::netns_file(netns_ino)?).ok()?)
    };
    let links = query(None).ok()?;
    Some(
        links
            .iter()
            .map(|m| {
                let alias = m.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfAlias(s) if !s.is_empty() => Some(s.clone()),
                    _ => None,
                });
                (
                    m.header.index,
                    LinkNames {
                        name: link_name(m),
                        alias,
                    },
                )
            })
            .collect(),
    )
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

/// Runs `request` with an rtnetlink handle opened in this thread's
/// namespace, on a runtime of its own.
pub(crate) fn with_handle<T, F>(request: impl FnOnce(Handle) -> F) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the netlink runtime", e))?;
    rt.block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection().map_err(|e| Error::io("opening rtnetlink", e))?;
        let task = tokio::spawn(conn);
        let result = request(handle).await;
        task.abort();
        result
    })
}

/// The link messages of interface `name`, or of every interface.
fn query(name: Option<&str>) -> Result<Vec<LinkMessage>> {
    with_handle(|handle| async move {
        let mut request = handle.link().get();
        if let Some(name) = name {
            request = request.match_name(name.to_string());
        }
        match request.execute().try_collect().await {
            Ok(msgs) => Ok(msgs),
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
