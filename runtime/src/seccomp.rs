//! The seccomp profile a container runs under: Kubernetes'
//! `RuntimeDefault`, or `Unconfined`.
//!
//! `RuntimeDefault` refuses (EPERM) the system calls containerd's default
//! profile refuses, on the same conditions: most are allowed again when the
//! container holds the capability that guards them (`mount` with
//! `CAP_SYS_ADMIN`, `reboot` with `CAP_SYS_BOOT`...), as in containerd and
//! Docker. So a default container cannot load kernel modules, make user or
//! other namespaces, touch the kernel keyring or io_uring, or read another
//! process's memory, even as root.
//!
//! Deliberate difference (docs/ARCHITECTURE.md): containerd's profile is an
//! allow-list, so a system call newer than the profile is refused; this one
//! lists what is refused, so such a call is allowed. A list of refusals
//! cannot break a program that needs an ordinary call the list forgot,
//! which an allow-list written here could.

use std::collections::HashSet;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

/// Which profile a container runs under.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Seccomp {
    /// The runtime's default profile (see the module docs).
    #[default]
    RuntimeDefault,
    /// No filter at all (`seccompProfile.type: Unconfined`, or privileged).
    Unconfined,
}

/// Refused whatever the capabilities: obsolete, or reaching into the
/// kernel in ways no container should (the keyring is not namespaced;
/// io_uring has been a steady source of kernel exploits and bypasses
/// seccomp for the operations it performs).
const ALWAYS: &[&str] = &[
    "_sysctl",
    "add_key",
    "afs_syscall",
    "create_module",
    "get_kernel_syms",
    "getpmsg",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "keyctl",
    "nfsservctl",
    "putpmsg",
    "query_module",
    "request_key",
    "security",
    "sysfs",
    "tuxcall",
    "uselib",
    "ustat",
    "vm86",
    "vm86old",
    "vserver",
];

/// Refused unless the container holds the capability (or one of them).
const GUARDED: &[(&[&str], &[&str])] = &[
    (&["CAP_SYS_MODULE"], &["delete_module", "finit_module", "init_module"]),
    (&["CAP_SYS_BOOT"], &["kexec_file_load", "kexec_load", "reboot"]),
    (&["CAP_SYS_PACCT"], &["acct"]),
    (&["CAP_SYS_RAWIO"], &["ioperm", "iopl"]),
    (&["CAP_SYS_TIME"], &["clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64", "settimeofday", "stime"]),
    (&["CAP_SYSLOG"], &["syslog"]),
    (&["CAP_SYS_TTY_CONFIG"], &["vhangup"]),
    (&["CAP_SYS_PTRACE"], &["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "userfaultfd"]),
    (&["CAP_SYS_NICE"], &["get_mempolicy", "mbind", "move_pages", "set_mempolicy", "set_mempolicy_home_node"]),
    (&["CAP_DAC_READ_SEARCH"], &["open_by_handle_at"]),
    (&["CAP_SYS_ADMIN", "CAP_BPF"], &["bpf"]),
    (&["CAP_SYS_ADMIN", "CAP_PERFMON"], &["perf_event_open"]),
    (
        &["CAP_SYS_ADMIN"],
        &[
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "pivot_root",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "swapoff",
            "swapon",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
];

/// The namespace flags `clone` may not carry without `CAP_SYS_ADMIN`:
/// NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
const CLONE_NAMESPACE_FLAGS: &[u64] = &[0x0002_0000, 0x0200_0000, 0x0400_0000, 0x0800_0000, 0x1000_0000, 0x2000_0000, 0x4000_0000];

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// The OCI seccomp section for `profile`, given the capabilities the
/// container is granted (OCI names, `CAP_...`); `None` when unconfined.
pub fn linux_seccomp(profile: Seccomp, capabilities: &HashSet<String>) -> Option<LinuxSeccomp> {
    if profile == Seccomp::Unconfined {
        return None;
    }
    let holds = |any: &[&str]| any.iter().any(|c| capabilities.contains(*c));
    let mut refused: Vec<&str> = ALWAYS.to_vec();
    for (caps, calls) in GUARDED {
        if !holds(caps) {
            refused.extend_from_slice(calls);
        }
    }
    let mut syscalls = vec![rule(&refused, EPERM, None)];
    if !holds(&["CAP_SYS_ADMIN"]) {
        // `clone` can be checked by its flags argument; `clone3` passes
        // them in memory a filter cannot read, so it answers ENOSYS and
        // the C library falls back to `clone`, as with containerd.
        for flag in CLONE_NAMESPACE_FLAGS {
            syscalls.push(rule(&["clone"], EPERM, Some(*flag)));
        }
        syscalls.push(rule(&["clone3"], ENOSYS, None));
    }
    let seccomp = LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32])
        .syscalls(syscalls)
        .build()
        .expect("every field of the seccomp section is set");
    Some(seccomp)
}

/// Refuse `names` with `errno`; with `flag`, only when the first argument
/// has that bit set.
fn rule(names: &[&str], errno: u32, flag: Option<u64>) -> LinuxSyscall {
    let mut builder = LinuxSyscallBuilder::default()
        .names(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(errno);
    if let Some(flag) = flag {
        let arg = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(flag)
            .value_two(flag)
            .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
            .build()
            .expect("every field of the argument is set");
        builder = builder.args(vec![arg]);
    }
    builder.build().expect("every field of the rule is set")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(seccomp: &LinuxSeccomp) -> HashSet<String> {
        seccomp.syscalls().iter().flatten().filter(|s| s.args().is_none() && s.errno_ret() == Some(EPERM)).flat_map(|s| s.names().clone()).collect()
    }

    #[test]
    fn default_refuses_namespaces_modules_and_the_keyring() {
        let caps: HashSet<String> = crate::bundle::DEFAULT_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect();
        let seccomp = linux_seccomp(Seccomp::RuntimeDefault, &caps).unwrap();
        let refused = refused(&seccomp);
        for call in ["unshare", "setns", "mount", "init_module", "keyctl", "bpf", "reboot", "io_uring_setup"] {
            assert!(refused.contains(call), "{call} is allowed");
        }
        for call in ["read", "write", "chroot", "clone", "socket"] {
            assert!(!refused.contains(call), "{call} is refused");
        }
        assert!(seccomp.syscalls().iter().flatten().any(|s| s.names() == &["clone3"] && s.errno_ret() == Some(ENOSYS)));
    }

    #[test]
    fn capabilities_allow_what_they_guard() {
        let caps: HashSet<String> = ["CAP_SYS_ADMIN".to_owned(), "CAP_SYS_TIME".to_owned()].into();
        let seccomp = linux_seccomp(Seccomp::RuntimeDefault, &caps).unwrap();
        let refused = refused(&seccomp);
        for call in ["mount", "unshare", "bpf", "settimeofday"] {
            assert!(!refused.contains(call), "{call} is refused despite the capability");
        }
        assert!(refused.contains("keyctl") && refused.contains("reboot"));
        assert!(!seccomp.syscalls().iter().flatten().any(|s| s.names().iter().any(|n| n.starts_with("clone"))));
    }

    #[test]
    fn unconfined_has_no_filter() {
        assert_eq!(linux_seccomp(Seccomp::Unconfined, &HashSet::new()), None);
    }
}
