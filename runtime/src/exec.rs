//! Running a command inside a running container (`kubectl exec`).
//!
//! Entering a container clones the caller, like creating one, so it runs in
//! the helper binary's `exec` mode, a fresh single-threaded process; the
//! daemon or CLI only spawns that process with the standard streams it
//! wants the command to use.

use std::path::Path;
use std::process::Command;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};

use crate::shim::ShimError;

/// A command that runs `args` inside container `id` when spawned, with the
/// spawner's standard streams; its exit status is the command's (128 +
/// signal when killed).
pub fn command(shim: &Path, state_root: &Path, id: &str, args: &[String]) -> Command {
    let mut command = Command::new(shim);
    command.arg("exec").arg("--id").arg(id).arg("--state-root").arg(state_root).arg("--").args(args);
    command
}

/// The helper's `exec` mode: joins the container's namespaces and cgroup
/// with `args` as a new process, waits for it and returns its exit code.
pub fn run_in_this_process(state_root: &Path, id: &str, args: Vec<String>) -> Result<i32, ShimError> {
    // The new process may be our grandchild; as a subreaper we can reap it.
    nix::sys::prctl::set_child_subreaper(true).map_err(|source| ShimError::Sys { what: "become a child subreaper", source })?;
    let container_error = |source| ShimError::Container { id: id.to_owned(), source };
    let pid = ContainerBuilder::new(id.to_owned(), SyscallType::default())
        .with_root_path(state_root)
        .map_err(container_error)?
        .as_tenant()
        .with_container_args(args)
        .with_detach(true)
        .build()
        .map_err(container_error)?;
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return Ok(code),
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return Ok(128 + sig as i32),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(source) => return Err(ShimError::Sys { what: "wait for the exec'd process", source }),
        }
    }
}
