//! Address allocation from the pod CIDR, one file per address (as CNI's
//! host-local plugin does): `create_new` makes double allocation impossible
//! even across processes, and the files survive daemon restarts.
//!
//! The folder is read once, on first use, into an index of who holds what;
//! after that an allocation or a lookup touches one or two files, not all
//! of them (at 100 pods, reading every file on each start cost more than
//! the rest of the address work; docs/benchmarks.md). The index trusts the
//! folder for what this allocator did not write itself only as far as
//! `create_new` does: one allocator per folder is the node's, and another
//! one over the same folder sees its files when it starts.
//!
//! Must not touch: interfaces or routes (`netlink`), the pod's sandbox.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use ipnet::Ipv4Net;

/// Allocates pod addresses from one CIDR.
#[derive(Clone, Debug)]
pub struct Ipam {
    dir: PathBuf,
    cidr: Ipv4Net,
    /// The folder's allocations, read on first use (None until then).
    held: Arc<Mutex<Option<Index>>>,
}

/// Why an address could not be allocated or released.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// Every address of the CIDR is taken.
    #[error("no free address left in {0}")]
    Exhausted(Ipv4Net),
    /// The allocation folder could not be used.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The file naming the last address handed out.
const LAST: &str = "last-reserved";

/// Who holds which address, as the folder says.
#[derive(Debug, Default)]
struct Index {
    by_owner: HashMap<String, Ipv4Addr>,
    taken: HashSet<Ipv4Addr>,
    last: Option<Ipv4Addr>,
}

fn io(path: PathBuf) -> impl FnOnce(std::io::Error) -> IpamError {
    move |source| IpamError::Io { path, source }
}

impl Ipam {
    /// An allocator for `cidr` keeping its records in `dir`.
    pub fn new(dir: impl Into<PathBuf>, cidr: Ipv4Net) -> Ipam {
        Ipam { dir: dir.into(), cidr: cidr.trunc(), held: Arc::default() }
    }

    /// The gateway: the CIDR's first host address, which the bridge holds.
    pub fn gateway(&self) -> Ipv4Addr {
        self.cidr.hosts().next().unwrap_or(self.cidr.network())
    }

    /// The CIDR.
    pub fn cidr(&self) -> Ipv4Net {
        self.cidr
    }

    /// The address of `owner`, allocating one if it has none. Asking again
    /// returns the same address, so a restarted caller can simply ask.
    pub fn allocate(&self, owner: &str) -> Result<Ipv4Addr, IpamError> {
        let mut guard = self.loaded()?;
        let index = guard.as_mut().expect("read by Ipam::loaded");
        if let Some(existing) = self.held_by(index, owner) {
            return Ok(existing);
        }
        // Round robin from the last address handed out, as host-local IPAM
        // does: a released address is reused last, so a client still
        // talking to the pod that had it reaches nothing rather than a
        // stranger.
        let hosts: Vec<Ipv4Addr> = self.cidr.hosts().skip(1).collect();
        let start = index.last.and_then(|l| hosts.iter().position(|h| *h == l)).map_or(0, |i| i + 1);
        for ip in hosts[start..].iter().chain(hosts[..start].iter()).copied() {
            if index.taken.contains(&ip) {
                continue;
            }
            let path = self.dir.join(ip.to_string());
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    // Not synced: a power cut, the only loss that skips the
                    // page cache, also ends every pod that held an address,
                    // and a record it left empty is reclaimed on the next
                    // start (Ipam::loaded). The sync cost 0.4 ms of every
                    // pod's start.
                    if let Err(source) = file.write_all(owner.as_bytes()) {
                        let _ = std::fs::remove_file(&path);
                        return Err(IpamError::Io { path, source });
                    }
                    index.by_owner.insert(owner.to_owned(), ip);
                    index.taken.insert(ip);
                    index.last = Some(ip);
                    // Only a hint: losing it costs an earlier reuse, never a
                    // duplicate (the address file is the allocation).
                    let _ = std::fs::write(self.dir.join(LAST), ip.to_string());
                    return Ok(ip);
                }
                // Another process's, or made behind our back: skip it.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    index.taken.insert(ip);
                }
                Err(e) => return Err(IpamError::Io { path, source: e }),
            }
        }
        Err(IpamError::Exhausted(self.cidr))
    }

    /// The address allocated to `owner`, if any.
    pub fn address_of(&self, owner: &str) -> Result<Option<Ipv4Addr>, IpamError> {
        let mut guard = self.loaded()?;
        let index = guard.as_mut().expect("read by Ipam::loaded");
        Ok(self.held_by(index, owner))
    }

    /// Releases the address of `owner`; releasing twice is fine.
    pub fn release(&self, owner: &str) -> Result<(), IpamError> {
        let mut guard = self.loaded()?;
        let index = guard.as_mut().expect("read by Ipam::loaded");
        if let Some(ip) = index.by_owner.remove(owner) {
            let path = self.dir.join(ip.to_string());
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    index.by_owner.insert(owner.to_owned(), ip);
                    return Err(IpamError::Io { path, source: e });
                }
                _ => {
                    index.taken.remove(&ip);
                }
            }
        }
        Ok(())
    }

    /// `owner`'s address if its file still names it: a file removed or
    /// rewritten behind the index's back is forgotten, not trusted.
    fn held_by(&self, index: &mut Index, owner: &str) -> Option<Ipv4Addr> {
        let ip = *index.by_owner.get(owner)?;
        match std::fs::read(self.dir.join(ip.to_string())) {
            Ok(held) if held == owner.as_bytes() => Some(ip),
            Ok(_) => {
                index.by_owner.remove(owner);
                None
            }
            Err(_) => {
                index.by_owner.remove(owner);
                index.taken.remove(&ip);
                None
            }
        }
    }

    /// The index, read from the folder the first time. An empty record (a
    /// power cut before its owner reached the disk) holds nobody's address
    /// and is removed.
    fn loaded(&self) -> Result<MutexGuard<'_, Option<Index>>, IpamError> {
        let mut guard = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_some() {
            return Ok(guard);
        }
        std::fs::create_dir_all(&self.dir).map_err(io(self.dir.clone()))?;
        let mut index = Index::default();
        for entry in std::fs::read_dir(&self.dir).map_err(io(self.dir.clone()))? {
            let entry = entry.map_err(io(self.dir.clone()))?;
            let Ok(ip) = entry.file_name().to_string_lossy().parse::<Ipv4Addr>() else { continue };
            let owner = std::fs::read_to_string(entry.path()).map_err(io(entry.path()))?;
            if owner.is_empty() {
                std::fs::remove_file(entry.path()).map_err(io(entry.path()))?;
                continue;
            }
            index.taken.insert(ip);
            // Two files naming one owner cannot come from this allocator;
            // both stay taken, and the owner gets the lower.
            let held = index.by_owner.entry(owner).or_insert(ip);
            *held = (*held).min(ip);
        }
        index.last = std::fs::read_to_string(self.dir.join(LAST)).ok().and_then(|t| t.trim().parse().ok());
        *guard = Some(index);
        Ok(guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_each_address_once_and_survives_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let cidr: Ipv4Net = "10.244.0.0/29".parse().unwrap();
        let ipam = Ipam::new(dir.path(), cidr);
        assert_eq!(ipam.gateway(), Ipv4Addr::new(10, 244, 0, 1));
        let a = ipam.allocate("pod-a").unwrap();
        let b = ipam.allocate("pod-b").unwrap();
        assert_eq!((a, b), (Ipv4Addr::new(10, 244, 0, 2), Ipv4Addr::new(10, 244, 0, 3)));
        // A new allocator over the same folder (a restarted daemon) agrees.
        let again = Ipam::new(dir.path(), cidr);
        assert_eq!(again.allocate("pod-a").unwrap(), a);
        assert_eq!(again.address_of("pod-b").unwrap(), Some(b));
        for owner in ["c", "d", "e"] {
            again.allocate(owner).unwrap();
        }
        // .1 is the gateway and .7 the broadcast address: /29 holds 5 pods.
        assert!(matches!(again.allocate("f"), Err(IpamError::Exhausted(_))));
        again.release("pod-b").unwrap();
        again.release("pod-b").unwrap();
        assert_eq!(again.address_of("pod-b").unwrap(), None);
        assert_eq!(again.allocate("f").unwrap(), b);
        // What the folder says after all that is what a third one reads.
        let third = Ipam::new(dir.path(), cidr);
        assert_eq!(third.address_of("f").unwrap(), Some(b));
        assert_eq!(third.address_of("pod-a").unwrap(), Some(a));
    }

    #[test]
    fn released_addresses_are_reused_last() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(dir.path(), "10.244.0.0/28".parse().unwrap());
        let a = ipam.allocate("a").unwrap();
        let b = ipam.allocate("b").unwrap();
        ipam.release("a").unwrap();
        let c = ipam.allocate("c").unwrap();
        assert!(c != a && c > b, "the next address after the last one, not the freed one: {c}");
    }

    #[test]
    fn a_record_left_empty_by_a_power_cut_is_reclaimed_on_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let cidr: Ipv4Net = "10.244.0.0/30".parse().unwrap();
        // /30 has one pod address (.2), and a power cut left its file empty.
        std::fs::write(dir.path().join("10.244.0.2"), "").unwrap();
        let ipam = Ipam::new(dir.path(), cidr);
        assert_eq!(ipam.allocate("pod-a").unwrap(), Ipv4Addr::new(10, 244, 0, 2));
        assert_eq!(std::fs::read_to_string(dir.path().join("10.244.0.2")).unwrap(), "pod-a");
    }

    #[test]
    fn a_file_changed_behind_the_index_is_believed_over_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(dir.path(), "10.244.0.0/28".parse().unwrap());
        let a = ipam.allocate("a").unwrap();
        // Removed by hand: "a" holds nothing, and asking again allocates.
        std::fs::remove_file(dir.path().join(a.to_string())).unwrap();
        assert_eq!(ipam.address_of("a").unwrap(), None);
        let again = ipam.allocate("a").unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join(again.to_string())).unwrap(), "a");
        // Made by another process: never handed out twice.
        let next = Ipv4Addr::from(u32::from(again) + 1);
        std::fs::write(dir.path().join(next.to_string()), "someone-else").unwrap();
        let b = ipam.allocate("b").unwrap();
        assert_ne!(b, next);
        assert_eq!(std::fs::read_to_string(dir.path().join(next.to_string())).unwrap(), "someone-else");
    }
}
