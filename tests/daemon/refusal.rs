//! An invalid commit is refused whole: nothing of it is applied, the last
//! good revision keeps serving, and the refusal is recorded where users
//! look (status, history, events, the ledger).

use std::time::Duration;

use crate::cluster::{Cluster, http_get, name, pod_ip, web};

#[test]
fn an_invalid_commit_is_refused_whole_while_the_old_pods_keep_serving() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(2, "1", "{type: RollingUpdate}"))]);
    cluster.start();
    let pods = cluster.wait_ready("web-", 2, Duration::from_secs(30));
    let before: Vec<String> = pods.iter().map(name).collect();

    // A good change and a bad object in one commit.
    let bad = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n    targetPort: 8080\n    nodePort: 30080\n";
    cluster.commit(&[("apps/web.yaml", &web(3, "2", "{type: RollingUpdate}")), ("apps/svc.yaml", bad)], "web v2 with a node port on a ClusterIP");
    let status = cluster.wait_for("the refusal", Duration::from_secs(10), || {
        let out = cluster.cli_ok(&["status"]);
        out.contains("Refused:").then_some(out)
    });
    assert!(status.contains("apps/svc.yaml:9:"), "the error names the file and line: {status}");
    assert!(status.contains("nodePort"), "and the field: {status}");
    assert!(status.contains("Running:") && status.contains("\"initial\""), "the last good revision still runs: {status}");

    let pods = cluster.pods();
    let now: Vec<String> = pods.iter().map(name).collect();
    assert_eq!(now, before, "nothing of the refused commit was applied");
    for pod in &pods {
        assert_eq!(http_get(&pod_ip(pod), 8080, "/").unwrap().trim(), "version 1");
    }
    assert!(cluster.try_get("/api/v1/namespaces/default/services/web").is_err(), "the service was not created");
    let history = cluster.cli_ok(&["history", "-v"]);
    assert!(history.contains("refused") && history.contains("apps/svc.yaml:9:"), "{history}");
    let events = cluster.cli_ok(&["get", "events"]);
    assert!(events.contains("SyncRefused"), "{events}");
    let ledger = cluster.git(&["log", "-1", "--format=%B", "refs/driftless/applied"]);
    assert!(ledger.starts_with("refused") && ledger.contains("Error: apps/svc.yaml:9:"), "{ledger}");
    assert_eq!(cluster.git(&["rev-parse", "--abbrev-ref", "HEAD"]).trim(), "main", "the user's branch is untouched");

    // The fix is applied.
    cluster.commit(&[("apps/svc.yaml", &bad.replace("    nodePort: 30080\n", ""))], "fix the service");
    cluster.wait_for("version 2", Duration::from_secs(60), || {
        let pods = cluster.pods();
        (pods.len() == 3 && pods.iter().all(|p| http_get(&pod_ip(p), 8080, "/").is_some_and(|b| b.trim() == "version 2"))).then_some(())
    });
    let status = cluster.cli_ok(&["status"]);
    assert!(!status.contains("Refused:") && status.contains("fix the service"), "{status}");
}
