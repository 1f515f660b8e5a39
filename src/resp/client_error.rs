//! Errors shown to a client: an explicit Redis error code (the first word of the reply, which
//! client libraries match on: `CROSSSLOT`, `TRYAGAIN`, `NOAUTH`, ...) and a message, rendered
//! in one place. Built where the error is classified, never parsed back out of a text.

use std::borrow::Cow;
use std::fmt;

use bytes::{Bytes, BytesMut};

use super::{encode, ProtocolError, Reply};
use crate::backend::BackendError;

/// The code that opens an error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// `ERR`: the generic code.
    Err,
    /// `NOAUTH`: authentication required.
    NoAuth,
    /// `CROSSSLOT`: keys of several slots in one cluster request.
    CrossSlot,
    /// `CLUSTERDOWN`: the slot is not served.
    ClusterDown,
    /// `TRYAGAIN`: retry later (a slot is moving).
    TryAgain,
    /// `READONLY`: a write reached a replica.
    ReadOnly,
    /// `EXECABORT`: the transaction was discarded.
    ExecAbort,
    /// `WRONGTYPE`: the key holds another type.
    WrongType,
    /// `MASTERDOWN`: no master to serve the request.
    MasterDown,
}

impl ErrorCode {
    /// The code as Redis writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Err => "ERR",
            ErrorCode::NoAuth => "NOAUTH",
            ErrorCode::CrossSlot => "CROSSSLOT",
            ErrorCode::ClusterDown => "CLUSTERDOWN",
            ErrorCode::TryAgain => "TRYAGAIN",
            ErrorCode::ReadOnly => "READONLY",
            ErrorCode::ExecAbort => "EXECABORT",
            ErrorCode::WrongType => "WRONGTYPE",
            ErrorCode::MasterDown => "MASTERDOWN",
        }
    }
}

/// An error reply for a client. `Display` is the text after the `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    code: ErrorCode,
    message: Cow<'static, str>,
}

impl ClientError {
    /// An error with an explicit code.
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> ClientError {
        ClientError {
            code,
            message: message.into(),
        }
    }

    /// An `ERR` error.
    pub fn err(message: impl Into<Cow<'static, str>>) -> ClientError {
        ClientError::new(ErrorCode::Err, message)
    }

    /// `CLUSTERDOWN Hash slot not served`: no shard serves the slot (or no map is known).
    pub fn slot_not_served() -> ClientError {
        ClientError::new(ErrorCode::ClusterDown, "Hash slot not served")
    }

    /// `CROSSSLOT ...`: a cluster request whose keys are in several slots.
    pub fn cross_slot() -> ClientError {
        ClientError::new(
            ErrorCode::CrossSlot,
            "Keys in request don't hash to the same slot",
        )
    }

    /// `EXECABORT ...`: EXEC of a transaction that had a command refused.
    pub fn exec_abort() -> ClientError {
        ClientError::new(
            ErrorCode::ExecAbort,
            "Transaction discarded because of previous errors.",
        )
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// Appends the encoded `-CODE message\r\n`.
    pub fn write_to(&self, out: &mut BytesMut) {
        encode::error(out, &self.to_string());
    }

    /// The encoded `-CODE message\r\n`.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.write_to(&mut out);
        out.freeze()
    }

    /// The error as a node reply would carry it (to stand in for one).
    pub fn to_reply(&self) -> Reply {
        Reply::new(self.to_bytes(), false)
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ClientError {}

/// A node that failed or timed out: the proxy's own `ERR sluice: ...`.
impl From<BackendError> for ClientError {
    fn from(e: BackendError) -> ClientError {
        ClientError::err(e.to_string())
    }
}

/// A malformed request: `ERR Protocol error: ...`, as Redis words it.
impl From<ProtocolError> for ClientError {
    fn from(e: ProtocolError) -> ClientError {
        ClientError::err(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_code_then_message() {
        assert_eq!(
            ClientError::slot_not_served().to_bytes().as_ref(),
            b"-CLUSTERDOWN Hash slot not served\r\n"
        );
        assert_eq!(
            ClientError::err("sluice: x").to_string(),
            "ERR sluice: x".to_string()
        );
        assert_eq!(ClientError::cross_slot().code(), ErrorCode::CrossSlot);
        assert!(ClientError::exec_abort()
            .to_string()
            .starts_with("EXECABORT Transaction discarded"));
    }

    #[test]
    fn conversions_keep_the_texts_clients_saw() {
        let e = BackendError::Timeout {
            addr: "n:1".into(),
            ms: 5,
        };
        assert_eq!(
            ClientError::from(e).to_string(),
            "ERR sluice: node n:1 did not reply within 5 ms"
        );
        let p = ProtocolError::TooDeep;
        assert_eq!(
            ClientError::from(p).to_string(),
            "ERR Protocol error: nesting too deep"
        );
    }
}
