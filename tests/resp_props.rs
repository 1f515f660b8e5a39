//! Property tests of the RESP codec: every frame the proxy can encode parses back to itself
//! and is scanned to its exact length; every request survives encode/decode, split at any
//! byte; and the RESP3→RESP2 conversion of any frame equals that frame's own RESP2 encoding
//! (and leaves RESP2-only frames byte for byte).

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use sluice::resp::convert::to_resp2;
use sluice::resp::encode;
use sluice::resp::{decode_request, scan_reply, Frame, Limits, Protocol};

/// Text a simple string or error can carry (no CR or LF).
fn line() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(
        any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
        0..24,
    )
    .prop_map(Bytes::from)
}

fn blob() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn scalar() -> impl Strategy<Value = Frame> {
    prop_oneof![
        line().prop_map(Frame::Simple),
        line()
            .prop_filter("an error has text", |b| !b.is_empty())
            .prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        blob().prop_map(Frame::Bulk),
        Just(Frame::Null),
        // Quarters are exact in binary, so their text parses back to the same double.
        (-1_000_000i32..1_000_000).prop_map(|n| Frame::Double(f64::from(n) / 4.0)),
        any::<bool>().prop_map(Frame::Boolean),
        "-?[1-9][0-9]{0,40}".prop_map(|s| Frame::BigNumber(Bytes::from(s))),
        ("[a-z]{3}", blob()).prop_map(|(f, d)| Frame::Verbatim(Bytes::from(f), d)),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    scalar().prop_recursive(4, 48, 6, |inner| {
        let items = proptest::collection::vec(inner.clone(), 0..6);
        prop_oneof![
            items.clone().prop_map(Frame::Array),
            items.clone().prop_map(Frame::Set),
            items.prop_map(Frame::Push),
            proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Frame::Map),
        ]
    })
}

/// Frames RESP2 can carry as they are.
fn resp2_frame() -> impl Strategy<Value = Frame> {
    let leaf = prop_oneof![
        line().prop_map(Frame::Simple),
        any::<i64>().prop_map(Frame::Integer),
        blob().prop_map(Frame::Bulk),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        proptest::collection::vec(inner, 0..6).prop_map(Frame::Array)
    })
}

fn encoded(f: &Frame, proto: Protocol) -> BytesMut {
    let mut out = BytesMut::new();
    f.encode(proto, &mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn resp3_frames_round_trip(f in frame()) {
        let raw = encoded(&f, Protocol::Resp3);
        let scan = scan_reply(&raw, &Limits::default()).expect("valid").expect("complete");
        prop_assert_eq!(scan.len, raw.len());
        let (back, used) = Frame::parse(&raw).expect("valid").expect("complete");
        prop_assert_eq!(used, raw.len());
        prop_assert_eq!(back, f);
        // Any strict prefix is incomplete, never an error or a wrong frame.
        for cut in 0..raw.len() {
            prop_assert!(scan_reply(&raw[..cut], &Limits::default()).expect("prefix").is_none());
        }
    }

    #[test]
    fn resp3_to_resp2_equals_the_frames_resp2_encoding(f in frame()) {
        let raw = encoded(&f, Protocol::Resp3);
        let mut out = BytesMut::new();
        to_resp2(&raw, false, &mut out);
        prop_assert_eq!(&out[..], &encoded(&f, Protocol::Resp2)[..]);
        let scan = scan_reply(&out, &Limits::default()).expect("valid").expect("complete");
        prop_assert_eq!(scan.len, out.len());
        prop_assert!(!scan.resp3, "RESP3 type left in {:?}", out);
    }

    #[test]
    fn resp2_frames_pass_through_unchanged(f in resp2_frame()) {
        let raw = encoded(&f, Protocol::Resp2);
        let mut out = BytesMut::new();
        to_resp2(&raw, false, &mut out);
        prop_assert_eq!(&out[..], &raw[..]);
    }

    #[test]
    fn requests_round_trip_split_anywhere(
        args in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..32), 1..8),
        cut_at in any::<prop::sample::Index>(),
    ) {
        let slices: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let mut wire = BytesMut::new();
        encode::command(&mut wire, &slices);
        let cut = cut_at.index(wire.len());
        let mut buf = BytesMut::from(&wire[..cut]);
        prop_assert!(decode_request(&mut buf, &Limits::default()).expect("prefix").is_none());
        buf.extend_from_slice(&wire[cut..]);
        let req = decode_request(&mut buf, &Limits::default()).expect("valid").expect("complete");
        prop_assert!(buf.is_empty());
        let got: Vec<&[u8]> = req.args().collect();
        prop_assert_eq!(got, slices);
    }
}
