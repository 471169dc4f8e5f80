//! A real headless Chromium driven over WebDriver, for end-to-end tests of
//! the web dashboard.
//!
//! `Browser::start()` runs Debian's `chromedriver` on a free 127.0.0.1 port
//! and opens one headless Chromium session through it (fantoccini). The
//! browser trusts any certificate (the daemon serves HTTPS with a CA of its
//! own under the data folder), uses no proxy and keeps its profile in a
//! temporary folder. The API is synchronous, for plain `#[test]` functions:
//! the harness holds a current-thread tokio runtime and blocks on it, so do
//! not call it from inside another runtime.
//!
//! Every helper panics on failure, with the page's URL and an excerpt of its
//! source in the message. Dropping the `Browser` (also while a test panics)
//! ends the session, then kills chromedriver's whole process group and any
//! process still using the profile, so no Chromium is left behind; on a
//! panic it first saves a screenshot under CARGO_TARGET_TMPDIR.
//!
//! Needs `chromium` and `chromium-driver` (scripts/setup.sh installs them).

use std::future::Future;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element as WdElement;
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use rustix::process::{Pid, Signal, kill_process, kill_process_group};
use serde_json::{Value, json};

use crate::ports::free_port;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long chromedriver may take to answer `/status` with `ready: true`.
const DRIVER_DEADLINE: Duration = Duration::from_secs(30);
/// How long one WebDriver command (a navigation included) may take.
const COMMAND_DEADLINE: Duration = Duration::from_secs(60);
/// How long `close()` and Drop wait for the session to end cleanly.
const CLOSE_DEADLINE: Duration = Duration::from_secs(10);
/// How often the `wait_*` helpers look again.
const POLL: Duration = Duration::from_millis(100);

/// One headless Chromium session and the chromedriver that runs it.
pub(crate) struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Option<Child>,
    /// The profile (`--user-data-dir`) and chromedriver's log.
    dir: tempfile::TempDir,
    /// From spawning chromedriver to an open session.
    pub(crate) started_in: Duration,
}

/// A cookie as the browser holds it, for asserting on its flags.
#[derive(Clone, Debug)]
pub(crate) struct BrowserCookie {
    pub(crate) name: String,
    pub(crate) value: String,
    pub(crate) domain: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    /// "Strict", "Lax" or "None", when the browser reports one.
    pub(crate) same_site: Option<String>,
}

/// An element found on the current page; valid until the page changes.
pub(crate) struct Element<'b> {
    browser: &'b Browser,
    inner: WdElement,
    css: String,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session (1280x900).
    #[track_caller]
    pub(crate) fn start() -> Browser {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(Path::new(tool).exists(), "{tool} is missing: browser tests need Debian's chromium and chromium-driver (scripts/setup.sh)");
        }
        let begun = Instant::now();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        let dir = tempfile::Builder::new().prefix("driftless-browser-").tempdir().expect("temporary folder");
        let profile = dir.path().join("profile");
        let log = dir.path().join("chromedriver.log");
        let mut browser = Browser { rt, client: None, driver: None, dir, started_in: Duration::ZERO };

        // The port is free when chosen but could be taken before chromedriver
        // binds it; a driver that exits early is started again on another.
        let mut port = 0;
        for attempt in 1..=3 {
            port = free_port();
            let child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so that Drop can kill chromedriver
                // and every browser process it started at once.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {CHROMEDRIVER}: {e}"));
            browser.driver = Some(child);
            match browser.wait_for_driver(port) {
                Ok(()) => break,
                Err(why) if attempt < 3 => {
                    eprintln!("browser: chromedriver on port {port} did not start ({why}); trying another port");
                    browser.kill_driver();
                }
                Err(why) => panic!("chromedriver did not start: {why}\n{}", tail(&log, 2000)),
            }
        }

        let caps = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "pageLoadStrategy": "normal",
            "proxy": { "proxyType": "direct" },
            "timeouts": { "implicit": 0, "pageLoad": 30_000, "script": 30_000 },
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    "--no-proxy-server",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-extensions",
                    "--password-store=basic",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let url = format!("http://127.0.0.1:{port}");
        let client =
            browser.rt.block_on(async { tokio::time::timeout(COMMAND_DEADLINE, ClientBuilder::new(connector).capabilities(caps).connect(&url)).await });
        match client {
            Ok(Ok(client)) => browser.client = Some(client),
            Ok(Err(e)) => panic!("cannot open a Chromium session: {e}\n{}", tail(&log, 2000)),
            Err(_) => panic!("no Chromium session after {COMMAND_DEADLINE:?}\n{}", tail(&log, 2000)),
        }
        browser.started_in = begun.elapsed();
        browser
    }

    /// Opens `url` and waits for it to load.
    #[track_caller]
    pub(crate) fn goto(&self, url: &str) {
        if let Err(e) = self.cmd(self.client().goto(url)) {
            self.fail(&format!("cannot open {url}: {e}"));
        }
    }

    /// The address of the current page.
    #[track_caller]
    pub(crate) fn url(&self) -> String {
        match self.cmd(self.client().current_url()) {
            Ok(url) => url.to_string(),
            Err(e) => panic!("cannot read the current URL: {e}"),
        }
    }

    /// The HTML of the current page, as the browser holds it now.
    #[track_caller]
    pub(crate) fn source(&self) -> String {
        match self.cmd(self.client().source()) {
            Ok(source) => source,
            Err(e) => self.fail(&format!("cannot read the page source: {e}")),
        }
    }

    /// The first element matching `css`; fails if there is none.
    #[track_caller]
    pub(crate) fn find(&self, css: &str) -> Element<'_> {
        match self.cmd(self.client().find(Locator::Css(css))) {
            Ok(inner) => Element { browser: self, inner, css: css.to_owned() },
            Err(e) => self.fail(&format!("no element matches {css:?}: {e}")),
        }
    }

    /// Every element matching `css` (maybe none).
    #[track_caller]
    pub(crate) fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        match self.cmd(self.client().find_all(Locator::Css(css))) {
            Ok(all) => all.into_iter().map(|inner| Element { browser: self, inner, css: css.to_owned() }).collect(),
            Err(e) => self.fail(&format!("cannot look for {css:?}: {e}")),
        }
    }

    /// Whether some element matches `css` now.
    #[track_caller]
    pub(crate) fn exists(&self, css: &str) -> bool {
        !self.find_all(css).is_empty()
    }

    /// Clears the field matching `css` and types `text` into it.
    #[track_caller]
    pub(crate) fn fill(&self, css: &str, text: &str) {
        self.find(css).fill(text);
    }

    /// Clicks the element matching `css`.
    #[track_caller]
    pub(crate) fn click(&self, css: &str) {
        self.find(css).click();
    }

    /// The rendered text of the element matching `css`.
    #[track_caller]
    pub(crate) fn text(&self, css: &str) -> String {
        self.find(css).text()
    }

    /// Chromium abandons a page load when the machine's network changes
    /// (`ERR_NETWORK_CHANGED`), and other tests add and remove bridges and
    /// veths all the time: such a page is loaded again, as a user would
    /// press Reload. Whether it was one.
    fn reload_if_network_changed(&self) -> bool {
        let Ok(source) = self.cmd(self.client().source()) else { return false };
        if !source.contains("ERR_NETWORK_CHANGED") {
            return false;
        }
        let Ok(url) = self.cmd(self.client().current_url()) else { return false };
        eprintln!("browser: {url} was cut off by a network change on the machine; loading it again");
        self.cmd(self.client().goto(url.as_str())).is_ok()
    }

    /// Waits until an element matches `css`, looking every 100 ms.
    #[track_caller]
    pub(crate) fn wait_for(&self, css: &str, timeout: Duration) -> Element<'_> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(mut all) = self.cmd(self.client().find_all(Locator::Css(css)))
                && !all.is_empty()
            {
                return Element { browser: self, inner: all.swap_remove(0), css: css.to_owned() };
            }
            if self.reload_if_network_changed() {
                continue;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("no element matched {css:?} within {timeout:?}"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until the element matching `css` exists and its text contains
    /// `needle`, looking every 100 ms; returns that text.
    #[track_caller]
    pub(crate) fn wait_for_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            if let Ok(all) = self.cmd(self.client().find_all(Locator::Css(css)))
                && let Some(el) = all.first()
            {
                // The element may be replaced between finding and reading.
                if let Ok(text) = self.cmd(el.text()) {
                    if text.contains(needle) {
                        return text;
                    }
                    last = Some(text);
                }
            }
            // Chromium's error page has headings too (its `h1` says "Your
            // connection was interrupted"): look whatever was found.
            if self.reload_if_network_changed() {
                last = None;
                continue;
            }
            if Instant::now() >= deadline {
                let seen = match last {
                    Some(text) => format!("its text was {text:?}"),
                    None => "no element matched".to_owned(),
                };
                self.fail(&format!("{css:?} did not show {needle:?} within {timeout:?}: {seen}"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until the current URL satisfies `check`, looking every 100 ms.
    #[track_caller]
    pub(crate) fn wait_for_url(&self, what: &str, timeout: Duration, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(url) = self.cmd(self.client().current_url())
                && check(url.as_str())
            {
                return url.to_string();
            }
            // A load cut off by a network change keeps the address it was
            // going to, on Chromium's error page: a redirect it would have
            // followed never comes.
            if self.reload_if_network_changed() {
                continue;
            }
            if Instant::now() >= deadline {
                self.fail(&format!("the URL did not become {what} within {timeout:?}"));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Runs `script` (a function body: `return ...;`, arguments in
    /// `arguments`) in the page and gives back what it returns.
    #[track_caller]
    pub(crate) fn eval(&self, script: &str, args: Vec<Value>) -> Value {
        match self.cmd(self.client().execute(script, args)) {
            Ok(value) => value,
            Err(e) => self.fail(&format!("script failed: {e}\nscript: {script}")),
        }
    }

    /// Saves a PNG of the viewport to `path` (making its folder).
    #[track_caller]
    pub(crate) fn screenshot(&self, path: impl AsRef<Path>) {
        let path = path.as_ref();
        let png = match self.cmd(self.client().screenshot()) {
            Ok(png) => png,
            Err(e) => self.fail(&format!("cannot take a screenshot: {e}")),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("cannot make {}: {e}", parent.display()));
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }

    /// Resizes the window, e.g. to 390x844 for a phone's width. In headless
    /// Chromium the viewport (`innerWidth`) is then the same width.
    #[track_caller]
    pub(crate) fn set_window_size(&self, width: u32, height: u32) {
        if let Err(e) = self.cmd(self.client().set_window_size(width, height)) {
            self.fail(&format!("cannot resize the window to {width}x{height}: {e}"));
        }
    }

    /// Whether the page is wider than the viewport (sideways scrolling).
    #[track_caller]
    pub(crate) fn overflows_horizontally(&self) -> bool {
        let value = self.eval("return document.documentElement.scrollWidth > window.innerWidth;", vec![]);
        value.as_bool().unwrap_or_else(|| self.fail(&format!("unexpected script result {value}")))
    }

    /// The cookies the browser holds for the current page.
    #[track_caller]
    pub(crate) fn cookies(&self) -> Vec<BrowserCookie> {
        let all = match self.cmd(self.client().get_all_cookies()) {
            Ok(all) => all,
            Err(e) => self.fail(&format!("cannot read the cookies: {e}")),
        };
        all.into_iter()
            .map(|c| BrowserCookie {
                name: c.name().to_owned(),
                value: c.value().to_owned(),
                domain: c.domain().map(str::to_owned),
                path: c.path().map(str::to_owned),
                secure: c.secure().unwrap_or(false),
                http_only: c.http_only().unwrap_or(false),
                same_site: c.same_site().map(|s| s.to_string()),
            })
            .collect()
    }

    /// The cookie named `name`; fails if the browser holds none.
    #[track_caller]
    pub(crate) fn cookie(&self, name: &str) -> BrowserCookie {
        let all = self.cookies();
        match all.iter().find(|c| c.name == name) {
            Some(c) => c.clone(),
            None => {
                let names: Vec<_> = all.iter().map(|c| c.name.as_str()).collect();
                self.fail(&format!("no cookie named {name:?}; the browser holds {names:?}"))
            }
        }
    }

    /// Ends the session and stops chromedriver and Chromium (Drop does the
    /// same; this reports a session that would not close).
    #[track_caller]
    pub(crate) fn close(mut self) {
        let closed = self.end_session();
        self.kill_driver();
        if let Err(why) = closed {
            panic!("the browser session did not close cleanly: {why}");
        }
    }

    /// The session's temporary folder: Chromium's profile (`profile/`) and
    /// chromedriver's log (`chromedriver.log`); removed on Drop.
    pub(crate) fn temp_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The raw fantoccini client and runtime, for what the helpers lack.
    pub(crate) fn raw(&self) -> (&tokio::runtime::Runtime, &Client) {
        (&self.rt, self.client())
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the browser session is closed")
    }

    /// Blocks on one WebDriver exchange, within COMMAND_DEADLINE.
    fn cmd<T>(&self, fut: impl Future<Output = Result<T, CmdError>>) -> Result<T, String> {
        match self.rt.block_on(async { tokio::time::timeout(COMMAND_DEADLINE, fut).await }) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer from the browser within {COMMAND_DEADLINE:?}")),
        }
    }

    /// Panics with `what`, the current URL and the start of the page source.
    #[track_caller]
    fn fail(&self, what: &str) -> ! {
        let url = match self.client.as_ref().map(|c| self.cmd(c.current_url())) {
            Some(Ok(url)) => url.to_string(),
            _ => "(unknown)".to_owned(),
        };
        let source = match self.client.as_ref().map(|c| self.cmd(c.source())) {
            Some(Ok(source)) => excerpt(&source, 1500),
            _ => "(unavailable)".to_owned(),
        };
        panic!("browser: {what}\n  at {url}\n  page source: {source}");
    }

    fn wait_for_driver(&mut self, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + DRIVER_DEADLINE;
        loop {
            if let Some(status) = self.driver.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("chromedriver exited with {status}"));
            }
            let last = match driver_status(port) {
                Ok(body) if body.replace(' ', "").contains("\"ready\":true") => return Ok(()),
                Ok(body) => format!("not ready: {}", excerpt(&body, 300)),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(format!("not ready within {DRIVER_DEADLINE:?} ({last})"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn end_session(&mut self) -> Result<(), String> {
        let Some(client) = self.client.take() else { return Ok(()) };
        match self.rt.block_on(async { tokio::time::timeout(CLOSE_DEADLINE, client.close()).await }) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {CLOSE_DEADLINE:?}")),
        }
    }

    /// Kills chromedriver's process group, then whatever still runs with
    /// this session's profile (a browser that left the group), and reaps.
    fn kill_driver(&mut self) {
        if let Some(mut child) = self.driver.take() {
            // The group made for this child (process_group(0)), nothing else.
            if let Some(pgid) = Pid::from_raw(child.id() as i32) {
                let _ = kill_process_group(pgid, Signal::KILL);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        kill_users_of(self.dir.path());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() && self.client.is_some() {
            let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("browser-failure-{}-{}.png", std::process::id(), unique()));
            let shot = self.client.as_ref().map(|c| self.cmd(c.screenshot()));
            if let Some(Ok(png)) = shot
                && std::fs::write(&path, png).is_ok()
            {
                eprintln!("browser: screenshot of the failing page: {}", path.display());
            }
        }
        if let Err(why) = self.end_session() {
            eprintln!("browser: the session did not close cleanly ({why}); killing it");
        }
        self.kill_driver();
    }
}

impl Element<'_> {
    /// The rendered (visible) text.
    #[track_caller]
    pub(crate) fn text(&self) -> String {
        match self.browser.cmd(self.inner.text()) {
            Ok(text) => text,
            Err(e) => self.browser.fail(&format!("cannot read the text of {:?}: {e}", self.css)),
        }
    }

    /// An attribute as written in the HTML, if present.
    #[track_caller]
    pub(crate) fn attr(&self, name: &str) -> Option<String> {
        match self.browser.cmd(self.inner.attr(name)) {
            Ok(value) => value,
            Err(e) => self.browser.fail(&format!("cannot read {name} of {:?}: {e}", self.css)),
        }
    }

    /// A DOM property (e.g. "value" of a field, "checked" of a box).
    #[track_caller]
    pub(crate) fn prop(&self, name: &str) -> Option<String> {
        match self.browser.cmd(self.inner.prop(name)) {
            Ok(value) => value,
            Err(e) => self.browser.fail(&format!("cannot read property {name} of {:?}: {e}", self.css)),
        }
    }

    /// Whether it is shown (not hidden by CSS or out of the layout).
    #[track_caller]
    pub(crate) fn is_displayed(&self) -> bool {
        match self.browser.cmd(self.inner.is_displayed()) {
            Ok(shown) => shown,
            Err(e) => self.browser.fail(&format!("cannot tell whether {:?} is shown: {e}", self.css)),
        }
    }

    /// Its box on the page: (x, y, width, height) in CSS pixels.
    #[track_caller]
    pub(crate) fn rect(&self) -> (f64, f64, f64, f64) {
        match self.browser.cmd(self.inner.rectangle()) {
            Ok(rect) => rect,
            Err(e) => self.browser.fail(&format!("cannot measure {:?}: {e}", self.css)),
        }
    }

    /// Clicks it (scrolling it into view first, as a person would).
    #[track_caller]
    pub(crate) fn click(&self) {
        match self.browser.cmd(self.inner.click()) {
            Ok(()) => {}
            Err(e) => self.browser.fail(&format!("cannot click {:?}: {e}", self.css)),
        }
    }

    /// Clears the field and types `text` into it.
    #[track_caller]
    pub(crate) fn fill(&self, text: &str) {
        let typed = self.browser.cmd(async {
            self.inner.clear().await?;
            self.inner.send_keys(text).await
        });
        match typed {
            Ok(()) => {}
            Err(e) => self.browser.fail(&format!("cannot type into {:?}: {e}", self.css)),
        }
    }
}

/// GET /status from chromedriver (which refuses HTTP/1.0, and keeps the
/// connection open after answering, Connection: close or not: so read
/// Content-Length bytes of body).
fn driver_status(port: u16) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        response.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&response);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim().eq_ignore_ascii_case("content-length").then(|| value.trim().parse::<usize>().ok()).flatten()
            });
            if n == 0 || length.is_some_and(|length| body.len() >= length) {
                return Ok(body.to_owned());
            }
        }
        if n == 0 {
            return Ok(text.into_owned());
        }
    }
}

/// SIGKILLs every process whose command line names `dir` (the session's
/// profile lives there), e.g. a Chromium helper that left the group, and
/// waits a little for them to be gone.
fn kill_users_of(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut found = false;
        let Ok(procs) = std::fs::read_dir("/proc") else { return };
        for entry in procs.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()).and_then(Pid::from_raw) else { continue };
            // A zombie's command line is empty, so only live ones match.
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                found = true;
                let _ = kill_process(pid, Signal::KILL);
            }
        }
        if !found || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A number no other call in this process returns.
fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The start of `text` with runs of whitespace squeezed, at most `max` chars.
fn excerpt(text: &str, max: usize) -> String {
    let squeezed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match squeezed.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &squeezed[..cut]),
        None => squeezed,
    }
}

/// The last `max` bytes of a log file, for a failure message.
fn tail(path: &Path, max: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(max);
            format!("{} (end):\n{}", path.display(), String::from_utf8_lossy(&bytes[start..]))
        }
        Err(e) => format!("{}: {e}", path.display()),
    }
}
