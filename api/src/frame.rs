//! The exec stream's framing, over an upgraded HTTP connection: each frame
//! is a channel byte, a big-endian `u32` length, and that many bytes.
//! Kubernetes multiplexes the same channels over SPDY or WebSocket; a
//! plain framing over the upgraded socket is enough for our own client.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Client to server: bytes for the command's standard input.
pub const STDIN: u8 = 0;
/// Server to client: the command's standard output.
pub const STDOUT: u8 = 1;
/// Server to client: the command's standard error.
pub const STDERR: u8 = 2;
/// Server to client: the exit code, a big-endian `i32`; the last frame.
pub const EXIT: u8 = 3;
/// Client to server: standard input is closed.
pub const STDIN_EOF: u8 = 4;
/// Server to client: the command could not run; UTF-8 text; the last frame.
pub const ERROR: u8 = 5;

/// The upgrade protocol name.
pub const PROTOCOL: &str = "driftless-exec.v1";

/// Writes one frame.
pub async fn write<W: AsyncWrite + Unpin>(w: &mut W, channel: u8, data: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(data.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    let mut header = [0u8; 5];
    header[0] = channel;
    header[1..].copy_from_slice(&len.to_be_bytes());
    w.write_all(&header).await?;
    w.write_all(data).await?;
    w.flush().await
}

/// Reads one frame; `None` at the end of the stream.
pub async fn read<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 5];
    match r.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > 16 << 20 {
        return Err(std::io::Error::other("frame too large"));
    }
    let mut data = vec![0u8; len];
    r.read_exact(&mut data).await?;
    Ok(Some((header[0], data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip() {
        let (mut a, mut b) = tokio::io::duplex(64);
        write(&mut a, STDOUT, b"hello").await.unwrap();
        write(&mut a, EXIT, &7i32.to_be_bytes()).await.unwrap();
        drop(a);
        assert_eq!(read(&mut b).await.unwrap(), Some((STDOUT, b"hello".to_vec())));
        assert_eq!(read(&mut b).await.unwrap(), Some((EXIT, 7i32.to_be_bytes().to_vec())));
        assert_eq!(read(&mut b).await.unwrap(), None);
    }
}
