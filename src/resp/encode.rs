//! Encoders for replies the proxy writes itself, in the client's protocol.

use bytes::BytesMut;

use super::Protocol;

/// `+text\r\n`
pub fn simple(out: &mut BytesMut, text: &str) { let _ = (out, text); todo!() }
/// `-text\r\n`; `text` is the whole message without the dash, e.g. `ERR unknown command`.
pub fn error(out: &mut BytesMut, text: &str) { let _ = (out, text); todo!() }
/// `:n\r\n`
pub fn integer(out: &mut BytesMut, n: i64) { let _ = (out, n); todo!() }
/// `$len\r\ndata\r\n`
pub fn bulk(out: &mut BytesMut, data: &[u8]) { let _ = (out, data); todo!() }
/// Null bulk: `$-1` in RESP2, `_` in RESP3.
pub fn null(out: &mut BytesMut, proto: Protocol) { let _ = (out, proto); todo!() }
/// Null array: `*-1` in RESP2, `_` in RESP3.
pub fn null_array(out: &mut BytesMut, proto: Protocol) { let _ = (out, proto); todo!() }
/// `*n\r\n`
pub fn array_len(out: &mut BytesMut, n: usize) { let _ = (out, n); todo!() }
/// `%n` in RESP3; `*2n` in RESP2 (caller then writes n key/value pairs).
pub fn map_len(out: &mut BytesMut, proto: Protocol, n: usize) { let _ = (out, proto, n); todo!() }
/// `>n` in RESP3; `*n` in RESP2.
pub fn push_len(out: &mut BytesMut, proto: Protocol, n: usize) { let _ = (out, proto, n); todo!() }
/// `=len\r\ntxt:data` in RESP3; bulk string in RESP2.
pub fn verbatim(out: &mut BytesMut, proto: Protocol, data: &[u8]) { let _ = (out, proto, data); todo!() }
/// Appends an already-encoded request/arguments as a multibulk command.
pub fn command(out: &mut BytesMut, args: &[&[u8]]) { let _ = (out, args); todo!() }
