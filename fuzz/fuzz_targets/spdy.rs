//! The port-forward framing kubectl speaks (SPDY/3.1 frames, header blocks
//! compressed from the protocol's dictionary) and the exec protocol's final
//! status, read from any bytes a client could send. A frame that reads
//! writes back and reads again as the same frame.
#![no_main]

use bytes::BytesMut;
use driftless_api::spdy::{FrameReader, FrameWriter};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};

fuzz_target!(|bytes: &[u8]| {
    let mut reader = FrameReader::default();
    let mut buffer = BytesMut::from(bytes);
    let mut frames = Vec::new();
    // Bounded: each frame read consumes at least its 8-byte header.
    while let Ok(Some(frame)) = reader.decode(&mut buffer) {
        frames.push(frame);
        if frames.len() > 1024 {
            break;
        }
    }
    let mut writer = FrameWriter::default();
    let mut wire = BytesMut::new();
    for frame in &frames {
        if writer.encode(frame.clone(), &mut wire).is_err() {
            return;
        }
    }
    let mut again = FrameReader::default();
    for frame in &frames {
        let read = again.decode(&mut wire).expect("what was written reads").expect("a whole frame");
        assert_eq!(&read, frame, "a frame read back differs");
    }
    if let Ok(status) = serde_json::from_slice::<serde_json::Value>(bytes) {
        let _ = driftless_api::channel::exit_code(&status);
    }
});
