//! Protocol errors, worded as Redis words them.

/// A malformed frame. `Display` gives the text after `-ERR `, e.g.
/// `Protocol error: invalid multibulk length`, exactly as Redis sends it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// `*` header not a valid count, or over the limit.
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    /// `$` header not a valid length, or over the limit.
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    /// A client that has not authenticated announced more arguments than Redis accepts
    /// before AUTH.
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthenticatedMultibulkLength,
    /// A client that has not authenticated announced a longer bulk than Redis accepts
    /// before AUTH.
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthenticatedBulkLength,
    /// Something other than `$` where a bulk string was expected inside a request.
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedDollar(char),
    /// An inline request line longer than the limit.
    #[error("Protocol error: too big inline request")]
    TooBigInline,
    /// A multibulk count line longer than the limit.
    #[error("Protocol error: too big mbulk count string")]
    TooBigMbulkCount,
    /// A bulk length line longer than the limit.
    #[error("Protocol error: too big bulk count string")]
    TooBigBulkCount,
    /// Inline request with an unterminated quote.
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A reply frame (from a node) that does not parse.
    #[error("Protocol error: invalid reply frame: {0}")]
    InvalidReply(&'static str),
    /// Aggregates nested deeper than the limit.
    #[error("Protocol error: nesting too deep")]
    TooDeep,
}
