//! The fork server: one `driftless-shim serve` per [`crate::launch::Layout`],
//! started on the first container start, that forks a helper for each
//! container the daemon asks for (youki#3027's "zygote").
//!
//! Why: a helper must start single-threaded, so the daemon cannot fork it
//! itself. Before, every start `exec`ed a launcher, the shim binary, that
//! forked the helper and told the daemon, by exiting, that the helper had
//! reported. On this project's machine an `exec` of that binary took 1.4–2
//! ms before the helper could begin (loading and relocating it, and glibc's
//! start-up, whose `cpuid`s each trap to the hypervisor), and the report
//! took two wake-ups to reach the daemon, the launcher's and then the
//! daemon's. The server forks the helper from a process that is already
//! single-threaded and warm, and the helper reports straight down a pipe
//! the daemon reads (docs/benchmarks.md has the figures).
//!
//! The protocol, all of it here: the server's standard input is one end of
//! a `SOCK_SEQPACKET` pair. Each request is one message: the helper's
//! arguments ([`ShimArgs`]) as NUL-separated fields, then the place of each
//! mount handed over; with two descriptors, the write end of the report
//! pipe and the helper's log (its standard error), then one detached mount
//! tree per place ([`crate::helper_ns`]: the server and its helpers live in
//! mount namespaces without the pods' mounts). The server forks twice, so
//! that the helper is no child of the server's but is reparented as a
//! launcher's helper was, and goes back to its socket. The daemon learns
//! what happened from the pipe alone ([`wait_for_report`]): a byte once the
//! status says Running or Failed, its end if the helper died first. The
//! server ends when the daemon's end of the socket closes, the daemon's
//! death included.
//!
//! Must not touch: containers (the helper does, in [`crate::shim`]).

use std::ffi::OsStr;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags};

use crate::shim::ShimArgs;

/// What a server's helpers may be asked to use: libcontainer's state root
/// and the folder holding the containers' folders. They are on its command
/// line too, where `driftless reset` finds a node's helpers (a forked
/// helper keeps its server's command line until it `exec`s the reaper).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// libcontainer's state root, the same for every helper.
    pub state_root: PathBuf,
    /// Each helper's folder (its bundle within) is right under this one.
    pub containers: PathBuf,
}

impl Bounds {
    /// Whether `args` stays within these bounds.
    fn allow(&self, args: &ShimArgs) -> bool {
        args.state_root == self.state_root && args.dir.parent() == Some(&self.containers) && args.bundle.starts_with(&args.dir)
    }
}

/// The largest request: four paths and an id.
const MAX_REQUEST: usize = 64 * 1024;

/// The argument that makes `driftless-shim` a fork server.
pub const SERVE: &str = "serve";

// === the daemon's side ===

/// The fork server of one layout, shared by its clones; started when first
/// needed, and again if it has gone.
#[derive(Clone, Default)]
pub(crate) struct Spawner(Arc<Mutex<Option<Server>>>);

impl std::fmt::Debug for Spawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spawner")
    }
}

impl Spawner {
    /// Asks the server of `shim` for a helper with `args`, reporting down
    /// `report` and writing its errors to `log`. A server that is gone
    /// (killed, or the binary replaced and crashed) is started again once.
    /// `mounts` are the container's mounts for the helper's namespace.
    pub(crate) fn start(
        &self,
        shim: &Path,
        bounds: &Bounds,
        args: &ShimArgs,
        report: &OwnedFd,
        log: &std::fs::File,
        mounts: &[(PathBuf, OwnedFd)],
    ) -> std::io::Result<()> {
        let targets: Vec<&Path> = mounts.iter().map(|(target, _)| target.as_path()).collect();
        let request = encode(args, &targets);
        let fds: Vec<RawFd> = [report.as_raw_fd(), log.as_raw_fd()].into_iter().chain(mounts.iter().map(|(_, tree)| tree.as_raw_fd())).collect();
        let mut server = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // A server sees the host's mounts as they were when it started
        // (crate::helper_ns): one the host has made or removed since (a
        // disk for a hostPath) needs a server that sees it. The old one
        // serves what is queued to it, then ends.
        if server.as_mut().is_some_and(|current| current.host.changed(&bounds.containers)) {
            tracing::info!("the host's own mounts changed: starting a fork server that sees them");
            if let Some(old) = server.take() {
                old.retire();
            }
        }
        let mut retried = false;
        loop {
            let current = match server.as_mut() {
                Some(current) => current,
                None => server.insert(Server::spawn(shim, bounds)?),
            };
            match current.send(&request, &fds) {
                Ok(()) => return Ok(()),
                Err(error) if retried => return Err(error.into()),
                Err(error) => {
                    tracing::warn!(%error, "the fork server is gone; starting another");
                    *server = None;
                    retried = true;
                }
            }
        }
    }

    /// Whether the server has ended (and is forgotten, so the next start
    /// makes another). Requests queued to a server that ended were never
    /// served: their descriptors closed with its socket.
    pub(crate) fn ended(&self) -> bool {
        let mut server = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let ended = server.as_ref().is_some_and(Server::hung_up);
        if ended {
            *server = None;
        }
        ended
    }
}

/// A running fork server and the daemon's end of its socket.
struct Server {
    socket: Option<OwnedFd>,
    child: Option<Child>,
    /// The host's own mounts its namespace was copied with.
    host: HostMounts,
}

/// The host's own mounts in its table (every mount but the pods' of any
/// node on the machine), and the table kept open: the kernel marks it when
/// the table changes.
struct HostMounts {
    table: std::fs::File,
    seen: Vec<String>,
}

impl HostMounts {
    fn read(containers: &Path) -> std::io::Result<HostMounts> {
        let mut table = std::fs::File::open("/proc/self/mountinfo")?;
        let seen = crate::helper_ns::host_mounts(&read_from_start(&mut table)?, containers);
        Ok(HostMounts { table, seen })
    }

    /// Whether the host's own mounts changed since they were read. The
    /// table is read again only when the kernel says it changed, which the
    /// pods' mounts do all the time without counting.
    fn changed(&mut self, containers: &Path) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let mut fds = [PollFd::new(self.table.as_fd(), PollFlags::POLLPRI)];
        let marked = matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
            && fds[0].revents().is_some_and(|r| r.intersects(PollFlags::POLLPRI | PollFlags::POLLERR));
        marked && read_from_start(&mut self.table).is_ok_and(|table| crate::helper_ns::host_mounts(&table, containers) != self.seen)
    }
}

/// The whole of an open `/proc` table, from its start.
fn read_from_start(file: &mut std::fs::File) -> std::io::Result<String> {
    use std::io::{Read, Seek};
    file.seek(std::io::SeekFrom::Start(0))?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text)
}

impl Server {
    fn spawn(shim: &Path, bounds: &Bounds) -> std::io::Result<Server> {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
        // Read before the server copies the namespace: a mount made in
        // between is at worst taken for a change later, never missed.
        let host = HostMounts::read(&bounds.containers)?;
        let (ours, theirs) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
        // Its standard error is the daemon's: what it says about itself
        // (a failed fork) belongs in the daemon's log.
        let child = Command::new(shim)
            .arg(SERVE)
            .arg("--state-root")
            .arg(&bounds.state_root)
            .arg("--containers")
            .arg(&bounds.containers)
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .spawn()?;
        Ok(Server { socket: Some(ours), child: Some(child), host })
    }

    /// Whether the server's end of the socket has closed. The kernel marks
    /// ours before it closes the descriptors queued to the server, so a
    /// report pipe that ended that way is always seen with this set.
    fn hung_up(&self) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let Some(socket) = &self.socket else { return true };
        let mut fds = [PollFd::new(socket.as_fd(), PollFlags::empty())];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(_) => fds[0].revents().is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)),
            Err(_) => false,
        }
    }

    fn send(&self, request: &[u8], fds: &[RawFd]) -> Result<(), Errno> {
        let Some(socket) = &self.socket else { return Err(Errno::EPIPE) };
        let rights = [ControlMessage::ScmRights(fds)];
        // No SIGPIPE for a server that is gone: EPIPE says it.
        let sent = nix::sys::socket::sendmsg::<()>(socket.as_raw_fd(), &[IoSlice::new(request)], &rights, MsgFlags::MSG_NOSIGNAL, None)?;
        if sent == request.len() { Ok(()) } else { Err(Errno::EMSGSIZE) }
    }
}

impl Server {
    /// Closes the daemon's end without a kill: the server forks what is
    /// queued to it, reads the end and exits, reaped by a thread of its own.
    fn retire(mut self) {
        drop(self.socket.take());
        if let Some(mut child) = self.child.take() {
            let _ = std::thread::Builder::new().name("retired-fork-server".into()).spawn(move || child.wait());
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Its socket closes first (a server at rest ends by itself); the
        // kill is for one that stopped reading. Helpers it forked are not
        // its children and go on.
        drop(self.socket.take());
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What the helper's report pipe said.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reported {
    /// A byte: the status says Running or Failed.
    Yes,
    /// The pipe's end without a byte: the helper ended (or never began)
    /// without a report.
    Ended,
    /// Nothing within the deadline; the helper goes on.
    Late,
}

/// Waits on the read end of a report pipe until `within` has passed.
pub(crate) fn wait_for_report(read: &OwnedFd, within: Duration) -> Result<Reported, Errno> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        // Whole milliseconds, rounded up: never give up before the deadline.
        let millis = PollTimeout::try_from(left.as_micros().div_ceil(1000)).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(read.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, millis) {
            Ok(0) if Instant::now() < deadline => continue,
            Ok(0) => return Ok(Reported::Late),
            Ok(_) => {
                let mut byte = [0u8; 1];
                return match nix::unistd::read(read.as_raw_fd(), &mut byte) {
                    Ok(1) => Ok(Reported::Yes),
                    Ok(_) => Ok(Reported::Ended),
                    Err(Errno::EINTR) => continue,
                    Err(error) => Err(error),
                };
            }
            Err(Errno::EINTR) => continue,
            Err(error) => return Err(error),
        }
    }
}

/// The four arguments, then the place of each mount handed over.
fn encode(args: &ShimArgs, targets: &[&Path]) -> Vec<u8> {
    let fields: [&OsStr; 4] = [args.id.as_ref(), args.bundle.as_os_str(), args.state_root.as_os_str(), args.dir.as_os_str()];
    let fields = fields.into_iter().chain(targets.iter().map(|t| t.as_os_str()));
    let mut request = Vec::new();
    for field in fields {
        request.extend_from_slice(field.as_bytes());
        request.push(0);
    }
    request
}

/// A request's arguments and mount places; `None` unless whole, with at
/// most [`crate::helper_ns::MOST`] places, each absolute.
fn decode(request: &[u8]) -> Option<(ShimArgs, Vec<PathBuf>)> {
    let mut fields = request.strip_suffix(&[0])?.split(|b| *b == 0);
    let mut next = || fields.next().filter(|f| !f.is_empty()).map(|f| PathBuf::from(OsStr::from_bytes(f)));
    let args = ShimArgs { id: next()?.into_os_string().into_string().ok()?, bundle: next()?, state_root: next()?, dir: next()? };
    let targets: Vec<PathBuf> = std::iter::from_fn(next).collect();
    let whole = fields.next().is_none() && targets.len() <= crate::helper_ns::MOST && targets.iter().all(|t| t.is_absolute());
    whole.then_some((args, targets))
}

// === the server's side ===

/// `driftless-shim serve --state-root DIR --containers DIR`: forks a helper
/// for each request on standard input within `bounds`, until the daemon's
/// end closes.
pub fn serve(bounds: &Bounds) -> ExitCode {
    // The socket leaves descriptor 0, which becomes /dev/null: no helper or
    // container may inherit the daemon's socket.
    let socket = match nix::fcntl::fcntl(0, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3)) {
        // SAFETY: the descriptor was just made by this process and is
        // owned by nothing else.
        #[allow(unsafe_code)]
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(error) => return fail("take the socket from standard input", error),
    };
    if let Err(error) = null_onto(0) {
        return fail("put /dev/null on standard input", error);
    }
    if let Err(error) = crate::helper_ns::enter_for_server(&bounds.containers) {
        return fail("make a mount namespace without the pods' mounts", error);
    }
    let mut buffer = vec![0u8; MAX_REQUEST];
    loop {
        let mut space = nix::cmsg_space!([RawFd; 2 + crate::helper_ns::MOST]);
        let mut iov = [IoSliceMut::new(&mut buffer)];
        let received = match nix::sys::socket::recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(received) => received,
            Err(Errno::EINTR) => continue,
            Err(error) => return fail("read a request", error),
        };
        // Descriptors first: owned at once, so that every path closes them.
        let mut fds: Vec<OwnedFd> = Vec::new();
        if let Ok(messages) = received.cmsgs() {
            for message in messages {
                if let ControlMessageOwned::ScmRights(raw) = message {
                    // SAFETY: SCM_RIGHTS gave this process these new
                    // descriptors; nothing else owns them.
                    #[allow(unsafe_code)]
                    fds.extend(raw.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                }
            }
        }
        let (length, truncated) = (received.bytes, received.flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC));
        if length == 0 && fds.is_empty() {
            // The daemon's end closed.
            return ExitCode::SUCCESS;
        }
        let request = decode(&buffer[..length]).filter(|(_, targets)| !truncated && fds.len() == 2 + targets.len());
        // A request it cannot read or must not serve: its descriptors close
        // here, and the daemon reads the pipe's end as a helper that never
        // reported.
        match request {
            Some((args, targets)) if bounds.allow(&args) => {
                let mut fds = fds.into_iter();
                let (Some(report), Some(log)) = (fds.next(), fds.next()) else { continue };
                fork_helper(&socket, &args, report, log, targets.into_iter().zip(fds).collect());
            }
            Some((args, _)) => eprintln!("driftless-shim serve: refused a helper outside {bounds:?}: {args:?}"),
            None => eprintln!("driftless-shim serve: a request it cannot read ({length} bytes, {} descriptors)", fds.len()),
        }
    }
}

/// Forks the helper off twice removed, and reaps the one in between.
#[allow(unsafe_code)]
fn fork_helper(socket: &OwnedFd, args: &ShimArgs, report: OwnedFd, log: OwnedFd, mounts: Vec<(PathBuf, OwnedFd)>) {
    use nix::unistd::{ForkResult, fork};
    // SAFETY: the server is single-threaded, so the child is a whole copy of
    // it and may run any code.
    match unsafe { fork() } {
        Ok(ForkResult::Parent { child }) => {
            drop((report, log, mounts));
            let _ = nix::sys::wait::waitpid(child, None);
        }
        Ok(ForkResult::Child) => {
            // SAFETY: as above; this child has one thread too.
            let code = match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    // This process's copy of the daemon's socket.
                    let _ = nix::unistd::close(socket.as_raw_fd());
                    if let Err(error) = nix::unistd::dup2(log.as_raw_fd(), 2) {
                        eprintln!("driftless-shim serve: cannot give the helper its log: {error}");
                    }
                    drop(log);
                    let code = match crate::shim::run(args, Some(report), mounts) {
                        Ok(_) => 0,
                        Err(error) => {
                            eprintln!("driftless-shim: {error}");
                            1
                        }
                    };
                    std::process::exit(code)
                }
                Ok(ForkResult::Parent { .. }) => 0,
                Err(error) => {
                    eprintln!("driftless-shim serve: cannot fork the helper: {error}");
                    1
                }
            };
            // Nothing of the server's to flush or run at exit.
            // SAFETY: `_exit` ends this process and nothing else.
            unsafe { nix::libc::_exit(code) }
        }
        Err(error) => eprintln!("driftless-shim serve: cannot fork: {error}"),
    }
}

fn null_onto(fd: RawFd) -> Result<(), Errno> {
    let null = nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())?;
    nix::unistd::dup2(null, fd)?;
    nix::unistd::close(null)
}

fn fail(what: &str, error: Errno) -> ExitCode {
    eprintln!("driftless-shim serve: cannot {what}: {error}");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_back_as_sent_and_nothing_else_reads() {
        let args = ShimArgs { id: "pod-1-main-0".into(), bundle: "/n/b".into(), state_root: "/n/state".into(), dir: "/n/c dir".into() };
        assert_eq!(decode(&encode(&args, &[])), Some((args.clone(), vec![])));
        let targets = [Path::new("/n/c dir/rootfs"), Path::new("/run/p/ns/net")];
        assert_eq!(decode(&encode(&args, &targets)), Some((args, targets.iter().map(|t| t.to_path_buf()).collect())));
        let five = b"a\0b\0c\0d\0/1\0/2\0/3\0/4\0/5\0";
        for bad in [&b""[..], b"a\0b\0c\0", b"a\0b\0c\0d", b"a\0b\0c\0d\0relative\0", b"a\0\0c\0d\0", b"a\0b\0c\0d\0\0/x\0", &five[..]] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_server_serves_only_its_own_node() {
        let bounds = Bounds { state_root: "/n/state".into(), containers: "/n/containers".into() };
        let args = |state: &str, dir: &str, bundle: &str| ShimArgs { id: "c".into(), bundle: bundle.into(), state_root: state.into(), dir: dir.into() };
        assert!(bounds.allow(&args("/n/state", "/n/containers/c", "/n/containers/c/bundle")));
        assert!(!bounds.allow(&args("/other/state", "/n/containers/c", "/n/containers/c/bundle")));
        assert!(!bounds.allow(&args("/n/state", "/n/containers", "/n/containers/bundle")));
        assert!(!bounds.allow(&args("/n/state", "/n/containers/c/deeper", "/n/containers/c/deeper/bundle")));
        assert!(!bounds.allow(&args("/n/state", "/n/containers/c", "/elsewhere/bundle")));
    }

    #[test]
    fn the_daemon_tells_a_report_from_a_helper_gone_or_late() {
        let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let (read, write) = pipe();
        nix::unistd::write(&write, b"r").unwrap();
        assert_eq!(wait_for_report(&read, Duration::from_secs(5)), Ok(Reported::Yes));

        let (read, write) = pipe();
        drop(write);
        assert_eq!(wait_for_report(&read, Duration::from_secs(5)), Ok(Reported::Ended));

        let (read, _write) = pipe();
        let started = Instant::now();
        assert_eq!(wait_for_report(&read, Duration::from_millis(50)), Ok(Reported::Late));
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
