//! tokio-util codecs over the decoding functions, for connections that are read frame by frame
//! (dedicated backend connections, the admin of tests).

use bytes::BytesMut;
use tokio_util::codec::Decoder;

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
            Some(scan) => Ok(Some(Reply::new(src.split_to(scan.len).freeze(), scan.resp3))),
            None => Ok(None),
        }
    }
}
