//! The durable spool: every batch is written here before it is sent and deleted only when the
//! collector has acknowledged it. A restart or an outage replays what is left, in order.
//!
//! One file per batch, `<sequence:020>-<samples>.batch`: a 12-byte header (`VKS1`, body
//! length, CRC-32 of the body, little-endian) and the body exactly as it is pushed (gzip JSON).
//! Files are written to a temporary name, synced and renamed, so a crash leaves a whole batch
//! or none; a file that fails its length or checksum anyway (a torn write on a filesystem that
//! reorders, a bad disk) is reported, counted and skipped.
//!
//! The spool has a size bound. When a new batch would exceed it, the oldest batches are dropped
//! and counted — never silently.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The spool's directory within the agent's `spool_dir` (beside its state files).
pub const DIR: &str = "spool";

const MAGIC: &[u8; 4] = b"VKS1";
const HEADER: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("spool file {path} is damaged ({why}); skipping it")]
    Corrupt { path: PathBuf, why: String },
}

/// One spooled batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub sequence: u64,
    pub samples: u64,
    pub bytes: u64,
    pub path: PathBuf,
}

/// What had to be dropped to keep the spool within its bound.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub batches: u64,
    pub samples: u64,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    entries: VecDeque<Entry>,
    bytes: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io { path: path.to_path_buf(), source }
}

fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".batch")?;
    let (seq, samples) = stem.split_once('-')?;
    Some((seq.parse().ok()?, samples.parse().ok()?))
}

/// What waits in a spool, read without touching it (safe while the agent runs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub batches: u64,
    pub samples: u64,
    pub bytes: u64,
    /// When the oldest waiting batch was written.
    pub oldest: Option<std::time::SystemTime>,
}

/// Reads what waits in the spool in `dir`; an absent directory is an empty spool.
pub fn summary(dir: &Path) -> Result<Summary, SpoolError> {
    let mut out = Summary::default();
    let items = match std::fs::read_dir(dir) {
        Ok(items) => items,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(dir)(e)),
    };
    for item in items {
        let item = item.map_err(io(dir))?;
        let Some((_, samples)) = parse_name(&item.file_name().to_string_lossy()) else { continue };
        // A batch delivered meanwhile is simply gone.
        let Ok(meta) = item.metadata() else { continue };
        out.batches += 1;
        out.samples += samples;
        out.bytes += meta.len();
        if let Ok(written) = meta.modified() {
            out.oldest = Some(out.oldest.map_or(written, |o| o.min(written)));
        }
    }
    Ok(out)
}

impl Spool {
    /// Opens the spool in `dir`, removing temporary files an interrupted write left behind.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut entries = Vec::new();
        for item in std::fs::read_dir(dir).map_err(io(dir))? {
            let item = item.map_err(io(dir))?;
            let path = item.path();
            let name = item.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                tracing::warn!(path = %path.display(), "removing an unfinished spool write");
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some((sequence, samples)) = parse_name(&name) else { continue };
            let bytes = item.metadata().map_err(io(&path))?.len();
            entries.push(Entry { sequence, samples, bytes, path });
        }
        entries.sort_by_key(|e| e.sequence);
        let bytes = entries.iter().map(|e| e.bytes).sum();
        if !entries.is_empty() {
            tracing::info!(batches = entries.len(), bytes, "spool holds batches to replay");
        }
        Ok(Self { dir: dir.to_path_buf(), max_bytes, entries: entries.into(), bytes })
    }

    /// The highest sequence number in the spool, so numbering continues after it.
    pub fn last_sequence(&self) -> Option<u64> {
        self.entries.back().map(|e| e.sequence)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn samples(&self) -> u64 {
        self.entries.iter().map(|e| e.samples).sum()
    }

    /// Durably adds a batch body. Drops the oldest batches first if it would not fit.
    pub fn append(&mut self, sequence: u64, samples: u64, body: &[u8]) -> Result<Dropped, SpoolError> {
        let size = (HEADER + body.len()) as u64;
        let mut dropped = Dropped::default();
        while !self.entries.is_empty() && self.bytes + size > self.max_bytes {
            if let Some(e) = self.pop_front() {
                dropped.batches += 1;
                dropped.samples += e.samples;
            }
        }
        let name = format!("{sequence:020}-{samples}.batch");
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(MAGIC);
        header[4..8].copy_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
        header[8..].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&header)?;
            f.write_all(body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&self.dir)?.sync_all()
        };
        if let Err(e) = write() {
            let _ = std::fs::remove_file(&tmp);
            return Err(SpoolError::Io { path, source: e });
        }
        self.bytes += size;
        self.entries.push_back(Entry { sequence, samples, bytes: size, path });
        Ok(dropped)
    }

    pub fn front(&self) -> Option<&Entry> {
        self.entries.front()
    }

    /// The body of a spooled batch, checked against its header.
    pub fn read(&self, entry: &Entry) -> Result<Vec<u8>, SpoolError> {
        let data = std::fs::read(&entry.path).map_err(io(&entry.path))?;
        let corrupt = |why: &str| SpoolError::Corrupt { path: entry.path.clone(), why: why.to_string() };
        if data.len() < HEADER || &data[..4] != MAGIC {
            return Err(corrupt("bad header"));
        }
        let len = u32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
        let crc = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
        let body = &data[HEADER..];
        if body.len() != len {
            return Err(corrupt(&format!("length {} instead of {len}", body.len())));
        }
        if crc32fast::hash(body) != crc {
            return Err(corrupt("checksum mismatch"));
        }
        Ok(body.to_vec())
    }

    /// Removes the oldest batch (acknowledged, refused or damaged).
    pub fn pop_front(&mut self) -> Option<Entry> {
        let e = self.entries.pop_front()?;
        self.bytes = self.bytes.saturating_sub(e.bytes);
        if let Err(err) = std::fs::remove_file(&e.path) {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %e.path.display(), error = %err, "cannot remove spooled batch");
            }
        }
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_survive_reopening_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        for seq in [3u64, 4, 5] {
            spool.append(seq, seq, format!("body-{seq}").as_bytes()).unwrap();
        }
        spool.pop_front();
        drop(spool);
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.len(), 2);
        assert_eq!(spool.last_sequence(), Some(5));
        let e = spool.front().unwrap().clone();
        assert_eq!((e.sequence, e.samples), (4, 4));
        assert_eq!(spool.read(&e).unwrap(), b"body-4");
        assert_eq!(spool.samples(), 9);
    }

    #[test]
    fn the_bound_drops_the_oldest_and_says_how_much() {
        let dir = tempfile::tempdir().unwrap();
        let body = [7u8; 88]; // 100 bytes with the header
        let mut spool = Spool::open(dir.path(), 350).unwrap();
        for seq in 1..=3 {
            assert_eq!(spool.append(seq, 10, &body).unwrap(), Dropped::default());
        }
        let dropped = spool.append(4, 10, &body).unwrap();
        assert_eq!(dropped, Dropped { batches: 1, samples: 10 });
        assert_eq!(spool.front().unwrap().sequence, 2);
        assert_eq!(spool.bytes(), 300);
    }

    #[test]
    fn torn_and_damaged_files_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.append(1, 1, b"hello world").unwrap();
        spool.append(2, 1, b"second").unwrap();
        let first = spool.front().unwrap().clone();
        // Cut the file short, as a torn write would.
        let data = std::fs::read(&first.path).unwrap();
        std::fs::write(&first.path, &data[..data.len() - 3]).unwrap();
        assert!(matches!(spool.read(&first), Err(SpoolError::Corrupt { .. })));
        // Flip a byte in the body.
        let mut data = std::fs::read(&first.path).unwrap();
        data.truncate(HEADER);
        data.extend_from_slice(b"hello wOrld");
        std::fs::write(&first.path, &data).unwrap();
        let err = spool.read(&first).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        // A leftover temporary file from a crash is cleaned up on open.
        std::fs::write(dir.path().join("00000000000000000009-1.batch.tmp"), b"partial").unwrap();
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.len(), 2);
        assert!(!dir.path().join("00000000000000000009-1.batch.tmp").exists());
    }
}
