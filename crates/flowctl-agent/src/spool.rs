//! The on-disk spool: flow records a graceful stop could not deliver to a
//! collector, one file per collector, sent first when that collector's task
//! starts again (the next start, or a reload that adds it back).
//!
//! A file holds the records oldest first, as many as fit in the size bound;
//! records past it are dropped and counted (the count is kept in the file,
//! so the next run reports it in the collector's exporter statistics). A
//! file is written to a temporary name, synced and renamed, so a crash
//! leaves the old file or the new one, never half of one. It is removed once
//! its records have been sent.
//!
//! Format: the magic `FLOWCTLSPOOL`, a format version and the map layout
//! version (u32 little endian each), then [`SpoolBody`] in postcard.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use flowctl_export::Endpoint;
use flowctl_model::{FlowRecord, LAYOUT_VERSION};
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 12] = b"FLOWCTLSPOOL";
const FORMAT: u32 = 1;
const HEADER_LEN: usize = MAGIC.len() + 8;

/// Where spool files live and how large each may grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spool {
    /// The spool directory.
    pub dir: PathBuf,
    /// Largest spool file, in bytes.
    pub max_bytes: u64,
}

/// Records given up on, with their packets and octets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// Records.
    pub records: u64,
    /// Their packets.
    pub packets: u64,
    /// Their octets.
    pub octets: u64,
}

impl Dropped {
    fn add(&mut self, r: &FlowRecord) {
        self.records += 1;
        self.packets += r.packets();
        self.octets += r.octets();
    }
}

/// What a spool file holds.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpoolBody {
    /// Records that did not fit, over every stop since the file was last
    /// emptied.
    pub dropped: Dropped,
    /// Undelivered records, oldest first.
    pub records: Vec<FlowRecord>,
}

/// What storing kept and dropped.
#[derive(Debug, PartialEq, Eq)]
pub struct Stored {
    /// The file written.
    pub path: PathBuf,
    /// Records kept in it.
    pub kept: usize,
    /// Records dropped now (not those an earlier stop dropped).
    pub dropped: Dropped,
}

impl Spool {
    /// The spool file of the collector at `endpoint` for observation domain
    /// `domain`.
    pub fn path_for(&self, endpoint: &Endpoint, domain: u32) -> PathBuf {
        let name: String = format!("{}-{}-d{domain}", endpoint.protocol, endpoint.address)
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
            .collect();
        self.dir.join(format!("{name}.spool"))
    }

    /// Writes `records` (oldest first) to `path`, as many as fit in the size
    /// bound; `earlier` are drops already counted for this collector.
    pub fn store(&self, path: &Path, records: &[FlowRecord], earlier: Dropped) -> io::Result<Stored> {
        let mut room = self.max_bytes.saturating_sub(HEADER_LEN as u64 + 32);
        let mut kept = 0;
        for r in records {
            let size = postcard::experimental::serialized_size(r).map_err(invalid)? as u64;
            if size > room {
                break;
            }
            room -= size;
            kept += 1;
        }
        let mut dropped = Dropped::default();
        records[kept..].iter().for_each(|r| dropped.add(r));
        let total = Dropped {
            records: earlier.records + dropped.records,
            packets: earlier.packets + dropped.packets,
            octets: earlier.octets + dropped.octets,
        };
        let body = SpoolBody {
            dropped: total,
            records: records[..kept].to_vec(),
        };
        let mut bytes = Vec::with_capacity(HEADER_LEN);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FORMAT.to_le_bytes());
        bytes.extend_from_slice(&LAYOUT_VERSION.to_le_bytes());
        let bytes = postcard::to_extend(&body, bytes).map_err(invalid)?;
        fs::create_dir_all(&self.dir)?;
        let tmp = path.with_extension("spool.tmp");
        {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode_0600()
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        Ok(Stored {
            path: path.to_path_buf(),
            kept,
            dropped,
        })
    }

    /// The records and drop count spooled at `path`, `None` if there is no
    /// file. A file of another format or layout is refused (and left alone).
    pub fn load(path: &Path) -> io::Result<Option<SpoolBody>> {
        let bytes = match fs::read(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            other => other?,
        };
        let header = bytes
            .get(..HEADER_LEN)
            .ok_or_else(|| invalid("shorter than its header"))?;
        let (magic, versions) = header.split_at(MAGIC.len());
        let version = |i: usize| {
            versions
                .get(i..i + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
        };
        if magic != MAGIC {
            return Err(invalid("not a flowctl spool file"));
        }
        if version(0) != Some(FORMAT) || version(4) != Some(LAYOUT_VERSION) {
            return Err(invalid(format!(
                "written by another flowctl (format {:?}, layout {:?}; this one reads {FORMAT}, {LAYOUT_VERSION})",
                version(0),
                version(4)
            )));
        }
        let body = postcard::from_bytes(bytes.get(HEADER_LEN..).unwrap_or_default()).map_err(invalid)?;
        Ok(Some(body))
    }

    /// Removes the spool file at `path` (its records were sent).
    pub fn remove(path: &Path) -> io::Result<()> {
        match fs::remove_file(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

fn invalid(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Owner-only files.
trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

#[cfg(test)]
mod tests {
    use flowctl_export::Protocol;
    use flowctl_model::{EndReason, FlowKey, FlowStats};

    use super::*;

    fn record(i: u16) -> FlowRecord {
        FlowRecord {
            key: FlowKey {
                src_port: i,
                protocol: 17,
                ip_version: 4,
                ..Default::default()
            },
            stats: FlowStats {
                packets: 2,
                octets: 200,
                ..Default::default()
            },
            total_packets: 2,
            total_octets: 200,
            reason: EndReason::ForcedEnd,
            ..Default::default()
        }
    }

    fn spool(max_bytes: u64) -> (Spool, PathBuf) {
        let dir = std::env::temp_dir().join(format!("flowctl-spool-test-{}-{max_bytes}", std::process::id()));
        let spool = Spool { dir, max_bytes };
        let endpoint = Endpoint {
            address: "[2001:db8::1]:4739".parse().unwrap(),
            protocol: Protocol::Udp,
            tls: None,
            local_address: None,
        };
        let path = spool.path_for(&endpoint, 7);
        (spool, path)
    }

    #[test]
    fn records_come_back_as_they_were_stored() {
        let (spool, path) = spool(1 << 20);
        assert_eq!(path.file_name().unwrap(), "udp-_2001_db8__1__4739-d7.spool");
        assert_eq!(Spool::load(&path).unwrap(), None);
        let records: Vec<_> = (0..100).map(record).collect();
        let stored = spool.store(&path, &records, Dropped::default()).unwrap();
        assert_eq!((stored.kept, stored.dropped), (100, Dropped::default()));
        let body = Spool::load(&path).unwrap().unwrap();
        assert_eq!(body.records, records);
        Spool::remove(&path).unwrap();
        assert_eq!(Spool::load(&path).unwrap(), None);
        fs::remove_dir_all(&spool.dir).unwrap();
    }

    /// The figure docs/configuration.md gives for `spool.maxBytes`.
    #[test]
    fn a_busy_ipv6_flow_takes_about_110_bytes() {
        let (spool, path) = spool(1 << 24);
        let now = 1_780_000_000_000_000_000u64;
        let records: Vec<_> = (0..1000u16)
            .map(|i| {
                let mut r = record(i);
                r.key.ip_version = 6;
                r.key.src_addr = [0xfe; 16];
                r.key.dst_addr = [0x20; 16];
                r.key.ingress_ifindex = 12;
                r.key.netns_ino = 4_026_531_840;
                r.stats.packets = 1_000_000;
                r.stats.octets = 1_400_000_000;
                r.stats.first_seen_ns = 86_400_000_000_000;
                r.stats.last_seen_ns = 86_460_000_000_000;
                r.total_packets = 50_000_000;
                r.total_octets = 70_000_000_000;
                r.start_unix_ns = now;
                r.end_unix_ns = now + 60_000_000_000;
                r
            })
            .collect();
        spool.store(&path, &records, Dropped::default()).unwrap();
        let per_record = fs::metadata(&path).unwrap().len() / 1000;
        fs::remove_dir_all(&spool.dir).unwrap();
        assert!((90..=130).contains(&per_record), "{per_record} bytes per record");
    }

    #[test]
    fn past_the_bound_the_newest_records_are_dropped_and_counted() {
        let (spool, path) = spool(600);
        let records: Vec<_> = (0..100).map(record).collect();
        let earlier = Dropped {
            records: 1,
            packets: 1,
            octets: 60,
        };
        let stored = spool.store(&path, &records, earlier).unwrap();
        assert!(stored.kept > 0 && stored.kept < 100, "{stored:?}");
        assert_eq!(stored.dropped.records, 100 - stored.kept as u64);
        assert!(fs::metadata(&path).unwrap().len() <= 600);
        let body = Spool::load(&path).unwrap().unwrap();
        assert_eq!(body.records, records[..stored.kept]);
        assert_eq!(body.dropped.records, 1 + stored.dropped.records);
        assert_eq!(body.dropped.octets, 60 + 200 * stored.dropped.records);
        fs::remove_dir_all(&spool.dir).unwrap();
    }

    #[test]
    fn a_file_of_another_layout_is_refused() {
        let (spool, path) = spool(1 << 16);
        fs::create_dir_all(&spool.dir).unwrap();
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&FORMAT.to_le_bytes());
        bytes.extend_from_slice(&(LAYOUT_VERSION + 1).to_le_bytes());
        fs::write(&path, bytes).unwrap();
        let e = Spool::load(&path).unwrap_err().to_string();
        assert!(e.contains("written by another flowctl"), "{e}");
        fs::write(&path, b"junk").unwrap();
        assert!(Spool::load(&path).is_err());
        fs::remove_dir_all(&spool.dir).unwrap();
    }
}
