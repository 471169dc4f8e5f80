//! Kubernetes' stream protocol over WebSocket (`v5.channel.k8s.io`, and
//! `v4`), the one exec protocol of Driftless: kubectl and `driftless exec`
//! both speak it. Each binary message starts with its stream's byte: 0
//! stdin, 1 stdout, 2 stderr, 3 the final status (a `metav1.Status`, with
//! the exit code when it is not 0), 4 terminal resize, and in v5 255 to
//! close a stream (`[255, 0]`: stdin is done). tokio-tungstenite does the
//! WebSocket framing, pings included.
//!
//! Must not touch: sockets or processes; this is the message format the
//! server (`server/channel.rs`) and the client share.

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The subprotocols spoken, most preferred first.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// Client to server: the command's standard input.
pub const STDIN: u8 = 0;
/// Server to client: its standard output.
pub const STDOUT: u8 = 1;
/// Server to client: its standard error.
pub const STDERR: u8 = 2;
/// Server to client: the final status; the last message.
pub const STATUS: u8 = 3;
/// Client to server: the terminal's new size.
pub const RESIZE: u8 = 4;
/// Client to server (v5): closes the stream named by the next byte.
pub const CLOSE: u8 = 255;

/// A message on `stream`.
pub fn message(stream: u8, data: &[u8]) -> Message {
    let mut bytes = Vec::with_capacity(data.len() + 1);
    bytes.push(stream);
    bytes.extend_from_slice(data);
    Message::Binary(bytes.into())
}

/// The final status Kubernetes sends for an exit code.
pub fn status(code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {}, "status": "Failure",
        "message": format!("command terminated with non-zero exit code: exit status {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// The exit code a final status reports, or its message when the command
/// could not run.
pub fn exit_code(status: &Value) -> Result<i32, String> {
    if status["status"] == "Success" {
        return Ok(0);
    }
    let code = status.pointer("/details/causes").and_then(Value::as_array).into_iter().flatten().find(|c| c["reason"] == "ExitCode");
    match code.and_then(|c| c["message"].as_str()).and_then(|m| m.parse().ok()) {
        Some(code) => Ok(code),
        None => Err(status["message"].as_str().unwrap_or("the command failed").to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_carries_the_exit_code_both_ways() {
        assert_eq!(exit_code(&status(0)), Ok(0));
        assert_eq!(exit_code(&status(3)), Ok(3));
        assert_eq!(exit_code(&json!({"status": "Failure", "message": "no such file"})), Err("no such file".to_owned()));
        assert_eq!(message(STDOUT, b"hi"), Message::Binary(vec![1, b'h', b'i'].into()));
    }
}
