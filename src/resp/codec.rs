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
