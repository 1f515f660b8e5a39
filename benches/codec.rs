//! Hot-path costs of the RESP module: request decoding, reply scanning, conversion, encoding.

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sluice::resp::{convert, decode_request, encode, scan_reply, Limits, Request};

fn decode(c: &mut Criterion) {
    let limits = Limits::default();

    let mut pipeline = Vec::new();
    for i in 0..16 {
        let key = format!("key:{i:03}");
        pipeline.extend_from_slice(Request::from_args(&["SET", key.as_str(), "value"]).raw());
    }
    let mut g = c.benchmark_group("decode_request");
    g.throughput(Throughput::Elements(16));
    g.bench_function("pipeline_16_set", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&pipeline[..]);
            let mut n = 0;
            while let Some(r) = decode_request(&mut buf, &limits).unwrap() {
                n += r.len();
            }
            black_box(n)
        })
    });
    g.throughput(Throughput::Elements(1));
    let get = b"*2\r\n$3\r\nGET\r\n$7\r\nkey:001\r\n";
    g.bench_function("get", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&get[..]);
            black_box(decode_request(&mut buf, &limits).unwrap())
        })
    });
    g.bench_function("inline_ping", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&b"PING\r\n"[..]);
            black_box(decode_request(&mut buf, &limits).unwrap())
        })
    });
    g.finish();
}

fn scan(c: &mut Criterion) {
    let limits = Limits::default();
    let mut array = b"*100\r\n".to_vec();
    for i in 0..100 {
        let v = format!("value:{i}");
        array.extend_from_slice(format!("${}\r\n{v}\r\n", v.len()).as_bytes());
    }
    let mut bulk = b"$1024\r\n".to_vec();
    bulk.resize(bulk.len() + 1024, b'x');
    bulk.extend_from_slice(b"\r\n");

    let mut g = c.benchmark_group("scan_reply");
    g.bench_function("array_100", |b| {
        b.iter(|| black_box(scan_reply(black_box(&array), &limits).unwrap()))
    });
    g.bench_function("bulk_1k", |b| {
        b.iter(|| black_box(scan_reply(black_box(&bulk), &limits).unwrap()))
    });
    g.bench_function("ok", |b| {
        b.iter(|| black_box(scan_reply(black_box(b"+OK\r\n"), &limits).unwrap()))
    });
    g.finish();
}

fn to_resp2(c: &mut Criterion) {
    // HGETALL of a 32-field hash as a RESP3 node sends it.
    let mut map = b"%32\r\n".to_vec();
    for i in 0..32 {
        let (f, v) = (format!("field:{i}"), format!("value:{i}"));
        map.extend_from_slice(format!("${}\r\n{f}\r\n${}\r\n{v}\r\n", f.len(), v.len()).as_bytes());
    }
    let mut out = BytesMut::with_capacity(4096);
    c.bench_function("to_resp2/hgetall_32", |b| {
        b.iter(|| {
            out.clear();
            convert::to_resp2(black_box(&map), false, &mut out);
            black_box(out.len())
        })
    });
}

fn encoders(c: &mut Criterion) {
    let mut out = BytesMut::with_capacity(4096);
    let data = [b'v'; 64];
    let mut g = c.benchmark_group("encode");
    g.bench_function("integer", |b| {
        b.iter(|| {
            out.clear();
            encode::integer(&mut out, black_box(1_234_567));
            black_box(out.len())
        })
    });
    g.bench_function("bulk_64", |b| {
        b.iter(|| {
            out.clear();
            encode::bulk(&mut out, black_box(&data));
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, decode, scan, to_resp2, encoders);
criterion_main!(benches);
