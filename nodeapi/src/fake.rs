//! A runtime that runs nothing: it records what it is asked and reports the
//! statuses a test sets, so callers (the kubelet) are tested without root,
//! processes or a clock.

use std::collections::BTreeMap;
use std::sync::Mutex;

use driftless_model::k8s_openapi::api::core::v1::Pod;

use crate::{ContainerUsage, Credentials, ImageStep, Images, NodeError, NodeUsage, Phase, PodRuntime, PodStatus, Resolve, ResolvedImage};

/// Images on a node that has every image, and no layers in any: for tests
/// of callers that resolve images but run nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct FakeImages;

impl Images for FakeImages {
    fn image(&self, _: &str, _: &str, _: Option<&Credentials>, report: &mut dyn FnMut(ImageStep)) -> Result<ResolvedImage, String> {
        report(ImageStep::Present);
        Ok(ResolvedImage::default())
    }
}

/// One call the fake received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// `run_pod` with the pod's uid.
    Run(String),
    /// `stop_pod` with the pod's uid.
    Stop(String),
    /// `refresh` with the pod's uid.
    Refresh(String),
}

/// A recording, scriptable [`PodRuntime`].
#[derive(Default)]
pub struct FakeRuntime {
    calls: Mutex<Vec<Call>>,
    statuses: Mutex<BTreeMap<String, PodStatus>>,
    /// Pods whose next runs fail with an image pull back-off: image and
    /// how long until the next pull.
    backoffs: Mutex<BTreeMap<String, (String, std::time::Duration)>>,
    /// What `usage` reports, by pod uid.
    usage: Mutex<BTreeMap<String, Vec<ContainerUsage>>>,
    /// What `node_usage` reports.
    node_usage: Mutex<Option<NodeUsage>>,
    /// Whom `set_status` tells (see [`PodRuntime::on_status_change`]).
    on_change: Mutex<Option<crate::StatusChanged>>,
}

impl FakeRuntime {
    /// The calls received so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes `pod_status(uid)` report `status` from now on (a pod found
    /// running, when the runtime was not asked to run it).
    /// Tells whoever asked to be told of changes.
    pub fn set_status(&self, uid: &str, status: PodStatus) {
        self.statuses.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.to_owned(), status);
        let on_change = self.on_change.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(on_change) = on_change {
            on_change();
        }
    }

    /// Whether someone asked to be told of status changes.
    pub fn watched(&self) -> bool {
        self.on_change.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Makes runs of `uid` fail with an image pull back-off until
    /// [`FakeRuntime::pull_succeeds`].
    pub fn pull_fails(&self, uid: &str, image: &str, retry_in: std::time::Duration) {
        self.backoffs.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.to_owned(), (image.to_owned(), retry_in));
    }

    /// Makes `usage(uid)` report `reading` from now on.
    pub fn set_usage(&self, uid: &str, reading: Vec<ContainerUsage>) {
        self.usage.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.to_owned(), reading);
    }

    /// Makes `node_usage()` report `reading` from now on.
    pub fn set_node_usage(&self, reading: NodeUsage) {
        *self.node_usage.lock().unwrap_or_else(|e| e.into_inner()) = Some(reading);
    }

    /// Lets runs of `uid` succeed again.
    pub fn pull_succeeds(&self, uid: &str) {
        self.backoffs.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
    }
}

impl PodRuntime for FakeRuntime {
    fn run_pod(&self, pod: &Pod, _resolve: &dyn Resolve) -> Result<(), NodeError> {
        let uid = pod.metadata.uid.clone().ok_or(NodeError::NoUid)?;
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(Call::Run(uid.clone()));
        if let Some((image, retry_in)) = self.backoffs.lock().unwrap_or_else(|e| e.into_inner()).get(&uid).cloned() {
            return Err(NodeError::ImagePullBackOff { image, message: "the registry is unreachable".into(), retry_in });
        }
        self.statuses.lock().unwrap_or_else(|e| e.into_inner()).entry(uid).or_insert(PodStatus { phase: Phase::Pending, pod_ip: None, containers: vec![] });
        Ok(())
    }

    fn pod_status(&self, uid: &str) -> Option<PodStatus> {
        self.statuses.lock().unwrap_or_else(|e| e.into_inner()).get(uid).cloned()
    }

    fn on_status_change(&self, on_change: crate::StatusChanged) {
        *self.on_change.lock().unwrap_or_else(|e| e.into_inner()) = Some(on_change);
    }

    fn stop_pod(&self, uid: &str) -> Result<(), NodeError> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(Call::Stop(uid.to_owned()));
        self.statuses.lock().unwrap_or_else(|e| e.into_inner()).remove(uid);
        Ok(())
    }

    fn refresh(&self, pod: &Pod, _: &dyn Resolve) -> Result<(), NodeError> {
        let uid = pod.metadata.uid.clone().ok_or(NodeError::NoUid)?;
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(Call::Refresh(uid));
        Ok(())
    }

    fn log_path(&self, _: &str, _: &str, _: bool) -> Option<std::path::PathBuf> {
        None
    }

    fn exec(&self, _: &str, _: &str, _: &[String], _: bool) -> Option<std::process::Command> {
        None
    }

    /// A fake pod shares the host's loopback.
    fn connect(&self, _: &str, port: u16) -> std::io::Result<std::net::TcpStream> {
        std::net::TcpStream::connect_timeout(&(std::net::Ipv4Addr::LOCALHOST, port).into(), std::time::Duration::from_secs(5))
    }

    fn pods(&self) -> Vec<String> {
        self.statuses.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    fn usage(&self, uid: &str) -> Vec<ContainerUsage> {
        self.usage.lock().unwrap_or_else(|e| e.into_inner()).get(uid).cloned().unwrap_or_default()
    }

    fn node_usage(&self) -> Option<NodeUsage> {
        self.node_usage.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoResolve;

    impl Resolve for NoResolve {
        fn image(&self, reference: &str, _: &str, _: Option<&crate::Credentials>) -> Result<crate::ResolvedImage, String> {
            Err(format!("no image {reference}"))
        }
        fn config_map(&self, _: &str, _: &str) -> Option<BTreeMap<String, Vec<u8>>> {
            None
        }
        fn secret(&self, _: &str, _: &str) -> Option<BTreeMap<String, Vec<u8>>> {
            None
        }
        fn claim(&self, _: &str, _: &str) -> Option<std::path::PathBuf> {
            None
        }
    }

    #[test]
    fn records_calls_and_reports_scripted_statuses() {
        let fake = FakeRuntime::default();
        let mut pod = Pod::default();
        assert!(matches!(fake.run_pod(&pod, &NoResolve), Err(NodeError::NoUid)));
        pod.metadata.uid = Some("u1".into());
        fake.run_pod(&pod, &NoResolve).unwrap();
        assert_eq!(fake.pod_status("u1").unwrap().phase, Phase::Pending);
        fake.set_status("u1", PodStatus { phase: Phase::Running, pod_ip: Some("10.244.0.2".into()), containers: vec![] });
        assert_eq!(fake.pod_status("u1").unwrap().phase, Phase::Running);
        assert_eq!(fake.pods(), ["u1"]);
        fake.stop_pod("u1").unwrap();
        assert_eq!(fake.calls(), [Call::Run("u1".into()), Call::Stop("u1".into())]);
        assert!(fake.pods().is_empty());
    }
}
