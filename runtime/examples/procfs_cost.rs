//! Benchmark: what one of libcontainer's `/proc` lookups costs, beside a
//! plain open of the same file.
//!
//! libcontainer 0.7 reaches `/proc` through `pathrs`, which checks on every
//! lookup that what it opens is a real procfs (and not something mounted
//! over it), and libcgroups reads and parses the whole mount table again
//! for each cgroup v1 controller. A container start does this 70 and 16
//! times (counted with strace, docs/benchmarks.md); this times one of each,
//! in this process, with the same crates at the versions libcontainer uses.
//!
//! Run: `cargo run --release -p driftless-runtime --example procfs_cost [N]`
//! (any user; N rounds of each, 2000 by default).

use std::io::{BufRead, BufReader};
use std::time::Instant;

use pathrs::flags::OpenFlags;
use pathrs::procfs::{ProcfsBase, ProcfsHandle, ProcfsHandleBuilder};

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let flags = OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC;
    let per_round = |what: &str, mut once: Box<dyn FnMut()>| {
        let started = Instant::now();
        for _ in 0..n {
            once();
        }
        println!("{what}: {:.1} µs", started.elapsed().as_secs_f64() * 1e6 / f64::from(n));
    };
    per_round("open /proc/self/mountinfo, plain", Box::new(|| drop(std::fs::File::open("/proc/self/mountinfo").expect("mountinfo"))));
    per_round(
        "open /proc/self/mountinfo through a checked procfs handle (libcontainer's lookup)",
        Box::new(move || drop(ProcfsHandle::new().and_then(|p| p.open(ProcfsBase::ProcSelf, "mountinfo", flags)).expect("mountinfo"))),
    );
    let lines = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo").lines().count();
    per_round(
        &format!("read and parse the mount table ({lines} lines) through such a handle (libcgroups' lookup of one controller)"),
        Box::new(move || {
            let file = ProcfsHandle::new().and_then(|p| p.open(ProcfsBase::ProcSelf, "mountinfo", flags)).expect("mountinfo");
            let parsed: Vec<procfs::process::MountInfo> =
                BufReader::new(file).lines().map(|l| procfs::process::MountInfo::from_line(&l.expect("a line")).expect("a mount")).collect();
            assert_eq!(parsed.len(), lines);
        }),
    );
    per_round(
        "a procfs instance of its own (fsopen, fsmount: libcontainer's unmasked handle)",
        Box::new(|| drop(ProcfsHandleBuilder::new().unmasked().build().expect("procfs"))),
    );
}
