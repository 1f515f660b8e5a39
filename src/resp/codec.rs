//! A tokio-util codec over the reply scanner, for node connections read frame by frame
//! (handshakes).

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::{scan_reply, Limits, ProtocolError, Reply};

/// Error of the reply codec: a malformed frame or an I/O error.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The peer sent a malformed frame.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Socket error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Decodes whole reply frames (RESP2 or RESP3) zero-copy.
#[derive(Default, Debug, Clone)]
pub struct ReplyCodec {
    /// Limits applied to every frame.
    pub limits: Limits,
}

impl Decoder for ReplyCodec {
    type Item = Reply;
    type Error = CodecError;
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Reply>, CodecError> {
        match scan_reply(src, &self.limits)? {
            Some(scan) => Ok(Some(Reply::new(
                src.split_to(scan.len).freeze(),
                scan.resp3,
            ))),
            None => Ok(None),
        }
    }
}

/// Writes already-encoded bytes (requests towards a node) unchanged.
impl Encoder<Bytes> for ReplyCodec {
    type Error = CodecError;
    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_codec_splits_frames() {
        let mut c = ReplyCodec::default();
        let mut buf = BytesMut::from(&b"+OK\r\n%1\r\n+a\r\n:1\r\n$3\r\nab"[..]);
        let r = c.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&r.raw[..], b"+OK\r\n");
        assert!(!r.resp3);
        let r = c.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&r.raw[..], b"%1\r\n+a\r\n:1\r\n");
        assert!(r.resp3);
        assert!(c.decode(&mut buf).unwrap().is_none());
        assert_eq!(&buf[..], b"$3\r\nab");
        let mut out = BytesMut::new();
        c.encode(Bytes::from_static(b"*1\r\n$4\r\nPING\r\n"), &mut out)
            .unwrap();
        assert_eq!(&out[..], b"*1\r\n$4\r\nPING\r\n");
    }

    #[test]
    fn reply_codec_byte_by_byte_matches_whole_buffer() {
        let mut rng = crate::resp::reply::tests::Rng(0xA5A5_5A5A_1234_4321);
        let mut stream = Vec::new();
        for _ in 0..200 {
            crate::resp::reply::tests::random_frame(&mut rng, 3, &mut stream);
        }
        let mut c = ReplyCodec::default();
        let mut whole = BytesMut::from(&stream[..]);
        let mut expected = Vec::new();
        while let Some(r) = c.decode(&mut whole).unwrap() {
            expected.push((r.raw, r.resp3));
        }
        assert!(whole.is_empty());
        assert_eq!(expected.len(), 200);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in &stream {
            buf.extend_from_slice(&[b]);
            while let Some(r) = c.decode(&mut buf).unwrap() {
                got.push((r.raw, r.resp3));
            }
        }
        assert_eq!(got, expected);
    }
}
