//! Watches the interfaces the agent meters. Every few seconds it lists the
//! pinned attachments (names resolved over rtnetlink in their namespace) and
//! logs, once per change, an interface that was removed or renamed; when an
//! interface with a configured name exists again, it attaches to it.
//!
//! Flows of a removed interface stay in the cache and are exported as they
//! age out (idle timeout), like any other flow.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use flowctl_datapath::{AttachMode, AttachRequest, Attachment, AttachmentState, Error, Order, PinLayout};
use tokio::{
    task::JoinHandle,
    time::{interval, MissedTickBehavior},
};

use crate::{
    config::{AgentConfig, InterfaceSpec},
    lock,
};

/// How often the attachments are checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// A configured interface: its name and `ip netns` name.
type SpecKey = (String, Option<String>);

/// An attachment this agent made: where it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Known {
    /// The configured interface it was attached for.
    spec: SpecKey,
    /// The interface's name when last seen.
    name: String,
}

/// What changed since the previous check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The interface is gone (or its namespace is).
    Removed {
        /// Its last name.
        name: String,
        /// Its index.
        ifindex: u32,
    },
    /// Same interface, new name.
    Renamed {
        /// Its index.
        ifindex: u32,
        /// The name before.
        from: String,
        /// The name now.
        to: String,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Removed { name, ifindex } => write!(
                f,
                "{name} (ifindex {ifindex}) removed: its flows are exported as they age out; \
                 attaching again when it returns"
            ),
            Change::Renamed { ifindex, from, to } => {
                write!(f, "ifindex {ifindex} renamed {from} -> {to}: still metered")
            }
        }
    }
}

/// The attachments this agent made and their last known names. Pure: the
/// caller lists the attachments and attaches.
#[derive(Debug, Default)]
pub struct LinkTracker {
    /// By (netns inode, ifindex).
    known: BTreeMap<(u32, u32), Known>,
    /// Last error reported per configured interface (logged once).
    errors: BTreeMap<SpecKey, String>,
}

impl LinkTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Remembers attachments made for the configured interface `spec`.
    fn adopt(&mut self, spec: &SpecKey, done: &[Attachment]) {
        for a in done {
            let name = a.interface.clone().unwrap_or_else(|| spec.0.clone());
            self.known.insert(
                (a.netns_ino, a.ifindex),
                Known {
                    spec: spec.clone(),
                    name,
                },
            );
        }
    }

    /// Compares the known attachments with `now` (every pinned attachment):
    /// removed interfaces are forgotten, renamed ones keep being tracked.
    pub fn observe(&mut self, now: &[Attachment]) -> Vec<Change> {
        let mut changes = Vec::new();
        self.known.retain(|&(ino, ifindex), known| {
            let live_name = now
                .iter()
                .filter(|a| (a.netns_ino, a.ifindex) == (ino, ifindex) && a.state != AttachmentState::Defunct)
                .find_map(|a| a.interface.clone());
            match live_name {
                None => {
                    changes.push(Change::Removed {
                        name: known.name.clone(),
                        ifindex,
                    });
                    false
                }
                Some(name) => {
                    if name != known.name {
                        changes.push(Change::Renamed {
                            ifindex,
                            from: std::mem::replace(&mut known.name, name.clone()),
                            to: name,
                        });
                    }
                    true
                }
            }
        });
        changes
    }

    /// Whether an attachment made for `spec` still carries the configured name.
    fn satisfied(&self, spec: &SpecKey) -> bool {
        self.known.values().any(|k| &k.spec == spec && k.name == spec.0)
    }

    /// Logs an attach error for `spec` unless it is the one logged last time.
    fn report_error(&mut self, spec: &SpecKey, message: String) {
        if self.errors.get(spec) != Some(&message) {
            log::warn!("{}: {message}", spec.0);
            self.errors.insert(spec.clone(), message);
        }
    }

    /// One check: list, log what changed, remove the pins of removed
    /// interfaces, attach where a configured interface is back. `stop` is
    /// read before attaching, so a shutdown in progress is not undone.
    pub fn check(&mut self, layout: &PinLayout, wanted: &Wanted, stop: &AtomicBool) {
        let now = match flowctl_datapath::attachments(layout) {
            Ok(now) => now,
            Err(e) => {
                self.report_error(&("attachments".into(), None), e.to_string());
                return;
            }
        };
        for change in self.observe(&now) {
            log::warn!("{change}");
            if let Change::Removed { ifindex, .. } = &change {
                // The attachment died with its interface: drop its pins.
                for a in now.iter().filter(|a| a.ifindex == *ifindex && a.interface.is_none()) {
                    if let Err(e) = flowctl_datapath::remove_attachment(layout, a) {
                        log::warn!("removing the attachment of ifindex {ifindex}: {e}");
                    }
                }
            }
        }
        for spec in &wanted.interfaces {
            let key = (spec.name.clone(), spec.netns.clone());
            if self.satisfied(&key) || stop.load(Ordering::SeqCst) {
                continue;
            }
            let request = AttachRequest {
                interface: spec.name.clone(),
                directions: spec.directions.clone(),
                netns: spec.netns.clone(),
                max_flows: wanted.max_flows,
                mode: wanted.mode,
                order: wanted.order,
                sampling: spec.sampling,
            };
            match flowctl_datapath::attach(layout, &request) {
                Ok(done) => {
                    self.errors.remove(&key);
                    if let Some(a) = done.iter().find(|a| a.state == AttachmentState::NewlyAttached) {
                        log::warn!("{} (ifindex {}) is back: metering it again", spec.name, a.ifindex);
                    }
                    self.adopt(&key, &done);
                }
                // Not there (yet): quiet, the removal was logged.
                Err(Error::UnknownInterface { .. }) => {
                    self.errors.remove(&key);
                }
                Err(e) => self.report_error(&key, format!("cannot attach: {e}")),
            }
        }
    }
}

/// What the watch keeps attached (changes on reload).
#[derive(Clone, Debug, Default)]
pub struct Wanted {
    /// Configured interfaces.
    pub interfaces: Vec<InterfaceSpec>,
    /// Flow cache size to create if none is pinned.
    pub max_flows: Option<u32>,
    /// Which tc hook.
    pub mode: AttachMode,
    /// Where in the chain.
    pub order: Order,
}

impl Wanted {
    fn of(config: &AgentConfig) -> Self {
        Self {
            interfaces: config.interfaces.clone(),
            max_flows: config.max_flows,
            mode: config.attach_mode,
            order: config.attach_order,
        }
    }
}

/// The running watch; dropping it stops it.
pub struct LinkWatch {
    wanted: Arc<Mutex<Wanted>>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl LinkWatch {
    /// Starts checking every [`CHECK_EVERY`] on the current tokio runtime.
    pub fn spawn(layout: PinLayout, config: &AgentConfig) -> Self {
        let wanted = Arc::new(Mutex::new(Wanted::of(config)));
        let stop = Arc::new(AtomicBool::new(false));
        let tracker = Arc::new(Mutex::new(LinkTracker::new()));
        let (w, s) = (wanted.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut tick = interval(CHECK_EVERY);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let (layout, tracker, w, s) = (layout.clone(), tracker.clone(), w.clone(), s.clone());
                let _ = tokio::task::spawn_blocking(move || {
                    let wanted = lock(&w).clone();
                    lock(&tracker).check(&layout, &wanted, &s);
                })
                .await;
            }
        });
        Self { wanted, stop, task }
    }

    /// New configuration (reload).
    pub fn update(&self, config: &AgentConfig) {
        *lock(&self.wanted) = Wanted::of(config);
    }
}

impl Drop for LinkWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use flowctl_datapath::{Direction, Hook};

    use super::*;

    fn att(ifindex: u32, name: Option<&str>, state: AttachmentState) -> Attachment {
        Attachment {
            netns_ino: 42,
            netns: "t".into(),
            ifindex,
            interface: name.map(String::from),
            direction: Direction::Egress,
            hook: Hook::Tcx,
            sampling: None,
            state,
        }
    }

    fn live(ifindex: u32, name: &str) -> Attachment {
        att(
            ifindex,
            Some(name),
            AttachmentState::Attached {
                link_id: Some(1),
                program_id: 2,
            },
        )
    }

    #[test]
    fn renames_and_removals_are_reported_once() {
        let mut t = LinkTracker::new();
        let spec: SpecKey = ("eth1".into(), None);
        t.adopt(&spec, &[live(7, "eth1")]);
        assert!(t.satisfied(&spec));
        assert_eq!(t.observe(&[live(7, "eth1")]), vec![]);

        let renamed = t.observe(&[live(7, "wan0")]);
        assert_eq!(
            renamed,
            vec![Change::Renamed {
                ifindex: 7,
                from: "eth1".into(),
                to: "wan0".into()
            }]
        );
        assert_eq!(renamed[0].to_string(), "ifindex 7 renamed eth1 -> wan0: still metered");
        assert_eq!(t.observe(&[live(7, "wan0")]), vec![], "logged once");
        assert!(!t.satisfied(&spec), "the configured name is free again");

        let removed = t.observe(&[att(7, None, AttachmentState::Defunct)]);
        assert_eq!(
            removed,
            vec![Change::Removed {
                name: "wan0".into(),
                ifindex: 7
            }]
        );
        assert!(removed[0]
            .to_string()
            .starts_with("wan0 (ifindex 7) removed: its flows are exported as they age out"));
        assert_eq!(t.observe(&[]), vec![], "forgotten after the removal");
    }

    #[test]
    fn a_pin_that_disappears_counts_as_removed_and_other_links_are_untouched() {
        let mut t = LinkTracker::new();
        t.adopt(&("a".into(), None), &[live(3, "a")]);
        t.adopt(&("b".into(), None), &[live(4, "b")]);
        assert_eq!(
            t.observe(&[live(4, "b")]),
            vec![Change::Removed {
                name: "a".into(),
                ifindex: 3
            }]
        );
        assert!(t.satisfied(&("b".into(), None)));
        assert!(!t.satisfied(&("a".into(), None)));
    }

    #[test]
    fn an_error_is_logged_once_until_it_changes() {
        let mut t = LinkTracker::new();
        let spec: SpecKey = ("x".into(), Some("ns".into()));
        t.report_error(&spec, "boom".into());
        t.report_error(&spec, "boom".into());
        assert_eq!(t.errors.len(), 1);
        t.report_error(&spec, "other".into());
        assert_eq!(t.errors[&spec], "other");
    }
}
