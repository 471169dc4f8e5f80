//! `driftless plan --live` and `driftless diff`: a revision planned against
//! what the daemon runs, through its API, with the engine the daemon
//! applies with; allocated fields are not changes, and nothing is applied.

use std::time::Duration;

use crate::cluster::{Cluster, web};

const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n  ports:\n  - port: 80\n    targetPort: 8080\n";

#[test]
fn diff_shows_what_a_merge_would_change_in_what_runs() {
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(2, "1", "{type: RollingUpdate}")), ("apps/svc.yaml", SERVICE)]);
    cluster.start();
    cluster.wait_ready("web-", 2, Duration::from_secs(30));
    cluster.wait_for("the service's address", Duration::from_secs(10), || {
        cluster.try_get("/api/v1/namespaces/default/services/web").ok()?.pointer("/spec/clusterIP").and_then(|ip| ip.as_str().map(str::to_owned))
    });
    let repo = cluster.repo.display().to_string();

    // What runs is main: no differences, though the store holds fields git
    // never wrote (the allocated clusterIP, defaults, status).
    let same = cluster.cli(&["diff", "--repo", &repo]);
    let text = String::from_utf8_lossy(&same.stdout);
    assert_eq!(same.status.code(), Some(0), "{text}{}", String::from_utf8_lossy(&same.stderr));
    assert!(text.contains("No changes.") && text.contains("from what runs (at"), "{text}");

    // A pull request's branch: more replicas and a new ConfigMap.
    cluster.git(&["checkout", "-q", "-b", "feature"]);
    let config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n";
    let feature = cluster.commit(&[("apps/web.yaml", &web(3, "1", "{type: RollingUpdate}")), ("apps/settings.yaml", config)], "three replicas");
    cluster.git(&["checkout", "-q", "main"]);

    let changed = cluster.cli(&["diff", "--repo", &repo, "--to", "feature", "--color", "never"]);
    let text = String::from_utf8_lossy(&changed.stdout);
    assert_eq!(changed.status.code(), Some(1), "differences exit 1 as kubectl diff: {text}{}", String::from_utf8_lossy(&changed.stderr));
    assert!(text.contains(&format!("to {} \"three replicas\"", &feature[..7])), "{text}");
    assert!(text.contains("ConfigMap default/settings") && text.contains("Deployment default/web"), "{text}");
    assert!(text.contains("replicas") && text.contains('3'), "{text}");
    assert!(!text.contains("clusterIP"), "allocated fields are not changes: {text}");

    let markdown = cluster.cli_ok(&["plan", "--live", "--repo", &repo, "--to", "feature", "-o", "markdown"]);
    assert!(markdown.contains("live (`") && markdown.contains("**Driftless plan:**"), "{markdown}");
    let json: serde_json::Value = serde_json::from_str(&cluster.cli_ok(&["plan", "--live", "--repo", &repo, "--to", "feature", "-o", "json"])).unwrap();
    assert_eq!(json["from"]["live"], true, "{json:#}");
    assert_eq!(json["to"]["id"], feature.as_str(), "{json:#}");

    // Planning applied nothing.
    assert_eq!(cluster.pods().len(), 2);
    assert!(cluster.try_get("/api/v1/namespaces/default/configmaps/settings").is_err());

    // A revision the daemon would refuse is not a difference: exit 2.
    cluster.git(&["checkout", "-q", "feature"]);
    cluster.commit(&[("apps/svc.yaml", &format!("{SERVICE}    nodePort: 30080\n"))], "a node port on a ClusterIP");
    cluster.git(&["checkout", "-q", "main"]);
    let refused = cluster.cli(&["diff", "--repo", &repo, "--to", "feature"]);
    let text = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(2), "{text}");
    assert!(text.contains("would refuse it whole") && text.contains("apps/svc.yaml:"), "{text}");
}
