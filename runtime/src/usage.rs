//! Reading what containers and the machine use: each container's cgroup
//! counters (cgroup v1's `cpuacct` and `memory` controllers, or v2's
//! unified files, whichever holds the container) and the machine's from
//! `/proc`.
//!
//! Working set is kubelet's definition: memory in use minus the inactive
//! file cache (v1 `total_inactive_file`, v2 `inactive_file`). The machine's
//! is `MemTotal - MemAvailable` from `/proc/meminfo`, the kernel's own
//! estimate of what it cannot reclaim; kubelet reads the root cgroup
//! instead, which on a hybrid host does not count every process.
//!
//! Must not touch: anything but reading; the roots are given so tests read
//! folders they made.

use std::path::{Path, PathBuf};

use driftless_nodeapi::NodeUsage;

/// Nanoseconds in one `USER_HZ` tick of `/proc/stat` (100 per second on
/// every Linux architecture's ABI).
const NANOS_PER_TICK: u64 = 10_000_000;

/// Where the counters are: the cgroup mount and `/proc`.
#[derive(Clone, Debug)]
pub struct Counters {
    cgroup: PathBuf,
    proc: PathBuf,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters::at("/sys/fs/cgroup", "/proc")
    }
}

/// The value of `key` in a `key value` per line file (`memory.stat`,
/// `cpu.stat`).
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl Counters {
    /// Counters under `cgroup` (a cgroup mount) and `proc`.
    pub fn at(cgroup: impl Into<PathBuf>, proc: impl Into<PathBuf>) -> Counters {
        Counters { cgroup: cgroup.into(), proc: proc.into() }
    }

    /// The CPU time (nanoseconds) and memory working set (bytes) of the
    /// cgroup at `path` (relative to each hierarchy), v1 first.
    pub fn cgroup(&self, path: &str) -> Option<(u64, u64)> {
        let relative = path.trim_start_matches('/');
        let v1_cpu = self.cgroup.join("cpuacct").join(relative).join("cpuacct.usage");
        if let Some(cpu) = read_u64(&v1_cpu) {
            let memory = self.cgroup.join("memory").join(relative);
            let used = read_u64(&memory.join("memory.usage_in_bytes")).unwrap_or(0);
            let stat = std::fs::read_to_string(memory.join("memory.stat")).unwrap_or_default();
            let inactive = field(&stat, "total_inactive_file").unwrap_or(0);
            return Some((cpu, used.saturating_sub(inactive)));
        }
        let unified = self.cgroup.join(relative);
        let cpu = field(&std::fs::read_to_string(unified.join("cpu.stat")).ok()?, "usage_usec")?.saturating_mul(1_000);
        let used = read_u64(&unified.join("memory.current")).unwrap_or(0);
        let stat = std::fs::read_to_string(unified.join("memory.stat")).unwrap_or_default();
        Some((cpu, used.saturating_sub(field(&stat, "inactive_file").unwrap_or(0))))
    }

    /// The machine's CPU time and memory working set.
    pub fn machine(&self) -> Option<NodeUsage> {
        let stat = std::fs::read_to_string(self.proc.join("stat")).ok()?;
        let ticks: Vec<u64> = stat.lines().next()?.strip_prefix("cpu ")?.split_whitespace().filter_map(|v| v.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal: busy is all but
        // idle and iowait (guest time is already in user).
        let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|i| ticks.get(*i)).sum();
        let meminfo = std::fs::read_to_string(self.proc.join("meminfo")).ok()?;
        let kib = |key: &str| meminfo.lines().find_map(|l| l.strip_prefix(key)?.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
        let working_set = kib("MemTotal:")?.saturating_sub(kib("MemAvailable:")?).saturating_mul(1024);
        Some(NodeUsage { cpu_nanoseconds: busy.saturating_mul(NANOS_PER_TICK), memory_working_set: working_set })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: PathBuf, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn cgroup_v1_counters_and_working_set() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path().join("cpuacct/driftless/pod/c1/cpuacct.usage"), "1500000000\n");
        write(dir.path().join("memory/driftless/pod/c1/memory.usage_in_bytes"), "10485760\n");
        write(dir.path().join("memory/driftless/pod/c1/memory.stat"), "cache 100\ninactive_file 7\ntotal_inactive_file 2097152\n");
        let counters = Counters::at(dir.path(), dir.path());
        assert_eq!(counters.cgroup("/driftless/pod/c1"), Some((1_500_000_000, 8_388_608)));
        assert_eq!(counters.cgroup("/driftless/pod/gone"), None);
    }

    #[test]
    fn cgroup_v2_counters_and_working_set() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path().join("driftless/pod/c1/cpu.stat"), "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n");
        write(dir.path().join("driftless/pod/c1/memory.current"), "4096\n");
        write(dir.path().join("driftless/pod/c1/memory.stat"), "anon 1\nfile 2\ninactive_file 1024\n");
        assert_eq!(Counters::at(dir.path(), dir.path()).cgroup("driftless/pod/c1"), Some((2_500_000, 3072)));
    }

    #[test]
    fn the_machine_from_proc() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path().join("stat"), "cpu  100 5 50 1000 20 3 2 1 0 0\ncpu0 1 2 3\n");
        write(dir.path().join("meminfo"), "MemTotal:       24000 kB\nMemFree:        1000 kB\nMemAvailable:   20000 kB\n");
        let usage = Counters::at(dir.path(), dir.path()).machine().unwrap();
        assert_eq!(usage, NodeUsage { cpu_nanoseconds: 161 * NANOS_PER_TICK, memory_working_set: 4000 * 1024 });
        // And the real one reads.
        assert!(Counters::default().machine().is_some_and(|u| u.cpu_nanoseconds > 0 && u.memory_working_set > 0));
    }
}
