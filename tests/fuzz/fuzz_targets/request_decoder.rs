//! The client request decoder (`decode_request`): any byte stream, fed whole or in pieces.
//!
//! Input: byte 0 picks the limits (bit 0: unauthenticated client, bit 1: small limits, so
//! that every "too big" path is reachable in a few bytes), byte 1 seeds the piece sizes, the
//! rest is the stream a client sends.
//!
//! Checked, beyond "no panic, no hang, no unbounded allocation":
//! * the same requests come out whatever the TCP segmentation, except that an over-long line
//!   may be refused earlier when it arrives in pieces (as Redis refuses it);
//! * a decoded request is never empty, and its bytes decode again to the same arguments;
//! * `Request::from_args` of its arguments decodes to the same arguments.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice::resp::{decode_request, Limits, ProtocolError, Request};

fn limits(flags: u8) -> Limits {
    let mut limits = Limits::default();
    if flags & 2 != 0 {
        limits.max_bulk_len = 40;
        limits.max_multibulk_len = 12;
        limits.max_inline_len = 48;
    }
    if flags & 1 != 0 {
        limits = limits.unauthenticated();
    }
    limits
}

/// What decoding a stream gave: the requests' arguments, the error that ended it (if any),
/// and how many bytes of the stream were not consumed (buffered or not yet fed).
struct Outcome {
    requests: Vec<Vec<Vec<u8>>>,
    error: Option<ProtocolError>,
    left: usize,
}

/// Feeds `stream` in pieces of the sizes `sizes` yields, decoding all it can after each.
fn decode_all(stream: &[u8], limits: &Limits, mut sizes: impl FnMut() -> usize) -> Outcome {
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    let mut fed = 0;
    while fed < stream.len() {
        let n = sizes().clamp(1, stream.len() - fed);
        buf.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        loop {
            match decode_request(&mut buf, limits) {
                Ok(Some(req)) => {
                    check_request(&req);
                    requests.push(req.args().map(<[u8]>::to_vec).collect());
                }
                Ok(None) => break,
                Err(e) => {
                    return Outcome {
                        requests,
                        error: Some(e),
                        left: buf.len() + stream.len() - fed,
                    }
                }
            }
        }
    }
    Outcome {
        requests,
        error: None,
        left: buf.len(),
    }
}

fn check_request(req: &Request) {
    assert!(!req.is_empty(), "a decoded request has a command name");
    let args: Vec<&[u8]> = req.args().collect();
    assert_eq!(args.len(), req.len());
    let mut again = BytesMut::from(&req.raw()[..]);
    let re = decode_request(&mut again, &Limits::node())
        .expect("a request's own bytes decode")
        .expect("a request's own bytes are complete");
    assert!(
        again.is_empty(),
        "a request's bytes are exactly one request"
    );
    assert!(re.args().eq(args.iter().copied()));
    let mut built = BytesMut::from(&Request::from_args(&args).raw()[..]);
    let re = decode_request(&mut built, &Limits::node())
        .expect("from_args decodes")
        .expect("from_args is complete");
    assert!(re.args().eq(args.iter().copied()));
}

/// Errors that depend on how much is buffered: Redis gives them when a line without its
/// terminator outgrows the limit, so a stream that arrives in pieces may meet them earlier.
fn depends_on_buffering(e: &ProtocolError) -> bool {
    matches!(
        e,
        ProtocolError::TooBigInline
            | ProtocolError::TooBigMbulkCount
            | ProtocolError::TooBigBulkCount
    )
}

fuzz_target!(|data: &[u8]| {
    let [flags, seed, stream @ ..] = data else {
        return;
    };
    let limits = limits(*flags);
    let whole = decode_all(stream, &limits, || usize::MAX);
    let mut state = u32::from(*seed) | 1;
    let pieces = decode_all(stream, &limits, || {
        // xorshift: piece sizes 1..=16, different for every seed.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 16) as usize + 1
    });
    match &pieces.error {
        Some(e) if depends_on_buffering(e) => {
            assert!(pieces.requests.len() <= whole.requests.len());
            assert_eq!(pieces.requests[..], whole.requests[..pieces.requests.len()]);
        }
        _ => {
            assert_eq!(pieces.requests, whole.requests, "same requests in pieces");
            assert_eq!(pieces.error, whole.error, "same error in pieces");
            assert_eq!(pieces.left, whole.left, "same bytes left in pieces");
        }
    }
});
