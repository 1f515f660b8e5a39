//! RESP2/RESP3 wire protocol: request decoding, zero-copy reply scanning, RESP3→RESP2
//! downconversion, and encoders for replies the proxy writes itself.
//!
//! The hot path never builds a tree of frames: requests are indexed in place (`Request` keeps
//! the original bytes plus argument offsets) and replies are only *checked* for completeness
//! (`scan_reply`) and then forwarded as the node's original bytes.

pub mod client_error;
pub mod codec;
pub mod convert;
pub mod encode;
pub mod error;
pub mod frame;
pub(crate) mod parse;
pub mod reply;
pub mod request;

pub use client_error::{ClientError, ErrorCode};
pub use codec::{CodecError, ReplyCodec};
pub use convert::ReplyShape;
pub use error::ProtocolError;
pub use frame::Frame;
pub use reply::{scan_reply, Reply, ReplyScan};
pub use request::{decode_request, Request};

/// The protocol a client negotiated (HELLO 2/3); RESP2 until it says otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    /// RESP2, the default for every new connection.
    #[default]
    Resp2,
    /// RESP3, after `HELLO 3`.
    Resp3,
}

/// Size limits enforced while decoding, mirroring Redis's defaults so that a hostile peer
/// gets the same protocol errors it would get from Redis, and cannot make us buffer without bound.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest bulk string accepted (`proto-max-bulk-len`, 512 MiB in Redis).
    pub max_bulk_len: usize,
    /// Largest number of elements in one multibulk request or aggregate reply.
    pub max_multibulk_len: usize,
    /// Deepest nesting of aggregates in a reply.
    pub max_depth: usize,
    /// Longest inline command line (Redis: 64 KiB).
    pub max_inline_len: usize,
    /// The client has not authenticated: Redis's stricter request limits apply (at most
    /// [`UNAUTH_MAX_MULTIBULK_LEN`] arguments, bulks of at most [`UNAUTH_MAX_BULK_LEN`] bytes),
    /// refused with Redis's own `unauthenticated ... length` errors, so an unauthenticated
    /// peer cannot make us buffer a large request before it is told `NOAUTH`.
    pub unauthenticated: bool,
}

/// Most arguments in a request of a client that has not authenticated (Redis 7.0).
pub const UNAUTH_MAX_MULTIBULK_LEN: usize = 10;

/// Longest bulk string in a request of a client that has not authenticated (Redis 7.0).
pub const UNAUTH_MAX_BULK_LEN: usize = 16 * 1024;

impl Limits {
    /// Limits for replies from our own nodes: a node is trusted to send what Redis can send
    /// (a Lua script may legitimately return tables nested nearly 8000 deep, its Lua stack
    /// limit), so no depth limit applies; the walkers do not recurse, so depth costs no thread
    /// stack. A reply rejected here would kill a shared connection and fail every client's
    /// requests on it.
    pub fn node() -> Limits {
        Limits {
            max_bulk_len: usize::MAX >> 1,
            max_multibulk_len: usize::MAX >> 1,
            max_depth: usize::MAX,
            max_inline_len: 64 * 1024,
            unauthenticated: false,
        }
    }

    /// These limits for a client that has not authenticated yet.
    pub fn unauthenticated(self) -> Limits {
        Limits {
            unauthenticated: true,
            ..self
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: 1024 * 1024 * 1024,
            max_depth: 128,
            max_inline_len: 64 * 1024,
            unauthenticated: false,
        }
    }
}
