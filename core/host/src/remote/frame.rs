//! Frames: a 4-byte big-endian length, then that many bytes of one JSON message. A frame is
//! at most [`MAX_FRAME`] bytes, on both sides: a bigger one is refused before it is read, so
//! a confused or hostile peer cannot make the other side allocate without bound.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::{self, Read, Write};

/// The largest frame either side sends or reads: 64 MiB, room for a domain XML at its
/// 10 MiB limit, snapshot lists and records many times over.
pub const MAX_FRAME: usize = 64 << 20;

/// Why a frame could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the stream between frames.
    Closed,
    /// The peer announced a frame over [`MAX_FRAME`] bytes.
    TooLarge(u64),
    /// Reading failed, or the stream ended inside a frame.
    Io(io::Error),
    /// The bytes are not a message of this protocol.
    Bad(serde_json::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Closed => f.write_str("the stream was closed"),
            ReadError::TooLarge(n) => write!(f, "a frame of {n} bytes, over the limit of {} MiB", MAX_FRAME >> 20),
            ReadError::Io(e) => write!(f, "reading failed: {e}"),
            ReadError::Bad(e) => write!(f, "a message that is not luavirt's remote protocol: {e}"),
        }
    }
}

/// Writes `msg` as one frame and flushes it. A message over [`MAX_FRAME`] bytes is not sent.
pub fn write_frame(w: &mut impl Write, msg: &impl Serialize) -> io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    if body.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a message of {} bytes is over the frame limit of {} MiB", body.len(), MAX_FRAME >> 20),
        ));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame)?;
    w.flush()
}

/// Reads one frame and decodes its message.
pub fn read_frame<T: DeserializeOwned>(r: &mut impl Read) -> Result<T, ReadError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Err(ReadError::Closed),
            Ok(0) => return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    let n = u32::from_be_bytes(len) as u64;
    if n > MAX_FRAME as u64 {
        return Err(ReadError::TooLarge(n));
    }
    let mut body = vec![0u8; n as usize];
    r.read_exact(&mut body).map_err(ReadError::Io)?;
    serde_json::from_slice(&body).map_err(ReadError::Bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_ones_are_refused_unread() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &serde_json::json!({ "a": [1, 2] })).unwrap();
        write_frame(&mut buf, &"two").unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame::<serde_json::Value>(&mut r).unwrap(), serde_json::json!({ "a": [1, 2] }));
        assert_eq!(read_frame::<String>(&mut r).unwrap(), "two");
        assert!(matches!(read_frame::<String>(&mut r), Err(ReadError::Closed)));
        // A header announcing 2 GiB: refused from the header alone.
        let huge = [0x80u8, 0, 0, 0, b'x'];
        assert!(matches!(read_frame::<String>(&mut &huge[..]), Err(ReadError::TooLarge(0x8000_0000))));
        // Cut inside a frame.
        assert!(matches!(read_frame::<String>(&mut &buf[..6]), Err(ReadError::Io(_))));
        let big = "x".repeat(MAX_FRAME);
        assert_eq!(write_frame(&mut Vec::new(), &big).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
