//! The pod worker: one task per pod that keeps its containers as the
//! request says, level-triggered, every tick.
//!
//! Each tick, for each container: start it if it should run and is not
//! (after its back-off, if it crashed); if it exited, record how and decide
//! whether it restarts; if it runs, run the probes that are due. Then the
//! pod's status is recomputed and published. The worker owns no state that
//! is not also on disk or recomputed, so a worker started over an existing
//! pod carries on.
//!
//! A tick is blocking work (status files, starting a container, a probe
//! with its timeout), so it runs on the node runtime's blocking pool while
//! the task itself only waits: a node of a hundred pods keeps a few threads
//! busy, not a hundred (each thread costs its stack and, with glibc, an
//! allocator arena of its own).
//!
//! A tick comes when something is next due (a start, a back-off's end, a
//! probe), at least [`TICK`] and at most [`SETTLED_TICK`] apart; a
//! container's end wakes its worker at once, through a pidfd of its helper
//! (which ends once the exit is recorded). Ticking every pod at 50 ms took
//! 14% of a core on a node of 100 idle pods.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tracing::Instrument;

use super::{ContainerRequest, ContainerState, ContainerStatus, PodRequest, PodStatus, Probe, probe_run};
use crate::lifecycle::backoff::Backoff;
use crate::lifecycle::phase::{self, Observed};
use crate::lifecycle::probe::ProbeState;
use crate::{ContainerConfig, Layout, Status};

/// The least time between two looks at the containers (while one is
/// being created, or a probe or start is due now).
const TICK: Duration = Duration::from_millis(50);
/// The most: with nothing due, only a helper that cannot be watched (a
/// pidfd refused) is noticed this late, as kubelet's PLEG relists every
/// second.
const SETTLED_TICK: Duration = Duration::from_secs(1);
/// How often a stopping pod's containers are looked at.
const STOPPING_TICK: Duration = Duration::from_millis(10);
/// How long starting one container may take.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// Where the pod runs: its sandbox, address and cgroup parent.
#[derive(Clone, Debug)]
pub struct Placement {
    /// The sandbox folder (namespace files) the containers join.
    pub sandbox: PathBuf,
    /// The pod's address, for TCP and HTTP probes.
    pub ip: Option<IpAddr>,
    /// The cgroup the pod's containers go under (`/driftless/<uid>`).
    pub cgroup_parent: String,
}

/// What the handle asks of its worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Control {
    Run,
    /// Stop the containers and remove them.
    Stop,
    /// Stop watching; leave the containers running.
    Abandon,
}

/// A running pod worker. Its methods block until the worker has done what
/// they ask, so they must not be called from the node runtime's own tasks.
pub struct PodHandle {
    status: Arc<Mutex<PodStatus>>,
    control: watch::Sender<Control>,
    /// Disconnects when the worker's task ends (or is dropped with its
    /// runtime).
    done: mpsc::Receiver<()>,
}

impl PodHandle {
    /// The pod's status as last computed.
    pub fn status(&self) -> PodStatus {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops the pod: SIGTERM, SIGKILL after the grace period, then removes
    /// its containers. Returns when they are gone.
    pub fn stop(self) {
        // Drop does it.
    }

    /// Stops watching the pod but leaves its containers running, as a
    /// daemon that exits (to be upgraded, say) must: the next one adopts
    /// them. Dropping a handle stops the pod instead.
    pub fn abandon(self) {
        self.control.send_replace(Control::Abandon);
    }
}

impl Drop for PodHandle {
    fn drop(&mut self) {
        // Abandon, if asked first, stands: a stop does not follow it.
        self.control.send_if_modified(|control| {
            let run = *control == Control::Run;
            if run {
                *control = Control::Stop;
            }
            run
        });
        let _ = self.done.recv();
    }
}

/// Starts a worker for `request` at `placement`, as a task on `runtime`
/// (a multi-threaded one: its blocking pool runs the ticks).
pub fn start(runtime: &tokio::runtime::Handle, layout: Layout, placement: Placement, request: PodRequest, on_change: OnChange) -> PodHandle {
    let span = tracing::info_span!("pod worker", pod = %request.uid);
    let worker = Worker::new(layout, placement, request);
    let status = Arc::new(Mutex::new(worker.status()));
    let (control, control_rx) = watch::channel(Control::Run);
    let (done_tx, done) = mpsc::channel();
    runtime.spawn(drive(worker, status.clone(), on_change, control_rx, done_tx).instrument(span));
    PodHandle { status, control, done }
}

/// Whom a node's workers tell when a pod's status changes: set once, by
/// the node's user ([`crate::node::PodRuntime::on_status_change`]);
/// until then, nobody.
#[derive(Clone, Default)]
pub struct OnChange(Arc<std::sync::OnceLock<driftless_nodeapi::StatusChanged>>);

impl OnChange {
    /// Has `on_change` called from now on (a second call is ignored).
    pub fn set(&self, on_change: driftless_nodeapi::StatusChanged) {
        let _ = self.0.set(on_change);
    }

    pub(crate) fn changed(&self) {
        if let Some(on_change) = self.0.get() {
            on_change();
        }
    }
}

/// The worker's life: ticks until told otherwise, then stops the pod
/// unless it is abandoned. `_done` is dropped on the way out, which is
/// what the handle waits for.
async fn drive(worker: Worker, status: Arc<Mutex<PodStatus>>, on_change: OnChange, mut control: watch::Receiver<Control>, _done: mpsc::Sender<()>) {
    let publish = |worker: &Worker| {
        let now = worker.status();
        let mut published = status.lock().unwrap_or_else(|e| e.into_inner());
        if *published != now {
            *published = now;
            drop(published);
            on_change.changed();
        }
    };
    let mut worker = worker;
    // The helpers of the running containers, by container id.
    let mut exits: HashMap<String, AsyncFd<OwnedFd>> = HashMap::new();
    loop {
        if *control.borrow_and_update() != Control::Run {
            break;
        }
        let watched: HashSet<String> = exits.keys().cloned().collect();
        let watches;
        (worker, watches) = match blocking_with(worker, move |w| {
            w.tick();
            w.exit_watches(&watched)
        })
        .await
        {
            Some(done) => done,
            None => return,
        };
        publish(&worker);
        let current = worker.current_ids();
        exits.retain(|id, _| current.contains(id));
        for (id, pidfd) in watches {
            // Not registered (no IO driver): ticks see the exit instead.
            if let Some(fd) = register(pidfd) {
                exits.insert(id, fd);
            }
        }
        let period = worker.next_tick(Instant::now());
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            // A pidfd stays readable once its process has ended: drop it,
            // the next tick reads the exit.
            ended = helper_ended(&exits) => { exits.remove(&ended); }
            changed = control.changed() => if changed.is_err() { break },
        }
    }
    if *control.borrow() == Control::Abandon {
        return;
    }
    // SIGTERM, the grace period, SIGKILL for what is left, then removal:
    // the waits are timers here, not threads.
    let Some((worker, running)) = blocking_with(worker, Worker::terminate).await else { return };
    let left = until_ended(&worker.layout, running, Instant::now() + worker.request.grace).await;
    if !left.is_empty() {
        let layout = worker.layout.clone();
        let killed = left.clone();
        let _ = tokio::task::spawn_blocking(move || killed.iter().for_each(|id| drop(layout.kill(id, Signal::SIGKILL)))).await;
        until_ended(&worker.layout, left, Instant::now() + START_DEADLINE).await;
    }
    if let Some(worker) = blocking(worker, Worker::remove_all).await {
        publish(&worker);
    }
}

/// A helper's pidfd, registered with the runtime's reactor.
#[allow(unsafe_code, reason = "tokio asks its caller to vouch for the descriptor it registers")]
fn register(pidfd: OwnedFd) -> Option<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` is an open descriptor that only it closes, and
    // its `as_raw_fd` always names that one.
    unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }.ok()
}

/// Waits until one of the watched helpers has ended; its container's id.
async fn helper_ended(exits: &HashMap<String, AsyncFd<OwnedFd>>) -> String {
    std::future::poll_fn(|cx| {
        for (id, fd) in exits {
            if fd.poll_read_ready(cx).is_ready() {
                return std::task::Poll::Ready(id.clone());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Runs `f` on the worker on the blocking pool; `None` if it panicked
/// (the worker is then gone, as a thread that panicked was).
async fn blocking(worker: Worker, f: fn(&mut Worker)) -> Option<Worker> {
    blocking_with(worker, f).await.map(|(worker, ())| worker)
}

async fn blocking_with<T: Send + 'static>(mut worker: Worker, f: impl FnOnce(&mut Worker) -> T + Send + 'static) -> Option<(Worker, T)> {
    let uid = worker.request.uid.clone();
    match tokio::task::spawn_blocking(move || {
        let out = f(&mut worker);
        (worker, out)
    })
    .await
    {
        Ok(done) => Some(done),
        Err(error) => {
            tracing::error!(pod = %uid, %error, "the pod worker failed; its pod is no longer watched");
            None
        }
    }
}

/// Waits, until `deadline`, for the containers `ids` to end; returns those
/// that have not.
async fn until_ended(layout: &Layout, mut ids: Vec<String>, deadline: Instant) -> Vec<String> {
    loop {
        let looking = layout.clone();
        ids = match tokio::task::spawn_blocking(move || {
            // Ended, lost or unreadable: nothing more to wait for.
            ids.retain(|id| matches!(looking.ended(id), Ok(None)));
            ids
        })
        .await
        {
            Ok(ids) => ids,
            Err(_) => return Vec::new(),
        };
        if ids.is_empty() || Instant::now() >= deadline {
            return ids;
        }
        tokio::time::sleep(STOPPING_TICK).await;
    }
}

/// The container id of one instance (run) of a pod's container.
pub fn instance_id(pod_uid: &str, container: &str, instance: u32) -> String {
    format!("{pod_uid}-{container}-{instance}")
}

struct Probing {
    probe: Probe,
    state: ProbeState,
    last: Option<Instant>,
    /// Failures in a row (a startup probe that starts failing never flips,
    /// so its threshold is counted here).
    failures: u32,
}

impl Probing {
    fn new(probe: &Option<Probe>, passing: bool) -> Option<Probing> {
        probe.as_ref().map(|p| Probing { probe: p.clone(), state: ProbeState::new(p.settings, passing), last: None, failures: 0 })
    }

    /// Whether a startup probe has failed `failureThreshold` times in a
    /// row: the container never started up and is killed.
    fn failed_out(&self) -> bool {
        self.failures >= self.probe.settings.failure_threshold.max(1)
    }
}

/// One container and everything the worker knows about it.
struct Tracked {
    request: ContainerRequest,
    /// The current instance, while one exists.
    id: Option<String>,
    instances: u32,
    started: Option<(Instant, String)>,
    backoff: Backoff,
    restart_at: Option<Instant>,
    last_termination: Option<(i32, String)>,
    terminated: Option<(i32, String)>,
    startup: Option<Probing>,
    liveness: Option<Probing>,
    readiness: Option<Probing>,
    started_up: bool,
    ready: bool,
    /// Failed probe runs, ever, and the last one's event message.
    probe_failures: u64,
    probe_message: Option<String>,
}

struct Worker {
    layout: Layout,
    placement: Placement,
    request: PodRequest,
    containers: Vec<Tracked>,
}

impl Worker {
    fn new(layout: Layout, placement: Placement, request: PodRequest) -> Worker {
        let containers = request
            .containers
            .iter()
            .map(|c| Tracked {
                request: c.clone(),
                id: None,
                instances: 0,
                started: None,
                backoff: Backoff::default(),
                restart_at: None,
                last_termination: None,
                terminated: None,
                startup: None,
                liveness: None,
                readiness: None,
                started_up: false,
                ready: false,
                probe_failures: 0,
                probe_message: None,
            })
            .collect();
        let mut worker = Worker { layout, placement, request, containers };
        worker.adopt();
        worker
    }

    /// Carries on from what an earlier worker (in a daemon since
    /// restarted) left: each container's latest instance is taken over as
    /// it is, running or exited, so nothing runs twice and restart counts
    /// go on.
    fn adopt(&mut self) {
        let Ok(existing) = self.layout.list() else { return };
        let uid = self.request.uid.clone();
        let mut lost = Vec::new();
        for (index, c) in self.containers.iter_mut().enumerate() {
            let prefix = format!("{uid}-{}-", c.request.name);
            let latest = existing
                .iter()
                .filter_map(|(id, observed)| Some((id.strip_prefix(&prefix)?.parse::<u32>().ok()?, id, observed)))
                .max_by_key(|(instance, _, _)| *instance);
            let Some((instance, id, observed)) = latest else { continue };
            c.id = Some(id.clone());
            c.instances = instance + 1;
            c.started_up = c.request.startup.is_none();
            c.startup = Probing::new(&c.request.startup, false);
            c.liveness = Probing::new(&c.request.liveness, true);
            c.readiness = Probing::new(&c.request.readiness, false);
            match observed {
                crate::Observed::Running => {
                    let started_at = match self.layout.status(id) {
                        Ok(Some(Status::Running { started_at, .. })) => started_at,
                        _ => crate::status::now(),
                    };
                    c.started = Some((Instant::now(), started_at));
                }
                // Its helper is gone (the node rebooted, or it was killed):
                // nothing watches it, so it counts as ended.
                crate::Observed::Lost | crate::Observed::Creating => lost.push((index, id.clone())),
                crate::Observed::Finished(_) => {}
            }
            tracing::info!(pod = %uid, container = %c.request.name, id = %id, "adopted a container");
        }
        for (index, id) in lost {
            let _ = self.layout.kill(&id, Signal::SIGKILL);
            self.exited(index, &id, 255, "ContainerStatusUnknown");
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        for index in 0..self.containers.len() {
            let id = self.containers[index].id.clone();
            match id {
                None => {
                    let c = &self.containers[index];
                    let due = c.terminated.is_none() && c.restart_at.is_none_or(|at| now >= at);
                    if due {
                        self.start_container(index);
                    }
                }
                Some(id) => match self.layout.observe(&id) {
                    Ok(crate::Observed::Finished(Status::Exited { exit, .. })) => self.exited(index, &id, exit.code, exit.reason()),
                    Ok(crate::Observed::Finished(Status::Failed { .. })) => self.exited(index, &id, 128, "StartError"),
                    Ok(crate::Observed::Running) => self.probe(index, &id, now),
                    Ok(crate::Observed::Lost) => {
                        // Its helper was killed while the container ran:
                        // nothing collects its output or its exit. End it
                        // as containerd ends a task whose shim died; the
                        // next tick sees the exit and restarts per policy.
                        tracing::warn!(pod = %self.request.uid, container = %self.containers[index].request.name, %id, "the container's helper is gone; ending the container");
                        if let Err(error) = self.layout.finish_lost(&id) {
                            tracing::warn!(%id, %error, "could not clean up after the lost helper");
                        }
                    }
                    _ => {}
                },
            }
        }
    }

    /// How long until the next tick has something to do: a start or a
    /// back-off's end, a container being created, a probe due (in
    /// [`Self::run_probes`]' order: the startup probe alone until it
    /// passes), readiness to set; between [`TICK`] and [`SETTLED_TICK`].
    /// A container's end is not waited for here: its helper's pidfd wakes
    /// the worker.
    fn next_tick(&self, now: Instant) -> Duration {
        let mut wait = SETTLED_TICK;
        for c in &self.containers {
            let due = match (&c.id, &c.started) {
                (None, _) if c.terminated.is_some() => continue,
                (None, _) => c.restart_at.map_or(Duration::ZERO, |at| at.saturating_duration_since(now)),
                (Some(_), None) => Duration::ZERO,
                (Some(_), Some((started, _))) => {
                    let since_start = now.duration_since(*started);
                    let due_in = |p: &Probing| p.state.due_in(since_start, p.last.map(|l| now.duration_since(l)));
                    if !c.started_up {
                        c.startup.as_ref().map_or(Duration::ZERO, due_in)
                    } else if c.readiness.is_none() && !c.ready {
                        Duration::ZERO
                    } else {
                        c.liveness.iter().chain(c.readiness.iter()).map(due_in).min().unwrap_or(SETTLED_TICK)
                    }
                }
            };
            wait = wait.min(due);
        }
        wait.max(TICK)
    }

    /// The ids of the containers' current instances.
    fn current_ids(&self) -> HashSet<String> {
        self.containers.iter().filter_map(|c| c.id.clone()).collect()
    }

    /// Pidfds of the helpers of the running containers not in `watched`.
    fn exit_watches(&self, watched: &HashSet<String>) -> Vec<(String, OwnedFd)> {
        self.containers
            .iter()
            .filter(|c| c.started.is_some())
            .filter_map(|c| c.id.clone())
            .filter(|id| !watched.contains(id))
            .filter_map(|id| {
                let pidfd = self.layout.exit_watch(&id)?;
                Some((id, pidfd))
            })
            .collect()
    }

    fn start_container(&mut self, index: usize) {
        let uid = self.request.uid.clone();
        let c = &mut self.containers[index];
        let id = instance_id(&uid, &c.request.name, c.instances);
        let rootfs = match self.layout.mount_rootfs(&id, &c.request.layers) {
            Ok(rootfs) => rootfs,
            Err(error) => {
                tracing::warn!(pod = %uid, container = %c.request.name, %error, "cannot mount the root filesystem");
                c.restart_at = Some(Instant::now() + c.backoff.next(Duration::ZERO).max(Duration::from_secs(1)));
                return;
            }
        };
        let config = ContainerConfig {
            id: id.clone(),
            rootfs,
            args: c.request.args.clone(),
            env: c.request.env.clone(),
            cwd: c.request.cwd.clone(),
            cgroups_path: PathBuf::from(format!("{}/{id}", self.placement.cgroup_parent)),
            memory_limit: c.request.memory_limit,
            cpu_quota: c.request.cpu_quota,
            uid: c.request.uid,
            gid: c.request.gid,
            read_only_root: c.request.read_only_root,
            capabilities: c.request.capabilities.clone(),
            seccomp: c.request.seccomp,
            no_new_privileges: c.request.no_new_privileges,
            privileged: c.request.privileged,
            sandbox: Some(self.placement.sandbox.clone()),
            mounts: c.request.mounts.clone(),
            ..Default::default()
        };
        c.id = Some(id.clone());
        c.instances += 1;
        c.restart_at = None;
        c.ready = false;
        c.started_up = c.request.startup.is_none();
        c.startup = Probing::new(&c.request.startup, false);
        c.liveness = Probing::new(&c.request.liveness, true);
        c.readiness = Probing::new(&c.request.readiness, false);
        match self.layout.start(&config, START_DEADLINE) {
            Ok(Status::Running { started_at, .. }) => {
                c.started = Some((Instant::now(), started_at));
                // Without a startup or readiness probe, kubelet has a
                // container ready the moment it runs, not a tick later.
                c.ready = c.started_up && c.readiness.is_none();
            }
            Ok(_) => c.started = Some((Instant::now(), crate::status::now())),
            Err(error) => tracing::warn!(pod = %uid, container = %c.request.name, %error, "container did not start"),
        }
    }

    fn exited(&mut self, index: usize, id: &str, code: i32, reason: &str) {
        let policy = self.request.restart_policy;
        let uid = self.request.uid.clone();
        let c = &mut self.containers[index];
        let ran = c.started.as_ref().map_or(Duration::ZERO, |(at, _)| at.elapsed());
        // Keep this instance's log (it becomes the previous one); the one
        // before it is no longer readable in Kubernetes either.
        let _ = self.layout.release(id);
        if let Some(older) = c.instances.checked_sub(2) {
            let _ = self.layout.remove(&instance_id(&uid, &c.request.name, older));
        }
        c.id = None;
        c.started = None;
        c.ready = false;
        if policy.restarts(code) {
            c.last_termination = Some((code, reason.to_owned()));
            c.restart_at = Some(Instant::now() + c.backoff.next(ran));
        } else {
            c.terminated = Some((code, reason.to_owned()));
        }
    }

    fn probe(&mut self, index: usize, id: &str, now: Instant) {
        let ip = self.placement.ip;
        let c = &mut self.containers[index];
        let since_start = c.started.as_ref().map_or(Duration::ZERO, |(at, _)| now.duration_since(*at));
        let layout = &self.layout;
        let mut failures = (c.probe_failures, c.probe_message.take());
        let mut run = |probing: &mut Probing, kind: &str| -> Option<bool> {
            if !probing.state.due(since_start, probing.last.map(|l| now.duration_since(l))) {
                return None;
            }
            probing.last = Some(now);
            let outcome = match probe_run::run(&probing.probe.action, layout, id, ip, probing.probe.settings.timeout) {
                Ok(()) => crate::lifecycle::probe::Outcome::Success,
                Err(error) => {
                    failures = (failures.0 + 1, Some(error.message(kind)));
                    crate::lifecycle::probe::Outcome::Failure
                }
            };
            probing.failures = if outcome == crate::lifecycle::probe::Outcome::Failure { probing.failures + 1 } else { 0 };
            Some(probing.state.record(outcome))
        };
        Self::run_probes(c, layout, id, &mut run);
        (c.probe_failures, c.probe_message) = failures;
    }

    /// The probes due for container `c`, in kubelet's order.
    fn run_probes(c: &mut Tracked, layout: &Layout, id: &str, run: &mut impl FnMut(&mut Probing, &str) -> Option<bool>) {
        // The startup probe gates the others; failing it kills like liveness.
        if !c.started_up {
            if let Some(startup) = c.startup.as_mut()
                && let Some(verdict) = run(startup, "Startup")
            {
                if verdict {
                    c.started_up = true;
                } else if startup.failed_out() {
                    let _ = layout.kill(id, Signal::SIGKILL);
                }
            }
            return;
        }
        if let Some(liveness) = c.liveness.as_mut()
            && run(liveness, "Liveness") == Some(false)
        {
            tracing::info!(container = %id, "liveness probe failed: killing the container");
            let _ = layout.kill(id, Signal::SIGKILL);
            return;
        }
        match c.readiness.as_mut() {
            Some(readiness) => {
                if let Some(verdict) = run(readiness, "Readiness") {
                    c.ready = verdict;
                }
            }
            None => c.ready = true,
        }
    }

    fn status(&self) -> PodStatus {
        let containers: Vec<ContainerStatus> = self
            .containers
            .iter()
            .map(|c| {
                let state = if let Some((exit_code, reason)) = &c.terminated {
                    ContainerState::Terminated { exit_code: *exit_code, reason: reason.clone() }
                } else if let (Some(_), Some((_, started_at))) = (&c.id, &c.started) {
                    ContainerState::Running { started_at: started_at.clone() }
                } else if c.restart_at.is_some() {
                    ContainerState::Waiting { reason: "CrashLoopBackOff".into(), message: None }
                } else {
                    ContainerState::Waiting { reason: "ContainerCreating".into(), message: None }
                };
                ContainerStatus {
                    name: c.request.name.clone(),
                    state,
                    last_termination: c.last_termination.clone(),
                    ready: c.ready,
                    restart_count: c.instances.saturating_sub(1),
                    probe_failures: c.probe_failures,
                    probe_message: c.probe_message.clone(),
                    container_id: c.id.clone(),
                    image_id: c.id.as_ref().map(|_| c.request.image_id.clone()),
                }
            })
            .collect();
        let observed: Vec<Observed> = self
            .containers
            .iter()
            .map(|c| match (&c.terminated, &c.id, &c.last_termination) {
                (Some((code, _)), _, _) => Observed::Exited(*code),
                (None, Some(_), _) => Observed::Running,
                (None, None, Some((code, _))) => Observed::Exited(*code),
                (None, None, None) => Observed::Waiting,
            })
            .collect();
        PodStatus { phase: phase::phase(self.request.restart_policy, &observed), pod_ip: self.placement.ip.map(|ip| ip.to_string()), containers }
    }

    /// SIGTERM every running container; returns their ids.
    fn terminate(&mut self) -> Vec<String> {
        let ids: Vec<String> = self.containers.iter().filter_map(|c| c.id.clone()).collect();
        for id in &ids {
            let _ = self.layout.kill(id, Signal::SIGTERM);
        }
        ids
    }

    /// Removes every instance of every container: the pod is gone, logs
    /// included.
    fn remove_all(&mut self) {
        for c in &mut self.containers {
            for instance in c.instances.saturating_sub(2)..c.instances {
                let _ = self.layout.remove(&instance_id(&self.request.uid, &c.request.name, instance));
            }
            c.id = None;
            c.ready = false;
        }
    }
}
