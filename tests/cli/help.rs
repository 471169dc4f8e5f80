//! The completion scripts and the manual page, used as a shell and `man`
//! use them.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_driftless");

/// What bash completes for `words`, the last one being typed.
fn bash_completes(words: &[&str]) -> Vec<String> {
    let array = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" ");
    let last = words.len() - 1;
    let script = format!(
        "source <('{BIN}' completion bash) && COMP_WORDS=({array}) && COMP_CWORD={last} && _driftless driftless '{}' '{}' && printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        words[last],
        words[last - 1]
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn bash_completes_subcommands_and_their_flags() {
    assert_eq!(bash_completes(&["driftless", "rollo"]), ["rollout"]);
    assert_eq!(bash_completes(&["driftless", "ro"]), ["rollout", "rollback"]);
    assert_eq!(bash_completes(&["driftless", "get", "--sh"]), ["--show-labels"]);
    assert!(bash_completes(&["driftless", "rollout", ""]).iter().any(|w| w == "history"));
    for shell in ["zsh", "fish"] {
        let out = Command::new(BIN).args(["completion", shell]).output().unwrap();
        assert!(out.status.success() && out.stdout.len() > 1000, "{shell}");
    }
}

#[test]
fn the_manual_page_renders_with_every_subcommand() {
    let page = Command::new(BIN).arg("man").output().unwrap();
    assert!(page.status.success());
    let mut man = Command::new("man")
        .args(["-l", "-"])
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    man.stdin.take().unwrap().write_all(&page.stdout).unwrap();
    let rendered = man.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&rendered.stdout);
    for heading in ["NAME", "DRIFTLESS VALIDATE", "DRIFTLESS ROLLOUT", "DRIFTLESS COMPLETION"] {
        assert!(text.lines().any(|l| l.trim() == heading), "no {heading} in:\n{text}");
    }
    assert!(text.contains("--show-labels"), "{text}");
}
