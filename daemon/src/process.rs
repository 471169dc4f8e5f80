//! What each driftless binary sets up before its command runs: malloc's
//! arenas, SIGPIPE for clients, and logging to standard error. Shared by
//! `driftless` and `driftless-agent`, so a node runs the same way under
//! either.
//!
//! Must not touch: anything a command does.

use crate::cli::LogFormat;

/// The daemon runs many threads, and glibc's malloc gives threads arenas
/// of their own (up to eight per core) whose free memory it rarely
/// returns: at 100 pods that was a fifth of the daemon's resident memory
/// (docs/benchmarks.md). One arena is plenty for a process that is
/// mostly asleep: threads take small blocks from their own caches without
/// a lock, and the free space a burst of pod churn leaves behind is kept
/// once, not once per arena (3 MiB less after rounds of churn than with
/// two, the same CPU; docs/benchmarks.md, issue 21). A fixed mmap
/// threshold keeps glibc from raising it as large buffers are freed, which
/// would move them into the arena, where their pages stay resident after
/// the churn of a big rollout. (mimalloc
/// was tried instead, and used four times more.) Not for short commands
/// that work on every core (`validate`, `plan`): they would queue on the
/// one arena's lock. Call in `main` before any other thread exists.
pub fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets malloc parameters; it is called in main
    // before any other thread exists (argument parsing starts none), and
    // takes no pointers. A failure (0) only means the default stays.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// A client command whose reader goes away (`driftless get pods | head`)
/// ends quietly, as other Unix tools do, instead of panicking on the next
/// write. Not for the daemon or an agent: a closed socket or pipe must
/// never kill them.
pub fn die_on_broken_pipe() {
    // SAFETY: restores the default disposition of SIGPIPE before any other
    // thread exists; no handler function is installed.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Logs to standard error, filtered by `DRIFTLESS_LOG` (warnings by
/// default).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DRIFTLESS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,libcgroups=error,libcontainer=error"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        // Spans carry the commit and object acted on: keep them on each line.
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(true).init(),
    }
}
