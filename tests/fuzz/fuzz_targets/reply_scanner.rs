//! The node reply scanner (`scan_reply`) and what is built on it: the RESP3→RESP2
//! conversion (plain and per reply shape) and the owned `Frame` parser.
//!
//! Input: byte 0 picks the limits (0: a client's defaults, 1: a node's, 2: small ones so the
//! limit paths are reachable), the rest is what a node sent.
//!
//! Checked, beyond "no panic, no hang, no unbounded allocation":
//! * a complete frame's length is within the buffer, the frame alone scans the same, and
//!   every shorter prefix of it is incomplete (not an error);
//! * its RESP2 conversion, in every shape, is one complete RESP2 frame and converts to
//!   itself; a frame without RESP3 types converts to itself byte for byte;
//! * `Frame::parse` agrees with the scanner (but for the text of a double, which only it
//!   reads), and a parsed frame's encodings parse back to
//!   frames with the same encoding.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice::resp::convert::{to_resp2, to_resp2_shaped};
use sluice::resp::{scan_reply, Frame, Limits, Protocol, ProtocolError, ReplyShape};

fn limits(pick: u8) -> Limits {
    match pick % 3 {
        0 => Limits::default(),
        1 => Limits::node(),
        _ => Limits {
            max_bulk_len: 16,
            max_multibulk_len: 8,
            max_depth: 4,
            ..Limits::default()
        },
    }
}

const SHAPES: [ReplyShape; 5] = [
    ReplyShape::Plain,
    ReplyShape::FlattenPairs,
    ReplyShape::MapAsPairs,
    ReplyShape::NullArrays,
    ReplyShape::ProxyInfo,
];

/// `out` is exactly one complete frame without RESP3 types, and converting it changes nothing.
fn check_resp2(out: &[u8]) {
    let scan = scan_reply(out, &Limits::node())
        .expect("a conversion is valid RESP")
        .expect("a conversion is complete");
    assert_eq!(scan.len, out.len(), "a conversion is one frame");
    assert!(!scan.resp3, "a conversion has no RESP3 type left");
    let mut again = BytesMut::new();
    to_resp2(out, false, &mut again);
    assert_eq!(&again[..], out, "RESP2 converts to itself");
}

fn check_frame(raw: &[u8], resp3: bool) {
    for null_array in [false, true] {
        for shape in SHAPES {
            let mut out = BytesMut::new();
            to_resp2_shaped(raw, shape, null_array, &mut out);
            check_resp2(&out);
            if !resp3 && shape == ReplyShape::Plain {
                assert_eq!(&out[..], raw, "RESP2 frames pass unchanged");
            }
        }
    }
}

fn check_parse(buf: &[u8]) {
    let scanned = scan_reply(buf, &Limits::default());
    let parsed = Frame::parse(buf);
    match (&scanned, &parsed) {
        (Ok(Some(scan)), Ok(Some((frame, len)))) => {
            assert_eq!(scan.len, *len, "Frame::parse takes the scanned length");
            for proto in [Protocol::Resp2, Protocol::Resp3] {
                let mut first = BytesMut::new();
                frame.encode(proto, &mut first);
                let (again, n) = Frame::parse(&first)
                    .expect("an encoded frame parses")
                    .expect("an encoded frame is complete");
                assert_eq!(n, first.len());
                let mut second = BytesMut::new();
                again.encode(proto, &mut second);
                assert_eq!(first, second, "encode/parse/encode is stable");
            }
        }
        (Ok(None), Ok(None)) | (Err(_), Err(_)) => {}
        // The scanner frames a double without reading its text (it is forwarded as sent);
        // only the owned parser, which needs the number, refuses text that is not one.
        (Ok(Some(_)), Err(ProtocolError::InvalidReply("invalid double"))) => {}
        _ => panic!("Frame::parse {parsed:?} disagrees with scan_reply {scanned:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let [pick, buf @ ..] = data else {
        return;
    };
    check_parse(buf);
    let Ok(Some(scan)) = scan_reply(buf, &limits(*pick)) else {
        return;
    };
    assert!(scan.len > 0 && scan.len <= buf.len());
    let frame = &buf[..scan.len];
    assert_eq!(scan_reply(frame, &limits(*pick)), Ok(Some(scan)));
    for cut in [scan.len - 1, scan.len / 2, 1] {
        if cut < scan.len {
            assert_eq!(
                scan_reply(&frame[..cut], &limits(*pick)),
                Ok(None),
                "a prefix of a frame is incomplete"
            );
        }
    }
    check_frame(frame, scan.resp3);
});
