//! What a default container may do, seen from inside it, side by side with
//! the same probe under `crun` (Debian's) with `crun spec`'s defaults.
//!
//! The expected values are containerd's, which Kubernetes users run on:
//! its 14 default capabilities, its masked and read-only paths, a device
//! cgroup that denies everything but the standard devices, and
//! `no_new_privs` only for `allowPrivilegeEscalation: false`. crun is the
//! reference for what an OCI runtime's defaults give; where containerd asks
//! for more (capabilities, two more masked paths) the probe shows both.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use driftless_runtime::ContainerConfig;
use driftless_runtime::bundle::{DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS};

use crate::{DEADLINE, Node};

/// Prints one `key value` line per fact: capability sets, no_new_privs and
/// seccomp from /proc; for each masked path how much of it can be read;
/// for each read-only path its mount options; and how many bytes of the
/// host's root disk can be read through a node made with mknod, and
/// through one the image itself shipped.
fn probe_script(disk: (u64, u64)) -> String {
    let masked = MASKED_PATHS.join(" ");
    let readonly = READONLY_PATHS.join(" ");
    format!(
        r#"b=/bin/busybox
$b grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' /proc/self/status | $b tr -d '\t' | $b sed 's/:/ /'
for p in {masked}; do
  if [ -d "$p" ]; then echo "masked $p entries=$($b ls -A "$p" | $b wc -l)"
  elif [ -e "$p" ]; then echo "masked $p bytes=$($b head -c 64 "$p" 2>/dev/null | $b wc -c)"
  else echo "masked $p absent"; fi
done
for p in {readonly}; do
  echo "readonly $p $($b awk -v p="$p" '$5 == p {{ split($6, o, ","); print o[1] }}' /proc/self/mountinfo | $b tail -n 1)"
done
if $b mknod /tmp/disk b {major} {minor} 2>/dev/null; then echo "mknod-disk $($b head -c 512 /tmp/disk 2>/dev/null | $b wc -c)"
else echo "mknod-disk refused"; fi
echo "image-disk $($b head -c 512 /image-disk 2>/dev/null | $b wc -c)"
"#,
        major = disk.0,
        minor = disk.1,
    )
}

/// The device the host's root filesystem is on (a real disk on this VM).
fn root_disk() -> (u64, u64) {
    let dev = nix::sys::stat::stat("/").unwrap().st_dev;
    (nix::sys::stat::major(dev), nix::sys::stat::minor(dev))
}

/// Adds to `rootfs` what the probe needs beyond busybox: the host disk's
/// node, as a layer could ship it (the image store unpacks device nodes
/// as containerd does; the device cgroup is what stops their use).
fn prepare(rootfs: &Path, disk: (u64, u64)) {
    let dev = nix::sys::stat::makedev(disk.0, disk.1);
    nix::sys::stat::mknod(&rootfs.join("image-disk"), nix::sys::stat::SFlag::S_IFBLK, nix::sys::stat::Mode::from_bits_truncate(0o666), dev).unwrap();
}

fn facts(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|l| l.split_once(" stdout F ").map_or(Some(l), |(_, rest)| Some(rest)))
        .filter_map(|l| {
            let (key, value) = l.split_once(' ')?;
            // Two-word keys: `masked /proc/kcore`, `readonly /proc/sys`.
            if key == "masked" || key == "readonly" {
                let (path, value) = value.split_once(' ').unwrap_or((value, ""));
                return Some((format!("{key} {path}"), value.to_owned()));
            }
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// The capability mask of `names`, as /proc prints it.
fn mask(names: &[&str]) -> String {
    let numbers: BTreeMap<&str, u32> = [
        ("CAP_CHOWN", 0),
        ("CAP_DAC_OVERRIDE", 1),
        ("CAP_FOWNER", 3),
        ("CAP_FSETID", 4),
        ("CAP_KILL", 5),
        ("CAP_SETGID", 6),
        ("CAP_SETUID", 7),
        ("CAP_SETPCAP", 8),
        ("CAP_NET_BIND_SERVICE", 10),
        ("CAP_NET_RAW", 13),
        ("CAP_SYS_CHROOT", 18),
        ("CAP_MKNOD", 27),
        ("CAP_AUDIT_WRITE", 29),
        ("CAP_SETFCAP", 31),
    ]
    .into();
    let bits = names.iter().fold(0u64, |m, n| m | 1 << numbers[n]);
    format!("{bits:016x}")
}

/// Runs `script` in `rootfs` under crun, with `crun spec`'s configuration
/// (the root made writable for the probe's mknod, the terminal off).
fn run_under_crun(node: &Node, rootfs: &Path, script: &str) -> String {
    let bundle = node.dir.path().join("crun-bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let spec = Command::new("crun").arg("spec").current_dir(&bundle).output().expect("crun (Debian's package; scripts/setup.sh installs it)");
    assert!(spec.status.success(), "crun spec: {}", String::from_utf8_lossy(&spec.stderr));
    let path = bundle.join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["/bin/sh", "-c", script]);
    config["root"] = serde_json::json!({"path": rootfs, "readonly": false});
    config["linux"]["cgroupsPath"] = format!("/{}/crun-probe", node.cgroup_parent).into();
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    // crun reads this hybrid host's unified hierarchy as cgroup v2: hide
    // it in a mount namespace of crun's own, as bench's start_latency does.
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", "umount /sys/fs/cgroup/unified 2>/dev/null; exec crun run -b \"$0\" driftless-probe"])
        .arg(&bundle)
        .output()
        .unwrap();
    let _ = Command::new("crun").args(["delete", "-f", "driftless-probe"]).output();
    assert!(out.status.success(), "crun run: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_default_container_gets_containerds_defaults_and_no_host_devices() {
    let node = Node::new("defaults");
    let disk = root_disk();
    let script = probe_script(disk);

    let config = node.config("c-defaults", &script);
    prepare(&config.rootfs, disk);
    node.start(&config);
    node.layout.wait("c-defaults", DEADLINE).unwrap();
    let ours = facts(&node.log("c-defaults"));

    let crun_rootfs = node.rootfs("crun-probe");
    prepare(&crun_rootfs, disk);
    let crun = facts(&run_under_crun(&node, &crun_rootfs, &script));
    eprintln!("driftless: {ours:#?}\ncrun: {crun:#?}");

    // containerd's capabilities, effective and bounding; crun's own
    // default is three (AUDIT_WRITE, KILL, NET_BIND_SERVICE).
    let expected = mask(DEFAULT_CAPABILITIES);
    assert_eq!(ours.get("CapBnd"), Some(&expected), "{ours:?}");
    assert_eq!(ours.get("CapEff"), Some(&expected), "{ours:?}");
    // RuntimeDefault seccomp (docs/ARCHITECTURE.md: as kubelet's
    // --seccomp-default), no no_new_privs unless the pod asks.
    assert_eq!(ours.get("Seccomp").map(String::as_str), Some("2"), "{ours:?}");
    assert_eq!(ours.get("NoNewPrivs").map(String::as_str), Some("0"), "{ours:?}");

    for path in MASKED_PATHS {
        let key = format!("masked {path}");
        let value = ours.get(&key).unwrap_or_else(|| panic!("{key} not probed: {ours:?}"));
        assert!(matches!(value.as_str(), "entries=0" | "bytes=0" | "absent"), "{key} is readable in a default container: {value}");
        // Where crun masks a path too, both agree.
        if let Some(theirs) = crun.get(&key).filter(|v| v.ends_with("=0")) {
            assert_eq!(value, theirs, "{key}");
        }
    }
    for path in READONLY_PATHS {
        let key = format!("readonly {path}");
        let value = ours.get(&key).map(String::as_str);
        // A path the kernel does not have is not mounted at all.
        if std::path::Path::new(path).exists() {
            assert_eq!(value, Some("ro"), "{key} must be read-only: {ours:?}");
            assert_eq!(crun.get(&key).map(String::as_str), Some("ro"), "crun: {key}");
        }
    }

    // The device cgroup: neither a node made inside (CAP_MKNOD is a
    // default capability; crun's default set lacks it) nor one shipped in
    // the image reads the host's disk, under either runtime.
    assert_eq!(ours.get("mknod-disk").map(String::as_str), Some("0"), "driftless read the host disk through mknod: {ours:?}");
    assert_eq!(crun.get("mknod-disk").map(String::as_str), Some("refused"), "crun: {crun:?}");
    for (who, facts) in [("driftless", &ours), ("crun", &crun)] {
        assert_eq!(facts.get("image-disk").map(String::as_str), Some("0"), "{who} read the host disk through the image's node: {facts:?}");
    }
}

/// A set-uid root program that prints its effective uid, as an image can
/// ship one (busybox drops set-uid itself, so it cannot show this).
fn setuid_program(rootfs: &Path) {
    let source = rootfs.join("euid.c");
    std::fs::write(&source, "#include <stdio.h>\n#include <unistd.h>\nint main(void) { printf(\"euid %d\\n\", (int)geteuid()); return 0; }\n").unwrap();
    let binary = rootfs.join("bin/euid");
    let out = Command::new("gcc").args(["-static", "-O2", "-o"]).arg(&binary).arg(&source).output().expect("gcc (scripts/setup.sh installs it)");
    assert!(out.status.success(), "gcc -static: {}", String::from_utf8_lossy(&out.stderr));
    std::os::unix::fs::chown(&binary, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o4755)).unwrap();
}

#[test]
fn a_setuid_file_elevates_only_where_privilege_escalation_is_allowed() {
    let node = Node::new("setuid");
    let run = |id: &str, no_new_privileges: bool| {
        let config = ContainerConfig { uid: 1000, gid: 1000, no_new_privileges, ..node.config(id, "/bin/euid; grep NoNewPrivs /proc/self/status") };
        setuid_program(&config.rootfs);
        node.start(&config);
        node.layout.wait(id, DEADLINE).unwrap();
        node.log(id)
    };
    // Kubernetes' default (allowPrivilegeEscalation unset): the set-uid
    // bit works, as under containerd; the capabilities stay the default set.
    let allowed = run("c-suid-allowed", false);
    assert!(allowed.contains("stdout F euid 0") && allowed.contains("NoNewPrivs:\t0"), "{allowed}");
    // allowPrivilegeEscalation: false: no_new_privs, and the bit is ignored.
    let refused = run("c-suid-refused", true);
    assert!(refused.contains("stdout F euid 1000") && refused.contains("NoNewPrivs:\t1"), "{refused}");
}
