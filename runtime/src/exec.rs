//! Running a command inside a running container (`kubectl exec`).
//!
//! Entering a container clones the caller, like creating one, so it runs in
//! the helper binary's `exec` mode, a fresh single-threaded process; the
//! daemon or CLI only spawns that process with the standard streams it
//! wants the command to use.
//!
//! With a TTY (`kubectl exec -t`), the command gets a pseudo-terminal of
//! its own, made inside the container by `libcontainer`, which hands the
//! master end back over a console socket; the helper then relays between
//! its own standard streams and that master, putting its own terminal (if
//! it has one) in raw mode meanwhile so keys reach the command unchanged.

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::errno::Errno;
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{WaitStatus, waitpid};

use crate::shim::ShimError;

/// A command that runs `args` inside container `id` when spawned, with the
/// spawner's standard streams; its exit status is the command's (128 +
/// signal when killed).
pub fn command(shim: &Path, state_root: &Path, id: &str, args: &[String], tty: bool) -> Command {
    let mut command = Command::new(shim);
    command.arg("exec").arg("--id").arg(id).arg("--state-root").arg(state_root);
    if tty {
        command.arg("--tty");
    }
    command.arg("--").args(args);
    command
}

/// The helper's `exec` mode: joins the container's namespaces and cgroup
/// with `args` as a new process, waits for it and returns its exit code.
/// With `tty`, the process runs on a pseudo-terminal relayed to this
/// process's standard streams, and `resize_fd`, when open, gives it new
/// sizes (`COLUMNS ROWS` lines).
pub fn run_in_this_process(state_root: &Path, id: &str, args: Vec<String>, tty: bool, resize_fd: Option<i32>) -> Result<i32, ShimError> {
    // The new process may be our grandchild; as a subreaper we can reap it.
    nix::sys::prctl::set_child_subreaper(true).map_err(|source| ShimError::Sys { what: "become a child subreaper", source })?;
    let container_error = |source| ShimError::Container { id: id.to_owned(), source: Box::new(source) };
    // Before libcontainer reads the mount table (about twenty times): the
    // host's holds every pod's mounts, the container's helper's only its own.
    let state = state_root.join(id);
    if let Some(init) = libcontainer::container::Container::load(state.clone()).ok().and_then(|c| c.pid()) {
        crate::helper_ns::join_helper_of(init.as_raw(), &state);
    }
    let builder = ContainerBuilder::new(id.to_owned(), SyscallType::default()).with_root_path(state_root).map_err(container_error)?;
    if !tty {
        let pid = builder.as_tenant().with_container_args(args).with_detach(true).build().map_err(container_error)?;
        return wait_for(pid);
    }
    let scratch = scratch_dir(state_root, id)?;
    let result = run_with_tty(builder, state_root, id, args, &scratch, resize_fd);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn run_with_tty(builder: ContainerBuilder, state_root: &Path, id: &str, args: Vec<String>, scratch: &Path, resize_fd: Option<i32>) -> Result<i32, ShimError> {
    let container_error = |source| ShimError::Container { id: id.to_owned(), source: Box::new(source) };
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ShimError::Io { path, source }
    };
    // The exec'd process is the container's own process with other
    // arguments and a terminal: same user, environment, capabilities.
    let container = libcontainer::container::Container::load(state_root.join(id)).map_err(container_error)?;
    let config = container.bundle().join("config.json");
    let spec = oci_spec::runtime::Spec::load(&config).map_err(|e| ShimError::Io { path: config.clone(), source: std::io::Error::other(e) })?;
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(args));
    process.set_terminal(Some(true));
    if let Some(size) = window_size() {
        process.set_console_size(Some(size));
    }
    let process_file = scratch.join("process.json");
    let json = serde_json::to_vec(&process).map_err(|e| ShimError::Io { path: process_file.clone(), source: e.into() })?;
    std::fs::write(&process_file, json).map_err(io(&process_file))?;
    let socket_path = scratch.join("console.sock");
    let listener = UnixListener::bind(&socket_path).map_err(io(&socket_path))?;

    let pid =
        builder.with_console_socket(Some(&socket_path)).as_tenant().with_process(Some(&process_file)).with_detach(true).build().map_err(container_error)?;
    let master = receive_master(&listener).map_err(io(&socket_path))?;
    let _raw = RawMode::enter();
    if let Some(fd) = resize_fd {
        follow_resizes(fd, master.try_clone().map_err(io(&socket_path))?);
    }

    let mut to_terminal = File::from(master.try_clone().map_err(io(&socket_path))?);
    std::thread::spawn(move || {
        // Ends when our stdin does, or when the process has exited and the
        // helper with it.
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to_terminal);
    });
    let mut from_terminal = File::from(master);
    let output = std::thread::spawn(move || {
        // EIO once the last holder of the terminal's other end has gone.
        let _ = std::io::copy(&mut from_terminal, &mut std::io::stdout().lock());
        let _ = std::io::stdout().flush();
    });
    let code = wait_for(pid)?;
    let deadline = Instant::now() + Duration::from_secs(2);
    while !output.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(code)
}

/// Applies each size read from descriptor `fd` to the terminal: setting
/// the master's size sends SIGWINCH to the command, as a terminal emulator
/// does. The descriptor is reopened through `/proc` (no raw descriptor
/// is adopted); a closed one means no resizes come.
fn follow_resizes(fd: i32, master: OwnedFd) {
    use std::io::BufRead;
    let Ok(sizes) = File::open(format!("/proc/self/fd/{fd}")) else { return };
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(sizes).lines() {
            let Ok(line) = line else { break };
            let mut numbers = line.split_whitespace().map(str::parse::<u16>);
            if let (Some(Ok(columns)), Some(Ok(rows))) = (numbers.next(), numbers.next()) {
                let size = rustix::termios::Winsize { ws_row: rows, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0 };
                let _ = rustix::termios::tcsetwinsize(&master, size);
            }
        }
    });
}

/// A private folder for the console socket and process file: socket paths
/// are limited to 108 bytes, so it lives in the state root, not the
/// container's deep folder.
fn scratch_dir(state_root: &Path, id: &str) -> Result<PathBuf, ShimError> {
    let dir = state_root.join(format!(".exec-{id}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| ShimError::Io { path: dir.clone(), source })?;
    Ok(dir)
}

/// Accepts libcontainer's connection and takes the terminal's master end
/// from it (SCM_RIGHTS).
fn receive_master(listener: &UnixListener) -> std::io::Result<OwnedFd> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    let (stream, _) = listener.accept()?;
    let mut name = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut space = [std::mem::MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    rustix::net::recvmsg(&stream, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)?;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message
            && let Some(fd) = fds.next()
        {
            return Ok(fd);
        }
    }
    Err(std::io::Error::other("the console socket carried no terminal"))
}

/// This process's terminal size, if its stdin is a terminal.
fn window_size() -> Option<oci_spec::runtime::Box> {
    let size = rustix::termios::tcgetwinsize(std::io::stdin()).ok()?;
    oci_spec::runtime::BoxBuilder::default().height(u32::from(size.ws_row)).width(u32::from(size.ws_col)).build().ok()
}

/// Raw mode on this process's terminal for as long as it lives; restored
/// on drop. Nothing happens when stdin is not a terminal.
struct RawMode(Option<Termios>);

impl RawMode {
    fn enter() -> Self {
        let Ok(saved) = termios::tcgetattr(std::io::stdin()) else { return Self(None) };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &raw);
        Self(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, saved);
        }
    }
}

fn wait_for(pid: nix::unistd::Pid) -> Result<i32, ShimError> {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return Ok(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return Ok(128 + sig as i32),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(source) => return Err(ShimError::Sys { what: "wait for the exec'd process", source }),
        }
    }
}
