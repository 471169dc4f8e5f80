//! A file of the repository as a commit holds it, each line numbered and
//! anchored (`#L9`), so that an error at `file:line` is one click from the
//! line it names.
//!
//! Must not touch: the repository beyond reading one blob of one commit.

use maud::{Markup, html};

use super::encode;

/// Largest file shown whole.
const MAX_BYTES: usize = 2 << 20;

/// An error `FILE:LINE[:COL]: ...` with its place linked to the file view
/// at `rev`; any other text as it is.
pub(crate) fn located(error: &str, rev: &str) -> Markup {
    match place(error) {
        Some((file, line, end)) => html! {
            code { a href={ "/ui/files?rev=" (rev) "&path=" (encode(file)) "#L" (line) } { (&error[..end]) } (&error[end..]) }
        },
        None => html! { code { (error) } },
    }
}

/// The file, line and end of the place an error starts with.
fn place(error: &str) -> Option<(&str, u32, usize)> {
    let (file, rest) = error.split_once(':')?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let line: u32 = rest[..digits].parse().ok()?;
    let mut end = file.len() + 1 + digits;
    // `:COL` too, when there is one.
    let after = &error[end..];
    if let Some(col) = after.strip_prefix(':') {
        let n = col.bytes().take_while(u8::is_ascii_digit).count();
        if n > 0 {
            end += 1 + n;
        }
    }
    (!file.is_empty() && !file.contains(' ')).then_some((file, line, end))
}

/// The page: `path` at `rev` of the repository at `repo`, if the path is
/// under `manifests` (the watched path: the page shows what the daemon
/// reads, not the rest of the repository).
pub(crate) fn render(repo: Option<&std::path::Path>, manifests: &str, rev: &str, path: &str) -> Markup {
    let text = if under(manifests, path) { read(repo, rev, path) } else { Err(format!("{path} is not under the watched path {manifests:?}")) };
    html! {
        h1 { code { (path) } }
        p.muted { "At commit " code { (&rev[..rev.len().min(7)]) } }
        @match text {
            Ok(text) => {
                div.table-wrap { table.file {
                    tbody { @for (i, line) in text.lines().enumerate() {
                        tr id={ "L" (i + 1) } { td.num { a href={ "#L" (i + 1) } { (i + 1) } } td { code { (line) } } }
                    } }
                } }
            }
            Err(why) => p.error role="alert" { (why) },
        }
    }
}

/// Whether `path` is `manifests` or inside it.
fn under(manifests: &str, path: &str) -> bool {
    let (manifests, path) = (manifests.trim_matches('/'), path.trim_matches('/'));
    manifests.is_empty() || path == manifests || path.strip_prefix(manifests).is_some_and(|rest| rest.starts_with('/'))
}

fn read(repo: Option<&std::path::Path>, rev: &str, path: &str) -> Result<String, String> {
    let repo = repo.ok_or("this daemon syncs no repository")?;
    if rev.len() > 64 || !rev.bytes().all(|b| b.is_ascii_hexdigit()) || path.len() > 4096 {
        return Err("name a commit by its id and a file by its path".into());
    }
    let git = driftless_manifest::GitRepo::open(repo).map_err(|e| e.to_string())?;
    let (_, files) = git.load(rev, path).map_err(|e| e.to_string())?;
    let file = files.into_iter().find(|f| &*f.path == path.trim_matches('/')).ok_or_else(|| format!("{path} is not a file at {rev}"))?;
    if file.bytes.len() > MAX_BYTES {
        return Err(format!("{path} is {} bytes, too large to show", file.bytes.len()));
    }
    Ok(String::from_utf8_lossy(&file.bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_links_its_place_and_keeps_its_words() {
        assert_eq!(place("apps/svc.yaml:9:5: error: x"), Some(("apps/svc.yaml", 9, 17)));
        assert_eq!(place("web.yaml:3: bad"), Some(("web.yaml", 3, 10)));
        assert_eq!(place("unsigned commit: refused"), None);
        let html = located("a b.yaml:1: x", "abc").into_string();
        assert_eq!(html, "<code>a b.yaml:1: x</code>");
        let html = located("apps/<x>.yaml:2:1: error", "abc").into_string();
        assert!(html.contains("href=\"/ui/files?rev=abc&amp;path=apps%2F%3Cx%3E.yaml#L2\"") && html.contains("apps/&lt;x&gt;.yaml:2:1</a>: error"), "{html}");
    }

    #[test]
    fn a_file_is_read_at_its_commit_with_each_line_anchored() {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| assert!(std::process::Command::new("git").arg("-C").arg(dir.path()).args(args).status().unwrap().success());
        git(&["init", "-q", "-b", "main"]);
        std::fs::write(dir.path().join("a.yaml"), "kind: ConfigMap\nmetadata: {name: <b>}\n").unwrap();
        git(&["add", "."]);
        git(&["-c", "user.name=A", "-c", "user.email=a@example.invalid", "commit", "-qm", "one"]);
        let rev = String::from_utf8(std::process::Command::new("git").arg("-C").arg(dir.path()).args(["rev-parse", "HEAD"]).output().unwrap().stdout).unwrap();
        let html = render(Some(dir.path()), "", rev.trim(), "a.yaml").into_string();
        assert!(html.contains("<tr id=\"L2\">") && html.contains("metadata: {name: &lt;b&gt;}"), "{html}");
        assert!(render(Some(dir.path()), "", "HEAD; rm", "a.yaml").into_string().contains("name a commit by its id"));
        assert!(render(Some(dir.path()), "", rev.trim(), "missing.yaml").into_string().contains("class=\"error\""));
        assert!(render(Some(dir.path()), "apps", rev.trim(), "a.yaml").into_string().contains("not under the watched path"));
        assert!(under("apps", "apps/web.yaml") && under("/apps/", "apps") && !under("apps", "apps2/x.yaml") && !under("apps", "../apps/x"));
    }
}
