//! The names of the interfaces flows are metered on or pass through, for
//! the interface names options records: every interface the agent meters,
//! and every interface index a flow record carries (the ingress interface
//! of forwarded traffic included), each resolved over rtnetlink in the
//! network namespace the flow was metered in. The kernel's link events
//! (an interface appears, is renamed, changes its alias, goes away) make
//! the agent read that namespace again and, when a name changed, send the
//! records to every collector at once.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use flowctl_datapath::{netlink::LinkNames, PinLayout};
use flowctl_ipfix::InterfaceInfo;
use flowctl_model::FlowRecord;
use tokio::sync::mpsc;

/// The table shared by the scan thread and the agent's loop.
pub type SharedInterfaces = Arc<Mutex<InterfaceTable>>;

/// (network namespace inode, ifindex).
type Key = (u32, u32);

/// Interfaces by namespace and index, with their names.
#[derive(Debug, Default)]
pub struct InterfaceTable {
    known: BTreeMap<Key, InterfaceInfo>,
    /// Looked up and not found (gone already); tried again after a link
    /// event in their namespace.
    missing: BTreeSet<Key>,
    /// Namespaces whose link events are watched.
    watched: BTreeSet<u32>,
    /// Where link events are announced (the namespace inode); none in tests.
    events: Option<mpsc::Sender<u32>>,
}

impl InterfaceTable {
    /// A table whose namespaces' link events are sent to `events`.
    pub fn new(events: Option<mpsc::Sender<u32>>) -> Self {
        Self {
            events,
            ..Self::default()
        }
    }

    /// The records to send, by ifindex. Two namespaces may use one ifindex
    /// for different interfaces: both records are sent (a collector keeps
    /// one), see docs/configuration.md.
    pub fn snapshot(&self) -> Arc<Vec<InterfaceInfo>> {
        let mut all: Vec<InterfaceInfo> = self.known.values().cloned().collect();
        all.sort();
        all.dedup();
        Arc::new(all)
    }

    /// Adds the interfaces the agent meters (its pinned attachments).
    /// Returns whether the table changed.
    pub fn add_attachments(&mut self, layout: &PinLayout) -> bool {
        let keys: Vec<Key> = match flowctl_datapath::attachments(layout) {
            Ok(all) => all.iter().map(|a| (a.netns_ino, a.ifindex)).collect(),
            Err(e) => {
                log::warn!("interface names: listing the attachments: {e}");
                return false;
            }
        };
        self.add(&keys)
    }

    /// Adds the interfaces the records carry. Returns whether the table changed.
    pub fn learn(&mut self, records: &[FlowRecord]) -> bool {
        let mut new: BTreeSet<Key> = BTreeSet::new();
        for r in records {
            for ifindex in [r.key.ingress_ifindex, r.key.egress_ifindex] {
                let key = (r.key.netns_ino, ifindex);
                if ifindex != 0 && !self.known.contains_key(&key) && !self.missing.contains(&key) {
                    new.insert(key);
                }
            }
        }
        if new.is_empty() {
            return false;
        }
        self.add(&new.into_iter().collect::<Vec<_>>())
    }

    /// Reads a namespace again after a link event. Returns whether a name
    /// changed, appeared or went away.
    pub fn refresh(&mut self, netns_ino: u32) -> bool {
        let wanted: Vec<u32> = self
            .known
            .keys()
            .chain(self.missing.iter())
            .filter(|(ns, _)| *ns == netns_ino)
            .map(|(_, i)| *i)
            .collect();
        match flowctl_datapath::netlink::link_names_in(netns_ino) {
            Some(links) => self.apply(netns_ino, &links, &wanted),
            // The namespace is gone: so are its interfaces.
            None => self.apply(netns_ino, &HashMap::new(), &wanted),
        }
    }

    fn add(&mut self, keys: &[Key]) -> bool {
        let mut changed = false;
        let namespaces: BTreeSet<u32> = keys.iter().map(|(ns, _)| *ns).collect();
        for ns in namespaces {
            self.watch(ns);
            let wanted: Vec<u32> = keys.iter().filter(|(n, _)| *n == ns).map(|(_, i)| *i).collect();
            let links = flowctl_datapath::netlink::link_names_in(ns).unwrap_or_default();
            changed |= self.apply(ns, &links, &wanted);
        }
        changed
    }

    /// Sets the names of `wanted` interfaces of namespace `ns` from `links`
    /// (what the namespace has now): those it lacks are forgotten.
    /// Returns whether anything the records carry changed.
    pub fn apply(&mut self, ns: u32, links: &HashMap<u32, LinkNames>, wanted: &[u32]) -> bool {
        let mut changed = false;
        for &ifindex in wanted {
            let key = (ns, ifindex);
            match links.get(&ifindex) {
                Some(l) => {
                    self.missing.remove(&key);
                    let info = InterfaceInfo {
                        ifindex,
                        name: l.name.clone(),
                        description: l.alias.clone().unwrap_or_else(|| l.name.clone()),
                    };
                    if self.known.get(&key) != Some(&info) {
                        if self.known.contains_key(&key) {
                            log::info!(
                                "interface names: ifindex {ifindex} is now {} ({})",
                                info.name,
                                info.description
                            );
                        }
                        self.known.insert(key, info);
                        changed = true;
                    }
                }
                None => {
                    changed |= self.known.remove(&key).is_some();
                    self.missing.insert(key);
                }
            }
        }
        changed
    }

    /// Starts watching the link events of `ns`, once.
    fn watch(&mut self, ns: u32) {
        let Some(events) = self.events.clone() else { return };
        if !self.watched.insert(ns) {
            return;
        }
        // A full channel already holds an event to act on; a closed one
        // (the agent is stopping) ends the watch.
        let notify = move || {
            let _ = events.try_send(ns);
            !events.is_closed()
        };
        if let Err(e) = flowctl_datapath::netlink::watch::watch_links(ns, notify) {
            log::warn!("interface names: cannot watch the interfaces of netns {ns}: {e}");
            self.watched.remove(&ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(entries: &[(u32, &str, Option<&str>)]) -> HashMap<u32, LinkNames> {
        entries
            .iter()
            .map(|(i, n, a)| {
                (
                    *i,
                    LinkNames {
                        name: n.to_string(),
                        alias: a.map(String::from),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn names_aliases_renames_and_removals() {
        let mut t = InterfaceTable::new(None);
        assert!(t.apply(7, &links(&[(2, "eth0", None), (3, "wan", Some("to the ISP"))]), &[2, 3]));
        let names: Vec<(u32, String, String)> = t
            .snapshot()
            .iter()
            .map(|i| (i.ifindex, i.name.clone(), i.description.clone()))
            .collect();
        assert_eq!(
            names,
            [
                (2, "eth0".into(), "eth0".into()),
                (3, "wan".into(), "to the ISP".into())
            ],
            "the description is the alias, else the name"
        );
        assert!(
            !t.apply(7, &links(&[(2, "eth0", None), (3, "wan", Some("to the ISP"))]), &[2, 3]),
            "no change"
        );
        assert!(
            t.apply(7, &links(&[(2, "lan0", None), (3, "wan", Some("to the ISP"))]), &[2, 3]),
            "renamed"
        );
        assert_eq!(t.snapshot()[0].name, "lan0");
        assert!(
            t.apply(7, &links(&[(3, "wan", None)]), &[2, 3]),
            "2 gone, 3 lost its alias"
        );
        assert_eq!(t.snapshot().len(), 1);
        assert_eq!(t.snapshot()[0].description, "wan");
        assert!(t.missing.contains(&(7, 2)), "looked up again after the next event");
    }

    #[test]
    fn records_bring_their_interfaces_once() {
        let mut t = InterfaceTable::new(None);
        let mut r = FlowRecord::default();
        r.key.netns_ino = 1; // no such namespace: not found, remembered as missing
        r.key.ingress_ifindex = 4;
        assert!(!t.learn(&[r]));
        assert!(t.missing.contains(&(1, 4)));
        assert!(!t.learn(&[r]), "not looked up again until a link event");
    }
}
