//! The web dashboard in a real browser (Debian's Chromium through
//! chromedriver): signing in with a token, the Overview and Workloads pages
//! on a daemon running real pods, a Deployment becoming Healthy after a
//! commit on a page left open (live updates), a pod's log receiving a new
//! line, a refused commit's error with its file:line, rolling back from
//! History to a commit whose version then serves, and what a phone-width
//! screen shows. Screenshots of each page go to `target/tmp/dashboard/`.

use std::time::Duration;

use crate::browser::Browser;
use crate::cluster::{Cluster, versions, web};

const TOKEN: &str = "31ada4fd-adec-460c-809a-9e56ceb75269";

/// A pod that writes a line at start and then whatever is written to its
/// standard output (the test does so through exec).
const TALKER: &str = "apiVersion: v1
kind: Pod
metadata:
  name: talker
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: talk
    image: busybox:1.35
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'echo talker started; exec sleep 3600']
";

fn shot(browser: &Browser, name: &str) {
    browser.screenshot(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard").join(format!("{name}.png")));
}

#[test]
fn sign_in_and_watch_what_runs_and_what_was_refused() {
    let port = crate::ports::free_port();
    let mut cluster = Cluster::new(&[("apps/web.yaml", &web(2, "1", "{type: RollingUpdate}")), ("apps/talker.yaml", TALKER)]);
    let tokens = cluster.dir.path().join("tokens.csv");
    std::fs::write(&tokens, format!("{TOKEN},grace,grace@example.invalid\n")).unwrap();
    let address = format!("127.0.0.1:{port}");
    cluster.start_with(&["--listen", &address, "--token-file", tokens.to_str().unwrap()]);
    cluster.wait_ready("web-", 2, Duration::from_secs(30));
    cluster.wait_ready("talker", 1, Duration::from_secs(30));
    let base = format!("https://{address}/ui/");

    let browser = Browser::start();
    // The first load retries while the browser shows a network error page
    // (a machine busy with other tests can be slow to finish a handshake).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        browser.goto(&base);
        if browser.url().ends_with("/ui/login") {
            break;
        }
        let error = browser.source();
        let excerpt: String = error.split("error-code").nth(1).unwrap_or_default().chars().take(120).collect();
        assert!(std::time::Instant::now() < deadline, "the dashboard did not load: {excerpt}");
        eprintln!("dashboard not loaded yet ({excerpt}); retrying");
        std::thread::sleep(Duration::from_millis(500));
    }
    // A wrong token is refused, and not echoed.
    browser.fill("#token", "not-a-token");
    browser.click("button[type=submit]");
    browser.wait_for_text("[role=alert]", "That token is not valid.", Duration::from_secs(10));
    assert!(!browser.source().contains("not-a-token"));
    shot(&browser, "login");

    browser.fill("#token", TOKEN);
    browser.click("button[type=submit]");
    browser.wait_for_text("h1", "Overview", Duration::from_secs(10));
    let session = browser.cookie("driftless_session");
    assert!(session.http_only && session.secure, "{session:?}");
    assert_eq!(session.same_site.as_deref(), Some("Strict"), "{session:?}");
    let head = cluster.git(&["rev-parse", "HEAD"]).trim().to_owned();
    browser.wait_for_text("main", &head[..7], Duration::from_secs(10));
    assert!(browser.text("main").contains("initial"), "{}", browser.text("main"));
    shot(&browser, "overview");

    // The Deployment and what it made, Healthy once its pods are Ready.
    browser.click("nav a[href='/ui/workloads']");
    browser.wait_for_text("h1", "Workloads", Duration::from_secs(10));
    let deployment = browser.wait_for("tr[data-kind=Deployment][data-name=web]", Duration::from_secs(10));
    assert!(deployment.text().contains("Healthy"), "{}", deployment.text());
    assert_eq!(browser.find_all("tr[data-kind=Pod]").len(), 3);
    shot(&browser, "workloads");

    // A pod's page: its containers, and its log followed live.
    browser.click("tr[data-kind=Pod][data-name=talker] a");
    browser.wait_for_text("h1", "Pod/talker", Duration::from_secs(10));
    browser.wait_for_text("tr[data-container=talk]", "running", Duration::from_secs(10));
    browser.wait_for_text("pre.logs", "talker started", Duration::from_secs(15));
    let marker = format!("a line written at {:?}", std::time::SystemTime::now());
    let said = cluster.cli(&["exec", "talker", "--", "sh", "-c", &format!("echo '{marker}' > /proc/1/fd/1")]);
    assert!(said.status.success(), "{}", String::from_utf8_lossy(&said.stderr));
    browser.wait_for_text("pre.logs", &marker, Duration::from_secs(15));
    assert!(browser.text("section[aria-labelledby=git]").contains("apps/talker.yaml:1"), "{}", browser.text("main"));
    assert!(browser.text("section[aria-labelledby=drift]").contains("What runs matches git."), "{}", browser.text("main"));
    shot(&browser, "object-pod");

    // A refused commit: its error at file:line on the Overview.
    let bad = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n    targetPort: 8080\n    nodePort: 30080\n";
    let refused = cluster.commit(&[("apps/svc.yaml", bad)], "a node port on a ClusterIP");
    cluster.wait_for("the refusal", Duration::from_secs(10), || cluster.cli_ok(&["status"]).contains("Refused:").then_some(()));
    browser.goto(&base);
    let section = browser.wait_for_text("section.refused", &refused[..7], Duration::from_secs(10));
    assert!(section.contains("apps/svc.yaml:9:"), "{section}");
    shot(&browser, "overview-refused");

    // History: the refusal and the first sync, each opening to what it did.
    browser.click("nav a[href='/ui/history']");
    browser.wait_for_text("h1", "History", Duration::from_secs(10));
    let row = browser.wait_for(&format!("li[data-commit='{refused}']"), Duration::from_secs(10));
    row.click();
    let refused_row = browser.wait_for_text(&format!("li[data-commit='{refused}'] ul.errors"), "apps/svc.yaml:9:", Duration::from_secs(10));
    assert!(refused_row.contains("nodePort"), "{refused_row}");
    browser.click(&format!("li[data-commit='{head}'] summary"));
    let applied = browser.wait_for_text(&format!("li[data-commit='{head}'] table"), "Deployment default/web", Duration::from_secs(10));
    assert!(applied.contains("create"), "{applied}");
    shot(&browser, "history");

    // A commit while Workloads is open: the page follows the rollout by
    // itself to the Deployment Healthy at the new commit.
    browser.click("nav a[href='/ui/workloads']");
    browser.wait_for_text("h1", "Workloads", Duration::from_secs(10));
    let fixed = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n    targetPort: 8080\n";
    let second = cluster.commit(&[("apps/web.yaml", &web(2, "2", "{type: RollingUpdate}")), ("apps/svc.yaml", fixed)], "web v2");
    let row = "tr[data-kind=Deployment][data-name=web]";
    browser.wait_for_text(row, &second[..7], Duration::from_secs(30));
    browser.wait_for_text(row, "Healthy", Duration::from_secs(60));
    assert!(browser.url().ends_with("/ui/workloads"), "no reload: {}", browser.url());
    cluster.wait_for("version 2 serving", Duration::from_secs(60), || (versions(&cluster) == ["version 2", "version 2"]).then_some(()));
    shot(&browser, "workloads-after-commit");

    // Roll back from History to the first commit: the commit is shown
    // first, made on confirming, and version 1 serves again.
    browser.click("nav a[href='/ui/history']");
    browser.wait_for(&format!("li[data-commit='{second}']"), Duration::from_secs(30));
    browser.click(&format!("li[data-commit='{head}'] summary"));
    browser.click(&format!("li[data-commit='{head}'] a[href^='/ui/rollback']"));
    let preview = browser.wait_for_text("pre.commit", &format!("Roll back to {}", &head[..7]), Duration::from_secs(30));
    assert!(preview.contains("web v2"), "the commit names what it undoes: {preview}");
    assert!(browser.text("main").contains("update"), "the plan: {}", browser.text("main"));
    shot(&browser, "rollback-confirm");
    assert_eq!(cluster.git(&["rev-parse", "HEAD"]).trim(), second, "nothing committed before confirming");
    browser.click("main form button[type=submit]");
    browser.wait_for_text("[role=status]", "Committed", Duration::from_secs(90));
    let rollback = cluster.git(&["log", "-1", "--format=%H %an %s"]);
    assert!(rollback.contains(&format!("grace Roll back to {}", &head[..7])), "{rollback}");
    assert_eq!(cluster.git(&["diff", &head, "HEAD", "--", "apps"]), "", "the manifests are the first commit's");
    cluster.wait_for("version 1 serving again", Duration::from_secs(60), || (versions(&cluster) == ["version 1", "version 1"]).then_some(()));
    let made = rollback.split(' ').next().unwrap_or_default().to_owned();
    browser.wait_for(&format!("li[data-commit='{made}'][data-result=applied]"), Duration::from_secs(30));
    shot(&browser, "history-rolled-back");

    // Plan: v2 against the rollback, as its pull-request comment renders.
    browser.goto(&format!("{base}plan?from={second}&to={made}"));
    let plan = browser.wait_for_text("main", "rolls pods", Duration::from_secs(30));
    assert!(plan.contains("web") && plan.contains("spec.template.spec.containers[0].command"), "{plan}");
    shot(&browser, "plan");

    // A phone's width: nothing needs scrolling sideways.
    browser.set_window_size(390, 987);
    browser.goto(&base);
    browser.wait_for_text("h1", "Overview", Duration::from_secs(10));
    assert!(!browser.overflows_horizontally(), "the Overview fits a phone's width");
    shot(&browser, "overview-phone");
    for (page, heading) in [("workloads", "Workloads"), ("history", "History"), ("objects/Pod/default/talker", "talker"), ("plan", "Plan")] {
        browser.goto(&format!("{base}{page}"));
        browser.wait_for_text("h1", heading, Duration::from_secs(30));
        assert!(!browser.overflows_horizontally(), "{page} fits a phone's width");
        shot(&browser, &format!("{}-phone", page.split('/').next().unwrap_or(page)));
    }

    // Signing out ends the session: the pages ask to sign in again.
    browser.click("form.who button[type=submit]");
    browser.wait_for_url("the login page", Duration::from_secs(10), |url| url.ends_with("/ui/login"));
    browser.goto(&base);
    browser.wait_for_url("the login page again", Duration::from_secs(10), |url| url.ends_with("/ui/login"));
    browser.close();
}
