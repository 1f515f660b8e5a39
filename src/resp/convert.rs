//! RESP3 → RESP2 downconversion, so RESP2 and RESP3 clients can share RESP3 node connections.

use bytes::BytesMut;

/// Appends the RESP2 form of the complete RESP3 frame `raw` to `out`.
/// Map → flat array, set/push → array, double/big number/verbatim → bulk string, boolean →
/// integer 1/0, attribute → dropped. A null (`_`) becomes `*-1` when `null_array` (commands whose
/// RESP2 nil is a null array: BLPOP, EXEC, XREAD, ...) else `$-1`, for top-level and nested nulls.
pub fn to_resp2(raw: &[u8], null_array: bool, out: &mut BytesMut) {
    let _ = (raw, null_array, out);
    todo!()
}
