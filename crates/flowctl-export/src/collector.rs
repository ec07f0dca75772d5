//! The task that feeds one collector: queues records, sends templates first
//! on every new transport session and on the refresh timer (UDP), sends the
//! options records, and retries after failures without losing or reordering
//! what it could not send yet.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use flowctl_ipfix::{encode::EncodeError, options::InterfaceInfo};
use flowctl_model::{FlowRecord, Sampling};
use tokio::{
    sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore},
    time::{interval, Instant, MissedTickBehavior},
};

use crate::{
    format::Session,
    queue::Pending,
    transport::{Endpoint, Protocol, Transport},
    TemplateSet,
};

/// Records waiting for a collector that is down; beyond this the oldest are
/// given up (counted as not sent, the sequence number skips them).
pub const DEFAULT_QUEUE_LIMIT: usize = 1_000_000;

/// Records handed to a collector task that it has not taken into its queue
/// yet; [`CollectorHandle::send`] waits beyond this. The task takes the next
/// command once it has sent its queue (or cannot send), so this bounds what
/// a pass ending many flows holds in memory for a live collector; a
/// collector that is down takes records at once, up to its queue limit.
pub const SEND_WINDOW: usize = 65_536;

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
    /// Records an earlier run could not deliver: queued before anything
    /// else; `file`, their spool file, is removed once they are sent.
    Spooled {
        /// The records, oldest first.
        records: Vec<FlowRecord>,
        /// Records the earlier runs gave up on: (records, packets, octets).
        given_up: (u64, u64, u64),
        /// Their spool file.
        file: PathBuf,
    },
    /// Reports the task's counters and queue.
    Status(oneshot::Sender<CollectorStatus>),
    /// Sends every template again now (`flowctl agent resend-templates`).
    ResendTemplates,
    /// The names of the interfaces flows are metered on or pass through:
    /// sent at once as interface names options records, then with the
    /// templates and on the refresh timer.
    Interfaces(Arc<Vec<InterfaceInfo>>),
    /// Sends what is queued, for at most `within` or until `hurry` turns
    /// true, sends the final statistics, hands back what is left, and stops.
    Stop {
        /// Longest wait for a collector that is behind or away.
        within: Duration,
        /// Cuts the wait short (a second stop signal).
        hurry: watch::Receiver<bool>,
        /// Where the outcome goes.
        reply: oneshot::Sender<Stopped>,
    },
}

/// How a collector task ended.
#[derive(Debug)]
pub struct Stopped {
    /// Its final counters.
    pub status: CollectorStatus,
    /// Records it could not send, oldest first.
    pub unsent: Vec<FlowRecord>,
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

/// Live counters of one collector task, shared with whoever reports them
/// (the agent's Prometheus endpoint). The task is the only writer; readers
/// load them at any time. Counters only grow; `queued` and `connected` are
/// current values.
#[derive(Debug, Default)]
pub struct CollectorCounters {
    /// IPFIX messages sent (templates, options and data).
    pub messages: AtomicU64,
    /// Bytes of those messages (IPFIX message lengths, without UDP/TCP/IP headers).
    pub octets: AtomicU64,
    /// Flow records sent (not options records).
    pub records: AtomicU64,
    /// Flow records given up on (queue limit, or no template for their IP version).
    pub not_sent: AtomicU64,
    /// Messages that carried templates (every data and options template is
    /// sent on start, on each new connection, on the refresh timer and after
    /// a send error).
    pub template_messages: AtomicU64,
    /// Failed connects and sends.
    pub errors: AtomicU64,
    /// Transport sessions started: TCP connections, UDP sockets.
    pub connections: AtomicU64,
    /// Flow records waiting to be sent.
    pub queued: AtomicU64,
    /// Whether a connection (TCP) or socket (UDP) is up.
    pub connected: AtomicBool,
}

/// A command on its way to the task, with the share of the send window its
/// records hold until the task takes them.
#[derive(Debug)]
struct Envelope {
    cmd: Command,
    _window: Option<OwnedSemaphorePermit>,
}

/// Handle to a running collector task.
#[derive(Clone, Debug)]
pub struct CollectorHandle {
    tx: mpsc::Sender<Envelope>,
    endpoint: Endpoint,
    counters: Arc<CollectorCounters>,
    window: Arc<Semaphore>,
}

impl CollectorHandle {
    /// Where this task sends.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The task's live counters.
    pub fn counters(&self) -> &Arc<CollectorCounters> {
        &self.counters
    }

    /// Sends a command; `false` if the task is gone. Records wait while
    /// more than [`SEND_WINDOW`] records are on their way to the task.
    pub async fn send(&self, cmd: Command) -> bool {
        let window = match &cmd {
            Command::Records(r) if !r.is_empty() => {
                let n = r.len().min(SEND_WINDOW) as u32;
                match self.window.clone().acquire_many_owned(n).await {
                    Ok(permit) => Some(permit),
                    Err(_) => return false, // never closed
                }
            }
            _ => None,
        };
        self.tx.send(Envelope { cmd, _window: window }).await.is_ok()
    }

    /// The task's counters and queue now; `None` if the task is gone.
    pub async fn status(&self) -> Option<CollectorStatus> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Status(reply)).await.then_some(())?;
        rx.await.ok()
    }

    /// Stops the task: sends what it can within `within` (or until `hurry`
    /// turns true) and returns what it could not send. `None` if the task
    /// was gone.
    pub async fn stop(&self, within: Duration, hurry: watch::Receiver<bool>) -> Option<Stopped> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Stop { within, hurry, reply }).await.then_some(())?;
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
    /// IPFIX or NetFlow v9.
    pub format: crate::ExportFormat,
    /// The exporter address for the options records and the exporter
    /// address fields; `None`: the local address of the socket.
    pub exporter_address: Option<std::net::IpAddr>,
}

/// Starts the task on the current tokio runtime; refuses a message size no
/// message can have.
pub fn spawn(settings: CollectorSettings, templates: Arc<TemplateSet>) -> Result<CollectorHandle, EncodeError> {
    let session = Session::new(
        settings.format,
        settings.observation_domain_id,
        settings.max_message_size,
    )?;
    let (tx, rx) = mpsc::channel(64);
    let endpoint = settings.endpoint.clone();
    let counters = Arc::new(CollectorCounters::default());
    let task = CollectorTask {
        session,
        transport: Transport::new(settings.endpoint.clone()),
        templates,
        refresh: settings.template_refresh,
        queue_limit: settings.queue_limit,
        pending: Pending::default(),
        templates_due: true,
        last_templates: None,
        last_options: None,
        withdrawals: Vec::new(),
        spooled: None,
        ignored: (0, 0),
        counters: counters.clone(),
        recent: Default::default(),
        interfaces: Arc::default(),
        selectors: Vec::new(),
        exporter_address: settings.exporter_address,
    };
    tokio::spawn(task.run(rx));
    Ok(CollectorHandle {
        tx,
        endpoint,
        counters,
        window: Arc::new(Semaphore::new(SEND_WINDOW)),
    })
}

struct CollectorTask {
    session: Session,
    transport: Transport,
    templates: Arc<TemplateSet>,
    refresh: Duration,
    queue_limit: usize,
    /// Shared batches, oldest first; the limit counts records.
    pending: Pending,
    /// Templates must go out before the next data.
    templates_due: bool,
    last_templates: Option<Instant>,
    /// When the options records were last sent (they are refreshed on the
    /// template refresh interval over every transport).
    last_options: Option<Instant>,
    /// Templates to withdraw from the live session before the next ones
    /// (a reload redefined or dropped them; TCP only).
    withdrawals: Vec<(u16, bool)>,
    /// The spool file whose records head the queue, and how many of them
    /// are still queued.
    spooled: Option<(PathBuf, usize)>,
    ignored: (u64, u64),
    counters: Arc<CollectorCounters>,
    /// UDP: recent data messages, to queue again what a collector refused.
    recent: crate::refused::Recent,
    /// The interface names options records.
    interfaces: Arc<Vec<InterfaceInfo>>,
    /// The samplings of the records queued so far, one selector options
    /// record each, in the order first seen.
    selectors: Vec<Sampling>,
    /// The configured exporter address; `None`: the socket's local address.
    exporter_address: Option<std::net::IpAddr>,
}

fn unix_seconds() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

impl CollectorTask {
    async fn run(mut self, mut rx: mpsc::Receiver<Envelope>) {
        let mut tick = interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // The envelope (and its share of the send window) is dropped
                // once the command is taken.
                cmd = rx.recv() => match cmd.map(|e| e.cmd) {
                    None => {
                        let (_, never) = watch::channel(false);
                        self.drain(Duration::from_secs(2), never).await;
                        return;
                    }
                    Some(Command::Records(records)) => {
                        self.enqueue(records);
                        self.pump().await;
                    }
                    Some(Command::Ignored { packets, octets }) => self.ignored = (packets, octets),
                    Some(Command::Reload(templates, refresh)) => {
                        if self.transport.endpoint().protocol.is_stream() && self.transport.is_connected() {
                            self.withdrawals = self.templates.redefined_in(&templates);
                        }
                        self.templates = templates;
                        self.refresh = refresh;
                        self.templates_due = true;
                        self.pump().await;
                    }
                    Some(Command::Spooled { records, given_up, file }) => {
                        let n = records.len();
                        self.learn_selectors(&records);
                        if given_up.0 > 0 {
                            self.session.given_up_before(given_up.0, given_up.1, given_up.2);
                            // The collector learns of them now, not at the next refresh.
                            self.last_options = None;
                        }
                        self.pending.push_front(records);
                        self.spooled = Some((file, n));
                        self.sent_front(0);
                        self.pump().await;
                    }
                    Some(Command::Status(reply)) => {
                        let _ = reply.send(self.status());
                    }
                    Some(Command::ResendTemplates) => {
                        self.templates_due = true;
                        self.pump().await;
                    }
                    Some(Command::Interfaces(interfaces)) => {
                        if interfaces != self.interfaces {
                            self.interfaces = interfaces;
                            // The collector learns the names now, before the
                            // flows that follow.
                            self.last_options = None;
                            self.pump().await;
                        }
                    }
                    Some(Command::Stop { within, hurry, reply }) => {
                        self.drain(within, hurry).await;
                        // The collector sees the final counters.
                        if self.transport.is_connected() {
                            self.send_options().await;
                        }
                        let status = self.status();
                        let unsent = self.pending.take_all();
                        self.publish();
                        let _ = reply.send(Stopped { status, unsent });
                        return;
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
            errors: self.counters.errors.load(Relaxed),
            sequence: self.session.sequence(),
        }
    }

    fn enqueue(&mut self, records: Arc<Vec<FlowRecord>>) {
        self.learn_selectors(&records);
        self.pending.push_back(records);
        let excess = self.pending.len().saturating_sub(self.queue_limit);
        if excess > 0 {
            log::warn!("{}: queue full, {excess} records given up", self.transport.endpoint());
            let session = &mut self.session;
            self.pending.pop_front(excess, |lost| session.lost(lost));
            self.sent_front(excess);
        }
        self.publish();
    }

    /// Adds the samplings of `records` not described yet: the options
    /// records go out again, before these records.
    fn learn_selectors(&mut self, records: &[FlowRecord]) {
        let mut last = None;
        for r in records {
            if last == Some(r.stats.sampling) {
                continue;
            }
            last = Some(r.stats.sampling);
            let s = Sampling::from_word(r.stats.sampling);
            if !self.selectors.contains(&s) {
                self.selectors.push(s);
                self.last_options = None;
            }
        }
    }

    /// Copies the session's totals and the queue length to the shared counters.
    fn publish(&self) {
        let s = self.session.stats();
        let c = &self.counters;
        c.messages.store(s.exported_messages, Relaxed);
        c.records.store(s.exported_records, Relaxed);
        c.not_sent.store(s.not_sent_records, Relaxed);
        c.queued.store(self.pending.len() as u64, Relaxed);
        c.connected.store(self.transport.is_connected(), Relaxed);
    }

    /// `n` records left the head of the queue (sent or given up): once
    /// every spooled record has, the spool file goes.
    fn sent_front(&mut self, n: usize) {
        if let Some((file, left)) = &mut self.spooled {
            *left = left.saturating_sub(n);
            if *left == 0 {
                match std::fs::remove_file(&*file) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        log::warn!("removing the sent spool {}: {e}", file.display());
                    }
                    _ => log::info!("{}: the spooled records are sent", self.transport.endpoint()),
                }
                self.spooled = None;
            }
        }
    }

    /// Keeps pumping until the queue is empty, `within` has passed or
    /// `hurry` turns true.
    async fn drain(&mut self, within: Duration, mut hurry: watch::Receiver<bool>) {
        let deadline = Instant::now() + within;
        loop {
            self.pump().await;
            if self.pending.is_empty() || Instant::now() >= deadline || *hurry.borrow() {
                return;
            }
            // A hurry signal whose sender is gone never fires.
            let hurried = async {
                if hurry.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                () = hurried => {}
            }
        }
    }

    /// Connects if needed, sends templates when due, then queued records;
    /// publishes the counters afterwards.
    async fn pump(&mut self) {
        self.try_send_all().await;
        self.publish();
    }

    async fn try_send_all(&mut self) {
        match self.transport.ensure_connected().await {
            Ok(true) => {
                log::info!("{}: connected", self.transport.endpoint());
                self.counters.connections.fetch_add(1, Relaxed);
                self.templates_due = true;
                let local = self.transport.local_address().map(|a| a.ip());
                self.session.set_exporter_address(self.exporter_address.or(local));
                // A new session has no templates to withdraw.
                self.withdrawals.clear();
            }
            Ok(false) => {}
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotConnected {
                    self.counters.errors.fetch_add(1, Relaxed);
                    log::warn!("{}: cannot connect: {e}", self.transport.endpoint());
                }
                return;
            }
        }
        self.requeue_refused();
        let refresh_due = self.transport.endpoint().protocol == Protocol::Udp
            && self.last_templates.is_none_or(|t| t.elapsed() >= self.refresh);
        if !self.withdrawals.is_empty() && !self.send_withdrawals().await {
            return;
        }
        if (self.templates_due || refresh_due) && !self.send_templates().await {
            return;
        }
        if self.last_options.is_none_or(|t| t.elapsed() >= self.refresh) && !self.send_options().await {
            return;
        }
        while let Some((msg, data_records, used)) =
            self.session
                .next_data_message_from(&self.templates, self.pending.iter(), unix_seconds())
        {
            if data_records > 0 {
                if !self.send(&msg).await {
                    return; // keep the records for the next attempt
                }
                self.session.sent(data_records, data_records);
                if self.transport.endpoint().protocol == Protocol::Udp {
                    self.recent.remember(&msg, self.pending.iter().take(used).copied());
                }
            }
            self.pending.pop_front(used, |_| {});
            self.sent_front(used);
        }
    }

    /// UDP: puts the records of datagrams the collector refused (port
    /// unreachable) back at the head of the queue, templates first again.
    fn requeue_refused(&mut self) {
        let quoted = self.transport.refused();
        let back: Vec<FlowRecord> = quoted.iter().filter_map(|q| self.recent.take(q)).flatten().collect();
        if !back.is_empty() {
            log::warn!(
                "{}: collector refused {} records (port unreachable): queued again",
                self.transport.endpoint(),
                back.len()
            );
            self.templates_due = true;
            self.pending.push_front(back);
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
            self.counters.template_messages.fetch_add(1, Relaxed);
        }
        if !self.send_options().await {
            return false;
        }
        self.templates_due = false;
        self.last_templates = Some(Instant::now());
        true
    }

    /// The options records: exporting-process statistics, sampling and
    /// interface names.
    async fn send_options(&mut self) -> bool {
        let messages = self.session.options_messages(
            &self.templates,
            self.ignored,
            &self.interfaces,
            &self.selectors,
            unix_seconds(),
        );
        for (msg, n) in messages {
            if !self.send(&msg).await {
                return false;
            }
            self.session.sent(n, 0);
        }
        self.last_options = Some(Instant::now());
        true
    }

    /// Withdraws the templates a reload redefined, before the new ones go out.
    async fn send_withdrawals(&mut self) -> bool {
        let withdrawals = std::mem::take(&mut self.withdrawals);
        for (msg, _) in self.session.withdrawal_messages(&withdrawals, unix_seconds()) {
            if !self.send(&msg).await {
                // The session is gone with its templates.
                return false;
            }
            self.session.sent(0, 0);
        }
        log::info!(
            "{}: withdrew templates {:?} before redefining them",
            self.transport.endpoint(),
            withdrawals.iter().map(|(id, _)| id).collect::<Vec<_>>()
        );
        true
    }

    async fn send(&mut self, msg: &[u8]) -> bool {
        match self.transport.send(msg).await {
            Ok(()) => {
                self.counters.octets.fetch_add(msg.len() as u64, Relaxed);
                true
            }
            Err(e) => {
                self.counters.errors.fetch_add(1, Relaxed);
                log::warn!("{}: send failed: {e}", self.transport.endpoint());
                // The collector may have restarted: templates before any more data.
                self.templates_due = true;
                false
            }
        }
    }
}

#[cfg(test)]
mod counter_tests {
    use std::net::SocketAddr;

    use flowctl_ipfix::{template::Strictness, Template};
    use flowctl_model::EndReason;
    use flowctl_model::{key_addr, FlowKey};

    use super::*;

    fn records(n: u64) -> Arc<Vec<FlowRecord>> {
        let r = |i: u64| FlowRecord {
            key: FlowKey {
                src_addr: key_addr(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32).into()),
                ip_version: 4,
                ..Default::default()
            },
            stats: flowctl_model::FlowStats {
                packets: 1,
                octets: 100,
                min_ttl: 64,
                max_ttl: 64,
                ..Default::default()
            },
            total_packets: 1,
            total_octets: 100,
            start_unix_ns: 1_700_000_000_000_000_000,
            end_unix_ns: 1_700_000_000_000_000_000,
            reason: EndReason::IdleTimeout,
        };
        Arc::new((0..n).map(r).collect())
    }

    fn start(address: SocketAddr, protocol: Protocol) -> CollectorHandle {
        start_with_limit(address, protocol, DEFAULT_QUEUE_LIMIT)
    }

    fn start_with_limit(address: SocketAddr, protocol: Protocol, queue_limit: usize) -> CollectorHandle {
        let t = Template::new(256, &["sourceIPv4Address", "packetDeltaCount"], Strictness::Agent).unwrap();
        let settings = CollectorSettings {
            endpoint: Endpoint {
                address,
                protocol,
                local_address: None,
                tls: None,
            },
            observation_domain_id: 1,
            max_message_size: 512,
            template_refresh: Duration::from_secs(60),
            queue_limit,
            format: crate::ExportFormat::Ipfix,
            exporter_address: None,
        };
        spawn(settings, Arc::new(TemplateSet::new(vec![t]))).unwrap()
    }

    #[tokio::test]
    async fn counters_match_what_the_collector_received() {
        let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        sink.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let handle = start(sink.local_addr().unwrap(), Protocol::Udp);
        assert!(handle.send(Command::Records(records(100))).await);
        let stopped = handle.stop(Duration::from_secs(5), never()).await.unwrap();
        assert!(stopped.unsent.is_empty());
        let status = stopped.status;
        let (mut datagrams, mut bytes, mut buf) = (0u64, 0u64, [0u8; 2048]);
        while let Ok(n) = sink.recv(&mut buf) {
            datagrams += 1;
            bytes += n as u64;
        }
        let c = handle.counters();
        assert_eq!(c.records.load(Relaxed), 100);
        assert_eq!(c.messages.load(Relaxed), datagrams, "one message per datagram");
        assert_eq!(c.messages.load(Relaxed), status.messages);
        assert_eq!(c.octets.load(Relaxed), bytes);
        assert_eq!(c.template_messages.load(Relaxed), 1);
        assert_eq!(c.connections.load(Relaxed), 1);
        assert_eq!((c.errors.load(Relaxed), c.queued.load(Relaxed)), (0, 0));
        assert!(c.connected.load(Relaxed));
    }

    #[tokio::test]
    async fn a_refused_tcp_collector_counts_errors_and_keeps_the_records_queued() {
        let handle = start(refused_tcp_address(), Protocol::Tcp);
        assert!(handle.send(Command::Records(records(7))).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let status = handle.status().await.unwrap();
        let c = handle.counters();
        assert!(c.errors.load(Relaxed) >= 1);
        assert_eq!(c.errors.load(Relaxed), status.errors);
        assert_eq!((c.queued.load(Relaxed), status.queued), (7, 7));
        assert_eq!((c.records.load(Relaxed), c.messages.load(Relaxed)), (0, 0));
        assert!(!c.connected.load(Relaxed));
        // Stopping hands the records back, in order.
        let stopped = handle.stop(Duration::from_millis(100), never()).await.unwrap();
        assert_eq!(stopped.unsent, *records(7));
        assert!(handle.status().await.is_none(), "the task is gone");
    }

    /// A hurry signal that never fires.
    fn never() -> watch::Receiver<bool> {
        watch::channel(false).1
    }

    fn refused_tcp_address() -> SocketAddr {
        // A port that was free a moment ago: connecting is refused.
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    #[tokio::test]
    async fn the_queue_limit_counts_records_across_shared_batches() {
        let handle = start_with_limit(refused_tcp_address(), Protocol::Tcp, 7);
        let batch = records(5);
        for _ in 0..3 {
            assert!(handle.send(Command::Records(batch.clone())).await);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let status = handle.status().await.unwrap();
        assert_eq!((status.queued, status.not_sent), (7, 8), "the 8 oldest given up");
        assert_eq!(status.sequence, 8, "the sequence number skips them");
        assert_eq!(
            Arc::strong_count(&batch),
            3,
            "queued batches are shared, the first one is released"
        );
    }

    #[tokio::test]
    async fn batches_larger_than_the_send_window_still_go_through() {
        let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let handle = start(sink.local_addr().unwrap(), Protocol::Udp);
        let n = SEND_WINDOW as u64 + 10;
        assert!(handle.send(Command::Records(records(n))).await);
        assert!(handle.send(Command::Records(records(3))).await);
        let stopped = handle.stop(Duration::from_secs(30), never()).await.unwrap();
        assert_eq!((stopped.status.records, stopped.unsent.len()), (n + 3, 0));
    }
}
