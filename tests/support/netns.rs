//! A node of a multi-node test: a network namespace the test makes,
//! joined to the host by a veth pair whose two addresses the test assigns
//! (the host's end `x.x.x.1/30`, the node's `x.x.x.2/30`), with no default
//! route, so nothing its agent sends can leave toward any other address.
//! Dropped, the namespace goes, and every link in it with it.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub(crate) struct NodeNamespace {
    /// The namespace's name (`ip netns exec NAME ...`).
    pub(crate) name: String,
    /// The host's end of the veth pair.
    pub(crate) host_link: String,
    /// The host's address on the pair.
    pub(crate) host_ip: String,
    /// The node's address on the pair.
    pub(crate) node_ip: String,
}

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn quiet(args: &[&str]) {
    let _ = Command::new(args[0]).args(&args[1..]).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

impl NodeNamespace {
    /// A fresh namespace for a node; removes one a killed run left under
    /// the same name.
    pub(crate) fn create() -> NodeNamespace {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let id = (std::process::id() % 60) * 4 + n % 4;
        let ns = NodeNamespace {
            name: format!("dlt-node-{}-{n}", std::process::id()),
            host_link: format!("dlvh{id}"),
            host_ip: format!("10.213.{id}.1"),
            node_ip: format!("10.213.{id}.2"),
        };
        quiet(&["ip", "link", "del", &ns.host_link]);
        quiet(&["ip", "netns", "del", &ns.name]);
        let peer = format!("dlvn{id}");
        run(&["ip", "netns", "add", &ns.name]);
        run(&["ip", "link", "add", &ns.host_link, "type", "veth", "peer", "name", &peer]);
        run(&["ip", "link", "set", &peer, "netns", &ns.name]);
        run(&["ip", "addr", "add", &format!("{}/30", ns.host_ip), "dev", &ns.host_link]);
        run(&["ip", "link", "set", &ns.host_link, "up"]);
        ns.exec_ok(&["ip", "addr", "add", &format!("{}/30", ns.node_ip), "dev", &peer]);
        ns.exec_ok(&["ip", "link", "set", &peer, "up"]);
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        // Before anything is sent from it: the node reaches the host's end
        // of its pair, and nothing else.
        let routes = ns.exec_ok(&["ip", "route", "show"]);
        assert!(!routes.contains("default"), "a test node's namespace must have no default route: {routes}");
        ns
    }

    /// `command` run inside the namespace. With `nsenter --net`, not `ip
    /// netns exec`: that also remounts `/sys` in a mount namespace of its
    /// own, which hides the cgroup hierarchies a node's containers need.
    pub(crate) fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("nsenter");
        command.arg(format!("--net=/run/netns/{}", self.name)).arg("--").arg(program);
        command
    }

    /// Runs `args` inside the namespace; its output, which must succeed.
    pub(crate) fn exec_ok(&self, args: &[&str]) -> String {
        let out = self.command(args[0]).args(&args[1..]).output().unwrap();
        assert!(out.status.success(), "{args:?} in {}: {}", self.name, String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for NodeNamespace {
    fn drop(&mut self) {
        quiet(&["ip", "netns", "del", &self.name]);
        quiet(&["ip", "link", "del", &self.host_link]);
    }
}
