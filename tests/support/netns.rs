//! The nodes of a multi-node test: a LAN the test makes (a bridge on the
//! host, `x.x.x.1/24` on it), and for each node a network namespace joined
//! to it by a veth pair, with an address the test assigns (`x.x.x.2`,
//! `.3`, ...) and no default route, so nothing a node sends can leave
//! toward any address but the LAN's. Dropped, a namespace goes with every
//! link in it; the LAN's bridge goes with the LAN.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn quiet(args: &[&str]) {
    let _ = Command::new(args[0]).args(&args[1..]).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// The test's LAN.
pub(crate) struct Lan {
    id: u32,
    /// The host's bridge.
    pub(crate) bridge: String,
    /// The host's address on it.
    pub(crate) host_ip: String,
    joined: AtomicU32,
}

impl Lan {
    /// A fresh LAN; removes one a killed run left under the same name.
    pub(crate) fn create() -> Lan {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let id = (std::process::id() % 60) * 4 + n % 4;
        let lan = Lan { id, bridge: format!("dltb{id}"), host_ip: format!("10.214.{id}.1"), joined: AtomicU32::new(0) };
        quiet(&["ip", "link", "del", &lan.bridge]);
        run(&["ip", "link", "add", &lan.bridge, "type", "bridge"]);
        run(&["ip", "addr", "add", &format!("{}/24", lan.host_ip), "dev", &lan.bridge]);
        run(&["ip", "link", "set", &lan.bridge, "up"]);
        lan
    }

    /// A unique number for this LAN, for the ranges a test gives its nodes.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// A new node on the LAN.
    pub(crate) fn join(&self) -> NodeNamespace {
        let k = self.joined.fetch_add(1, Ordering::SeqCst);
        let ns = NodeNamespace {
            name: format!("dlt-{}-{}-{k}", std::process::id(), self.id),
            host_link: format!("dlv{}h{k}", self.id),
            node_ip: format!("10.214.{}.{}", self.id, k + 2),
        };
        quiet(&["ip", "link", "del", &ns.host_link]);
        quiet(&["ip", "netns", "del", &ns.name]);
        let peer = format!("dlv{}n{k}", self.id);
        run(&["ip", "netns", "add", &ns.name]);
        run(&["ip", "link", "add", &ns.host_link, "type", "veth", "peer", "name", &peer]);
        run(&["ip", "link", "set", &peer, "netns", &ns.name]);
        run(&["ip", "link", "set", &ns.host_link, "master", &self.bridge]);
        run(&["ip", "link", "set", &ns.host_link, "up"]);
        ns.exec_ok(&["ip", "addr", "add", &format!("{}/24", ns.node_ip), "dev", &peer]);
        ns.exec_ok(&["ip", "link", "set", &peer, "up"]);
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        // A node forwards its pods' traffic to the other nodes, as an
        // operator sets a host up for it.
        ns.exec_ok(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        // Before anything is sent from it: the node reaches the LAN, and
        // nothing else.
        let routes = ns.exec_ok(&["ip", "route", "show"]);
        assert!(!routes.contains("default"), "a test node's namespace must have no default route: {routes}");
        ns
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        quiet(&["ip", "link", "del", &self.bridge]);
    }
}

/// A node's network namespace on a [`Lan`].
pub(crate) struct NodeNamespace {
    /// The namespace's name.
    pub(crate) name: String,
    /// The host's end of the node's veth pair (a port of the LAN bridge).
    pub(crate) host_link: String,
    /// The node's address on the LAN.
    pub(crate) node_ip: String,
}

impl NodeNamespace {
    /// `program` run inside the namespace. With `nsenter --net`, not `ip
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
