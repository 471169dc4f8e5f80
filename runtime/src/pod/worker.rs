//! The pod worker: one thread per pod that keeps its containers as the
//! request says, level-triggered, every tick.
//!
//! Each tick, for each container: start it if it should run and is not
//! (after its back-off, if it crashed); if it exited, record how and decide
//! whether it restarts; if it runs, run the probes that are due. Then the
//! pod's status is recomputed and published. The worker owns no state that
//! is not also on disk or recomputed, so a worker started over an existing
//! pod carries on.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{ContainerRequest, ContainerState, ContainerStatus, PodRequest, PodStatus, Probe, probe_run};
use crate::lifecycle::backoff::Backoff;
use crate::lifecycle::phase::{self, Observed};
use crate::lifecycle::probe::ProbeState;
use crate::{ContainerConfig, Layout, Status};

/// How often the worker looks at its containers.
const TICK: Duration = Duration::from_millis(50);
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

/// A running pod worker.
pub struct PodHandle {
    status: Arc<Mutex<PodStatus>>,
    stop: Arc<AtomicBool>,
    abandon: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PodHandle {
    /// The pod's status as last computed.
    pub fn status(&self) -> PodStatus {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops the pod: SIGTERM, SIGKILL after the grace period, then removes
    /// its containers. Returns when they are gone.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Stops watching the pod but leaves its containers running, as a
    /// daemon that exits (to be upgraded, say) must: the next one adopts
    /// them. Dropping a handle stops the pod instead.
    pub fn abandon(mut self) {
        self.abandon.store(true, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for PodHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts a worker for `request` at `placement`.
pub fn start(layout: Layout, placement: Placement, request: PodRequest) -> PodHandle {
    let mut worker = Worker::new(layout, placement, request);
    let status = Arc::new(Mutex::new(worker.status()));
    let stop = Arc::new(AtomicBool::new(false));
    let abandon = Arc::new(AtomicBool::new(false));
    let (status_out, stop_in, abandon_in) = (status.clone(), stop.clone(), abandon.clone());
    let thread = std::thread::spawn(move || {
        while !stop_in.load(Ordering::SeqCst) {
            worker.tick();
            *status_out.lock().unwrap_or_else(|e| e.into_inner()) = worker.status();
            std::thread::sleep(TICK);
        }
        if !abandon_in.load(Ordering::SeqCst) {
            worker.shut_down();
            *status_out.lock().unwrap_or_else(|e| e.into_inner()) = worker.status();
        }
    });
    PodHandle { status, stop, abandon, thread: Some(thread) }
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
                Some(id) => match self.layout.status(&id) {
                    Ok(Some(Status::Exited { exit, .. })) => self.exited(index, &id, exit.code, exit.reason()),
                    Ok(Some(Status::Failed { .. })) => self.exited(index, &id, 128, "StartError"),
                    Ok(Some(Status::Running { .. })) => self.probe(index, &id, now),
                    _ => {}
                },
            }
        }
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
            Ok(Status::Running { started_at, .. }) => c.started = Some((Instant::now(), started_at)),
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

    /// SIGTERM every running container, SIGKILL what is left after the
    /// grace period, then remove them all.
    fn shut_down(&mut self) {
        let ids: Vec<String> = self.containers.iter().filter_map(|c| c.id.clone()).collect();
        for id in &ids {
            let _ = self.layout.kill(id, Signal::SIGTERM);
        }
        let deadline = Instant::now() + self.request.grace;
        for id in &ids {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.layout.wait(id, left).is_err() {
                let _ = self.layout.kill(id, Signal::SIGKILL);
                let _ = self.layout.wait(id, START_DEADLINE);
            }
        }
        // The pod is gone: so are all its instances, logs included.
        for c in &mut self.containers {
            for instance in c.instances.saturating_sub(2)..c.instances {
                let _ = self.layout.remove(&instance_id(&self.request.uid, &c.request.name, instance));
            }
            c.id = None;
            c.ready = false;
        }
    }
}
