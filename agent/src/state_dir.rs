//! The agent's state directory: cached assignments and the batch sequence counter. Files are
//! written to a temporary name, synced and renamed, so a crash leaves the old or the new
//! version, never half of one.

use std::io::Write;
use std::path::{Path, PathBuf};
use vakt_config::wire::Assignments;

/// Sequence numbers are reserved in blocks: the file holds the end of the current block, so it
/// is written once per block and a restart continues after it, never reusing a number.
pub const SEQUENCE_BLOCK: u64 = 1000;

#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct StateError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

pub struct StateDir {
    dir: PathBuf,
}

/// The assignments cached in the state directory `dir`, read without creating anything (for
/// `vakt-agent status` beside a running agent too).
pub fn cached_assignments(dir: &Path) -> Option<Assignments> {
    let path = dir.join("assignments.json");

    let text = std::fs::read(&path).ok()?;
    match serde_json::from_slice(&text) {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable assignment cache");
            None
        }
    }
}

impl StateDir {
    pub fn open(dir: &Path) -> Result<Self, StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError { path: dir.to_path_buf(), source })?;
        Ok(Self { dir: dir.to_path_buf() })
    }

    fn write_atomic(&self, name: &str, data: &[u8]) -> Result<(), StateError> {
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let err = |source| StateError { path: path.clone(), source };
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(data).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    pub fn load_assignments(&self) -> Option<Assignments> {
        cached_assignments(&self.dir)
    }

    pub fn save_assignments(&self, a: &Assignments) -> Result<(), StateError> {
        let json = serde_json::to_vec_pretty(a)
            .map_err(|e| StateError { path: self.dir.join("assignments.json"), source: e.into() })?;
        self.write_atomic("assignments.json", &json)
    }

    /// This state directory's instance id: made (random) the first time, then kept. Every
    /// batch carries it, so the collector tells the sequence numbers of a new state directory
    /// (starting at 1 again) from replays of the old one.
    pub fn instance(&self) -> Result<String, StateError> {
        let path = self.dir.join("instance");
        if let Some(id) =
            std::fs::read_to_string(&path).ok().map(|s| s.trim().to_string()).filter(|s| valid_instance(s))
        {
            return Ok(id);
        }
        let id = format!("{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>());
        self.write_atomic("instance", id.as_bytes())?;
        Ok(id)
    }

    /// A sequence counter continuing after everything used before.
    pub fn sequence(&self) -> Result<Sequence, StateError> {
        let path = self.dir.join("sequence");
        let reserved = std::fs::read_to_string(&path).ok().and_then(|s| s.trim().parse::<u64>().ok()).unwrap_or(0);
        Ok(Sequence { next: reserved + 1, reserved_to: reserved })
    }

    pub fn reserve(&self, seq: &mut Sequence) -> Result<u64, StateError> {
        if seq.next > seq.reserved_to {
            let end = seq.next + SEQUENCE_BLOCK - 1;
            self.write_atomic("sequence", end.to_string().as_bytes())?;
            seq.reserved_to = end;
        }
        let n = seq.next;
        seq.next += 1;
        Ok(n)
    }
}

/// An instance id as the agent makes it: 32 lowercase hex digits.
fn valid_instance(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[derive(Debug)]
pub struct Sequence {
    next: u64,
    reserved_to: u64,
}

impl Sequence {
    /// Never hand out `last` or anything below it (the spool holds it).
    pub fn continue_after(&mut self, last: u64) {
        if self.next <= last {
            self.next = last + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_never_repeat_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let mut seq = state.sequence().unwrap();
        let first: Vec<u64> = (0..5).map(|_| state.reserve(&mut seq).unwrap()).collect();
        assert_eq!(first, [1, 2, 3, 4, 5]);
        // A restart (crash) continues after the reserved block.
        let state = StateDir::open(dir.path()).unwrap();
        let mut seq = state.sequence().unwrap();
        let next = state.reserve(&mut seq).unwrap();
        assert_eq!(next, SEQUENCE_BLOCK + 1);
    }

    #[test]
    fn the_instance_is_made_once_and_a_new_directory_gets_another() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateDir::open(dir.path()).unwrap().instance().unwrap();
        assert_eq!(StateDir::open(dir.path()).unwrap().instance().unwrap(), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(StateDir::open(other.path()).unwrap().instance().unwrap(), first);
    }

    #[test]
    fn assignments_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        assert!(state.load_assignments().is_none());
        let a = Assignments { agent: "a".into(), checks: vec![], refused_local: vec![], accepts: vec![] };
        state.save_assignments(&a).unwrap();
        assert_eq!(state.load_assignments(), Some(a));
    }
}
