//! `driftless exec`: a command in a running container, its streams relayed
//! over the daemon's upgraded connection; the exit status is the
//! command's.

use std::process::ExitCode;

use driftless_api::frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::get::{client_error, form_query};
use crate::CommandError;
use crate::cli::ExecArgs;
use crate::connect::{block_on, client};

/// Puts the terminal in raw mode while alive, so keys reach the command.
struct RawTerminal(Option<nix::sys::termios::Termios>);

impl RawTerminal {
    fn enter() -> RawTerminal {
        use nix::sys::termios;
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(&stdin) else { return RawTerminal(None) };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &raw);
        RawTerminal(Some(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin(), nix::sys::termios::SetArg::TCSANOW, saved);
        }
    }
}

/// Runs `exec`.
pub fn run(args: &ExecArgs) -> Result<ExitCode, CommandError> {
    block_on(async {
        let client = client(&args.connect);
        let container = super::container::pick(&client, &args.namespace, &args.pod, args.container.as_deref()).await?;
        let mut pairs: Vec<(&str, Option<&str>)> =
            vec![("container", container.as_deref()), ("tty", args.tty.then_some("true")), ("stdin", args.stdin.then_some("true"))];
        pairs.extend(args.command.iter().map(|c| ("command", Some(c.as_str()))));
        let path = format!("/api/v1/namespaces/{}/pods/{}/exec{}", args.namespace, args.pod, form_query(&pairs));
        let io = client.upgrade(&path, frame::PROTOCOL).await.map_err(client_error)?;
        let (mut reader, mut writer) = tokio::io::split(io);
        use std::io::IsTerminal;
        let _raw = (args.tty && std::io::stdin().is_terminal()).then(RawTerminal::enter);
        if !args.stdin {
            frame::write(&mut writer, frame::STDIN_EOF, &[]).await.map_err(io_error)?;
        }
        let mut stdin = tokio::io::stdin();
        let mut stdout = tokio::io::stdout();
        let mut stderr = tokio::io::stderr();
        let mut buf = [0u8; 8192];
        let mut stdin_open = args.stdin;
        loop {
            tokio::select! {
                n = stdin.read(&mut buf), if stdin_open => {
                    match n.map_err(io_error)? {
                        0 => {
                            stdin_open = false;
                            frame::write(&mut writer, frame::STDIN_EOF, &[]).await.map_err(io_error)?;
                        }
                        n => frame::write(&mut writer, frame::STDIN, &buf[..n]).await.map_err(io_error)?,
                    }
                }
                incoming = frame::read(&mut reader) => match incoming.map_err(io_error)? {
                    Some((frame::STDOUT, data)) => {
                        stdout.write_all(&data).await.map_err(io_error)?;
                        stdout.flush().await.map_err(io_error)?;
                    }
                    Some((frame::STDERR, data)) => {
                        stderr.write_all(&data).await.map_err(io_error)?;
                        stderr.flush().await.map_err(io_error)?;
                    }
                    Some((frame::EXIT, data)) => {
                        let code = i32::from_be_bytes(data.get(..4).and_then(|d| d.try_into().ok()).unwrap_or([0, 0, 0, 1]));
                        return Ok(ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1)));
                    }
                    Some((frame::ERROR, data)) => return Err(CommandError::Usage(String::from_utf8_lossy(&data).into_owned())),
                    Some(_) => {}
                    None => return Err(CommandError::Usage("the daemon closed the exec stream".into())),
                },
            }
        }
    })
}

fn io_error(source: std::io::Error) -> CommandError {
    CommandError::Io { path: "exec stream".into(), source }
}
