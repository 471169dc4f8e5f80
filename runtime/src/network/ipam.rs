//! Address allocation from the pod CIDR, one file per address (as CNI's
//! host-local plugin does): `create_new` makes double allocation impossible
//! even across processes, and the files survive daemon restarts.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use ipnet::Ipv4Net;

/// Allocates pod addresses from one CIDR.
#[derive(Clone, Debug)]
pub struct Ipam {
    dir: PathBuf,
    cidr: Ipv4Net,
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

impl Ipam {
    /// An allocator for `cidr` keeping its records in `dir`.
    pub fn new(dir: impl Into<PathBuf>, cidr: Ipv4Net) -> Ipam {
        Ipam { dir: dir.into(), cidr: cidr.trunc() }
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
        let io = |path: PathBuf| move |source| IpamError::Io { path, source };
        std::fs::create_dir_all(&self.dir).map_err(io(self.dir.clone()))?;
        if let Some(existing) = self.address_of(owner)? {
            return Ok(existing);
        }
        // Round robin from the last address handed out, as host-local IPAM
        // does: a released address is reused last, so a client still
        // talking to the pod that had it reaches nothing rather than a
        // stranger.
        let hosts: Vec<Ipv4Addr> = self.cidr.hosts().skip(1).collect();
        let last = std::fs::read_to_string(self.dir.join(LAST)).ok().and_then(|t| t.trim().parse::<Ipv4Addr>().ok());
        let start = last.and_then(|l| hosts.iter().position(|h| *h == l)).map_or(0, |i| i + 1);
        for ip in hosts[start..].iter().chain(hosts[..start].iter()).copied() {
            let path = self.dir.join(ip.to_string());
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    file.write_all(owner.as_bytes()).and_then(|_| file.sync_all()).map_err(io(path))?;
                    // Only a hint: losing it costs an earlier reuse, never a
                    // duplicate (the address file is the allocation).
                    let _ = std::fs::write(self.dir.join(LAST), ip.to_string());
                    return Ok(ip);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(IpamError::Io { path, source: e }),
            }
        }
        Err(IpamError::Exhausted(self.cidr))
    }

    /// The address allocated to `owner`, if any.
    pub fn address_of(&self, owner: &str) -> Result<Option<Ipv4Addr>, IpamError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(IpamError::Io { path: self.dir.clone(), source }),
        };
        for entry in entries.flatten() {
            let Ok(ip) = entry.file_name().to_string_lossy().parse::<Ipv4Addr>() else { continue };
            if std::fs::read_to_string(entry.path()).is_ok_and(|o| o == owner) {
                return Ok(Some(ip));
            }
        }
        Ok(None)
    }

    /// Releases the address of `owner`; releasing twice is fine.
    pub fn release(&self, owner: &str) -> Result<(), IpamError> {
        if let Some(ip) = self.address_of(owner)? {
            let path = self.dir.join(ip.to_string());
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(IpamError::Io { path, source: e }),
                _ => {}
            }
        }
        Ok(())
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
        for owner in ["c", "d", "e"] {
            again.allocate(owner).unwrap();
        }
        // .1 is the gateway and .7 the broadcast address: /29 holds 5 pods.
        assert!(matches!(again.allocate("f"), Err(IpamError::Exhausted(_))));
        again.release("pod-b").unwrap();
        again.release("pod-b").unwrap();
        assert_eq!(again.allocate("f").unwrap(), b);
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
}
