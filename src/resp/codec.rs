//! tokio-util codecs over the decoding functions, for connections that are read frame by frame
//! (dedicated backend connections, the admin of tests).

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::{decode_request, scan_reply, Limits, ProtocolError, Reply, Request};

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

/// Decodes client requests (multibulk or inline), for the client side of a connection.
#[derive(Default, Debug, Clone)]
pub struct RequestCodec {
    /// Limits applied to every request.
    pub limits: Limits,
}

impl Decoder for RequestCodec {
    type Item = Request;
    type Error = CodecError;
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Request>, CodecError> {
        Ok(decode_request(src, &self.limits)?)
    }
}

/// Writes already-encoded bytes (replies towards a client) unchanged.
impl Encoder<Bytes> for RequestCodec {
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
    fn request_codec_decodes_pipeline_and_passes_bytes() {
        let mut c = RequestCodec::default();
        let mut buf = BytesMut::from(&b"PING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPI"[..]);
        assert_eq!(c.decode(&mut buf).unwrap().unwrap().arg(0), b"PING");
        assert_eq!(c.decode(&mut buf).unwrap().unwrap().arg(1), b"k");
        assert!(c.decode(&mut buf).unwrap().is_none());
        buf.extend_from_slice(b"NG\r\n");
        assert_eq!(c.decode(&mut buf).unwrap().unwrap().len(), 1);
        let mut out = BytesMut::new();
        c.encode(Bytes::from_static(b"+PONG\r\n"), &mut out)
            .unwrap();
        assert_eq!(&out[..], b"+PONG\r\n");
        let mut bad = BytesMut::from(&b"*x\r\n"[..]);
        let e = c.decode(&mut bad).unwrap_err();
        assert!(matches!(
            e,
            CodecError::Protocol(ProtocolError::InvalidMultibulkLength)
        ));
        assert_eq!(e.to_string(), "Protocol error: invalid multibulk length");
    }

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
