//! tc filters over rtnetlink: the bpf filters on an interface's clsact
//! hooks, and deleting one. Attaching goes through aya's netlink code
//! (`crate::attach::tc`).

use futures::{StreamExt, TryStreamExt};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST};
use netlink_packet_route::{
    tc::{TcAttribute, TcFilterBpfOption, TcHandle, TcMessage, TcOption},
    RouteNetlinkMessage,
};

use super::with_handle;
use crate::{Direction, Error, Result};

/// A bpf filter on a clsact hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfFilter {
    /// Filter priority (lower runs first).
    pub priority: u16,
    /// Filter handle.
    pub handle: u32,
    /// `tcm_info` as the kernel keeps it: priority and protocol.
    info: u32,
    /// Id of the program it runs.
    pub program_id: Option<u32>,
    /// Name of that program.
    pub program_name: Option<String>,
}

/// The clsact parent of `direction`'s hook.
fn parent(direction: Direction) -> TcHandle {
    TcHandle {
        major: 0xffff,
        minor: match direction {
            Direction::Ingress => TcHandle::MIN_INGRESS,
            Direction::Egress => TcHandle::MIN_EGRESS,
        },
    }
}

/// The bpf filters on `direction`'s clsact hook of interface `ifindex`
/// (none when the interface has no clsact qdisc).
pub fn bpf_filters(ifindex: u32, direction: Direction) -> Result<Vec<BpfFilter>> {
    // The kernel's interface indexes are positive ints.
    let index = ifindex as i32;
    with_handle(|handle| async move {
        let mut request = handle.traffic_filter(index).get();
        request = match direction {
            Direction::Ingress => request.ingress(),
            Direction::Egress => request.egress(),
        };
        match request.execute().try_collect::<Vec<TcMessage>>().await {
            Ok(msgs) => Ok(msgs.iter().filter_map(bpf_filter).collect()),
            // No clsact qdisc, or no interface: no filters.
            Err(rtnetlink::Error::NetlinkError(e))
                if [-libc::EINVAL, -libc::ENOENT, -libc::ENODEV].contains(&e.raw_code()) =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(Error::bpf("listing tc filters over rtnetlink", e)),
        }
    })
}

fn bpf_filter(msg: &TcMessage) -> Option<BpfFilter> {
    let kind = msg.attributes.iter().find_map(|a| match a {
        TcAttribute::Kind(k) => Some(k.as_str()),
        _ => None,
    })?;
    // The first message of each priority only names the classifier.
    let options = msg.attributes.iter().find_map(|a| match a {
        TcAttribute::Options(o) => Some(o),
        _ => None,
    })?;
    if kind != "bpf" {
        return None;
    }
    let mut filter = BpfFilter {
        priority: (msg.header.info >> 16) as u16,
        handle: u32::from(msg.header.handle),
        info: msg.header.info,
        program_id: None,
        program_name: None,
    };
    for option in options {
        match option {
            TcOption::Bpf(TcFilterBpfOption::ProgId(id)) => filter.program_id = Some(*id),
            TcOption::Bpf(TcFilterBpfOption::ProgName(name)) => filter.program_name = Some(name.clone()),
            _ => {}
        }
    }
    Some(filter)
}

/// Deletes one filter from `direction`'s clsact hook of `ifindex`.
pub fn delete_filter(ifindex: u32, direction: Direction, filter: &BpfFilter) -> Result<()> {
    let mut message = TcMessage::with_index(ifindex as i32);
    message.header.parent = parent(direction);
    message.header.handle = filter.handle.into();
    message.header.info = filter.info;
    message.attributes.push(TcAttribute::Kind("bpf".into()));
    let mut request = NetlinkMessage::from(RouteNetlinkMessage::DelTrafficFilter(message));
    request.header.flags = NLM_F_REQUEST | NLM_F_ACK;
    with_handle(|mut handle| async move {
        let mut response = handle
            .request(request)
            .map_err(|e| Error::bpf("deleting a tc filter", e))?;
        while let Some(reply) = response.next().await {
            if let NetlinkPayload::Error(e) = reply.payload {
                if let Some(code) = e.code {
                    return Err(Error::io(
                        "deleting a tc filter",
                        std::io::Error::from_raw_os_error(-code.get()),
                    ));
                }
            }
        }
        Ok(())
    })
}
