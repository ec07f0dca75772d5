//! The decoders of the exporters `flowctl collect` hears over UDP: one per
//! source address, up to a capacity, the idle ones expired
//! and the least recently heard evicted when a new one comes.

use std::{
    collections::HashMap,
    net::SocketAddr,
    time::{Duration, Instant},
};

use flowctl_ipfix::Decoder;

/// A bounded table of decoders by exporter address.
pub struct Exporters {
    decoders: HashMap<SocketAddr, (Decoder, Instant)>,
    capacity: usize,
    idle: Duration,
    evicted: u64,
}

impl Exporters {
    /// A table of at most `capacity` exporters, forgetting one silent for
    /// `idle`.
    pub fn new(capacity: usize, idle: Duration) -> Self {
        Self {
            decoders: HashMap::new(),
            capacity: capacity.max(1),
            idle,
            evicted: 0,
        }
    }

    /// Exporters remembered now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.decoders.len()
    }

    /// Exporters forgotten while still active, to make room.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// The decoder of `from`, heard at `now`: a new one (making room if the
    /// table is full) for an exporter not remembered.
    pub fn decoder(&mut self, from: SocketAddr, now: Instant) -> &mut Decoder {
        if !self.decoders.contains_key(&from) && self.decoders.len() >= self.capacity {
            self.make_room(now);
        }
        let entry = self.decoders.entry(from).or_insert_with(|| (Decoder::new(), now));
        entry.1 = now;
        &mut entry.0
    }

    /// Forgets the exporters idle at `now`, or else the least recently heard.
    fn make_room(&mut self, now: Instant) {
        let idle = self.idle;
        self.decoders
            .retain(|_, (_, seen)| now.saturating_duration_since(*seen) < idle);
        if self.decoders.len() < self.capacity {
            return;
        }
        let oldest = self.decoders.iter().min_by_key(|(_, (_, seen))| *seen).map(|(a, _)| *a);
        if let Some(oldest) = oldest {
            self.decoders.remove(&oldest);
            self.evicted += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn the_table_never_exceeds_its_capacity_and_evicts_the_oldest() {
        let start = Instant::now();
        let mut table = Exporters::new(3, Duration::from_secs(600));
        for port in 1..=3 {
            table.decoder(addr(port), start + Duration::from_secs(u64::from(port)));
        }
        // Port 1 is heard again: port 2 is now the least recent.
        table.decoder(addr(1), start + Duration::from_secs(10));
        table.decoder(addr(4), start + Duration::from_secs(11));
        assert_eq!((table.len(), table.evicted()), (3, 1));
        assert!(table.decoders.contains_key(&addr(1)));
        assert!(!table.decoders.contains_key(&addr(2)));
        for port in 5..1000 {
            table.decoder(addr(port), start + Duration::from_secs(12));
            assert!(table.len() <= 3);
        }
    }

    #[test]
    fn idle_exporters_go_first_and_are_not_counted_as_evicted() {
        let start = Instant::now();
        let mut table = Exporters::new(2, Duration::from_secs(60));
        table.decoder(addr(1), start);
        table.decoder(addr(2), start);
        table.decoder(addr(3), start + Duration::from_secs(61));
        assert_eq!((table.len(), table.evicted()), (1, 0));
    }

    #[test]
    fn an_exporter_keeps_its_templates_between_messages() {
        let start = Instant::now();
        let mut table = Exporters::new(2, Duration::from_secs(60));
        let template = [
            0, 10, 0, 28, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // header, domain 1
            0, 2, 0, 12, 1, 0, 0, 1, 0, 2, 0, 8, // template 256: packetDeltaCount
        ];
        table.decoder(addr(1), start).decode(&template).unwrap();
        let data = [
            0, 10, 0, 28, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 7,
        ];
        let decoded = table.decoder(addr(1), start).decode(&data).unwrap();
        assert_eq!(decoded.records[0].unsigned("packetDeltaCount"), Some(7));
        assert_eq!(table.decoder(addr(1), start).template_fields(), 1);
    }
}
