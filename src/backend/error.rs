//! Backend errors, each naming the node, with a retry class so callers know what is safe.

/// Why a request to a node failed. The `Display` text is what a client sees after `-ERR `.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum BackendError {
    /// The node cannot be reached right now (connect failed, reconnecting). Nothing was sent,
    /// so any command may be retried elsewhere.
    #[error("sluice: node {addr} unavailable: {reason}")]
    Unavailable {
        /// Node address.
        addr: String,
        /// Last connect error.
        reason: String,
    },
    /// The connection broke after the request was written: it may have executed.
    #[error("sluice: connection to node {addr} lost: {reason}")]
    ConnectionLost {
        /// Node address.
        addr: String,
        /// What broke.
        reason: String,
    },
    /// No reply within the request timeout; the connection was closed. It may have executed.
    #[error("sluice: node {addr} did not reply within {ms} ms")]
    Timeout {
        /// Node address.
        addr: String,
        /// The timeout.
        ms: u64,
    },
    /// The node sent bytes that are not RESP; the connection was closed.
    #[error("sluice: node {addr} sent a malformed reply: {reason}")]
    Protocol {
        /// Node address.
        addr: String,
        /// Parser error.
        reason: String,
    },
    /// The handshake (HELLO/AUTH) was refused.
    #[error("sluice: node {addr} refused the handshake: {reason}")]
    Handshake {
        /// Node address.
        addr: String,
        /// The node's error reply.
        reason: String,
    },
    /// Too many dedicated connections to this node are in use.
    #[error("sluice: too many dedicated connections to node {addr} (max {max})")]
    Exhausted {
        /// Node address.
        addr: String,
        /// The configured maximum.
        max: usize,
    },
}

impl BackendError {
    /// True when the request certainly did not reach the node, so retrying cannot run it twice.
    pub(crate) fn not_sent(&self) -> bool {
        matches!(
            self,
            BackendError::Unavailable { .. }
                | BackendError::Handshake { .. }
                | BackendError::Exhausted { .. }
        )
    }
}
