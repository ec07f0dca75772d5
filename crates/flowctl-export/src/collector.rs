//! The task that feeds one collector: queues records, sends templates first
//! on every new transport session and on the refresh timer (UDP), sends the
//! options records, and retries after failures without losing or reordering
//! what it could not send yet.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use flowctl_aging::FlowRecord;
use tokio::{
    sync::{mpsc, oneshot},
    time::{interval, Instant, MissedTickBehavior},
};

use crate::{
    session::ExportSession,
    transport::{Endpoint, Protocol, Transport},
    TemplateSet,
};

/// Records waiting for a collector that is down; beyond this the oldest are
/// given up (counted as not sent, the sequence number skips them).
pub const DEFAULT_QUEUE_LIMIT: usize = 1_000_000;

/// Commands to a collector task.
#[derive(Debug)]
pub enum Command {
    /// Flow records to export.
    Records(Arc<Vec<FlowRecord>>),
    /// The datapath's not-recorded counters, for the options record.
    Ignored {
        /// Packets the datapath could not record (cache full).
        packets: u64,
        /// Their octets.
        octets: u64,
    },
    /// New templates or refresh interval (configuration reload).
    Reload(Arc<TemplateSet>, Duration),
    /// Send what is queued (waiting at most the duration), then reply.
    Flush(Duration, oneshot::Sender<CollectorStatus>),
}

/// What a collector task reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CollectorStatus {
    /// `udp://host:port` or `tcp://host:port`.
    pub endpoint: String,
    /// Messages sent.
    pub messages: u64,
    /// Flow records sent.
    pub records: u64,
    /// Records given up on.
    pub not_sent: u64,
    /// Records still queued.
    pub queued: usize,
    /// Send or connect errors.
    pub errors: u64,
    /// Sequence number of the next message.
    pub sequence: u32,
}

/// Handle to a running collector task.
#[derive(Clone, Debug)]
pub struct CollectorHandle {
    tx: mpsc::Sender<Command>,
    endpoint: Endpoint,
}

impl CollectorHandle {
    /// Where this task sends.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends a command; `false` if the task is gone.
    pub async fn send(&self, cmd: Command) -> bool {
        self.tx.send(cmd).await.is_ok()
    }

    /// Sends everything queued (waiting at most `within`) and returns the status.
    pub async fn flush(&self, within: Duration) -> Option<CollectorStatus> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Command::Flush(within, tx)).await.ok()?;
        rx.await.ok()
    }
}

/// Settings of one collector task.
#[derive(Clone, Debug)]
pub struct CollectorSettings {
    /// Where and how.
    pub endpoint: Endpoint,
    /// Observation Domain ID.
    pub observation_domain_id: u32,
    /// Largest message.
    pub max_message_size: usize,
    /// Template refresh interval (UDP; TCP sends them once per connection).
    pub template_refresh: Duration,
    /// Queue limit while the collector cannot be reached.
    pub queue_limit: usize,
}

/// Starts the task on the current tokio runtime.
pub fn spawn(settings: CollectorSettings, templates: Arc<TemplateSet>) -> CollectorHandle {
    let (tx, rx) = mpsc::channel(64);
    let endpoint = settings.endpoint.clone();
    let task = CollectorTask {
        session: ExportSession::new(settings.observation_domain_id, settings.max_message_size),
        transport: Transport::new(settings.endpoint.clone()),
        templates,
        refresh: settings.template_refresh,
        queue_limit: settings.queue_limit,
        pending: VecDeque::new(),
        templates_due: true,
        last_templates: None,
        ignored: (0, 0),
        errors: 0,
    };
    tokio::spawn(task.run(rx));
    CollectorHandle { tx, endpoint }
}

struct CollectorTask {
    session: ExportSession,
    transport: Transport,
    templates: Arc<TemplateSet>,
    refresh: Duration,
    queue_limit: usize,
    pending: VecDeque<FlowRecord>,
    /// Templates must go out before the next data.
    templates_due: bool,
    last_templates: Option<Instant>,
    ignored: (u64, u64),
    errors: u64,
}

fn unix_seconds() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

impl CollectorTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut tick = interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None => {
                        self.drain(Duration::from_secs(2)).await;
                        return;
                    }
                    Some(Command::Records(records)) => {
                        self.enqueue(&records);
                        self.pump().await;
                    }
                    Some(Command::Ignored { packets, octets }) => self.ignored = (packets, octets),
                    Some(Command::Reload(templates, refresh)) => {
                        self.templates = templates;
                        self.refresh = refresh;
                        self.templates_due = true;
                        self.pump().await;
                    }
                    Some(Command::Flush(within, reply)) => {
                        self.drain(within).await;
                        let _ = reply.send(self.status());
                    }
                },
                _ = tick.tick() => self.pump().await,
            }
        }
    }

    fn status(&self) -> CollectorStatus {
        let s = self.session.stats();
        CollectorStatus {
            endpoint: self.transport.endpoint().to_string(),
            messages: s.exported_messages,
            records: s.exported_records,
            not_sent: s.not_sent_records,
            queued: self.pending.len(),
            errors: self.errors,
            sequence: self.session.sequence(),
        }
    }

    fn enqueue(&mut self, records: &[FlowRecord]) {
        self.pending.extend(records.iter().copied());
        let excess = self.pending.len().saturating_sub(self.queue_limit);
        if excess > 0 {
            let dropped: Vec<FlowRecord> = self.pending.drain(..excess).collect();
            log::warn!(
                "{}: queue full, {} records given up",
                self.transport.endpoint(),
                dropped.len()
            );
            self.session.lost(&dropped);
        }
    }

    /// Keeps pumping until the queue is empty or `within` has passed.
    async fn drain(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            self.pump().await;
            if self.pending.is_empty() || Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Connects if needed, sends templates when due, then queued records.
    async fn pump(&mut self) {
        match self.transport.ensure_connected().await {
            Ok(true) => {
                log::info!("{}: connected", self.transport.endpoint());
                self.templates_due = true;
            }
            Ok(false) => {}
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotConnected {
                    self.errors += 1;
                    log::warn!("{}: cannot connect: {e}", self.transport.endpoint());
                }
                return;
            }
        }
        let refresh_due = self.transport.endpoint().protocol == Protocol::Udp
            && self.last_templates.is_none_or(|t| t.elapsed() >= self.refresh);
        if (self.templates_due || refresh_due) && !self.send_templates().await {
            return;
        }
        while let Some((msg, data_records, used)) =
            self.session
                .next_data_message(&self.templates, &self.pending, unix_seconds())
        {
            if data_records > 0 {
                if !self.send(&msg).await {
                    return; // keep the records for the next attempt
                }
                self.session.sent(data_records, data_records);
            }
            self.pending.drain(..used);
        }
    }

    /// Templates, options templates, then the options records.
    async fn send_templates(&mut self) -> bool {
        let now = unix_seconds();
        for (msg, _) in self.session.template_messages(&self.templates, now) {
            if !self.send(&msg).await {
                return false;
            }
            self.session.sent(0, 0);
        }
        let (msg, n) = self.session.options_message(&self.templates, self.ignored, now);
        if !self.send(&msg).await {
            return false;
        }
        self.session.sent(n, 0);
        self.templates_due = false;
        self.last_templates = Some(Instant::now());
        true
    }

    async fn send(&mut self, msg: &[u8]) -> bool {
        match self.transport.send(msg).await {
            Ok(()) => true,
            Err(e) => {
                self.errors += 1;
                log::warn!("{}: send failed: {e}", self.transport.endpoint());
                // The collector may have restarted: templates before any more data.
                self.templates_due = true;
                false
            }
        }
    }
}
