//! Per-request classification cost: command-table lookup and the routing predicates the
//! session asks of every forwarded request.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use sluice::command;
use sluice::resp::Request;

fn classify(c: &mut Criterion) {
    let requests: Vec<(&str, Request)> = vec![
        ("get", Request::from_args(&["GET", "key:000123"])),
        ("set", Request::from_args(&["SET", "key:000123", "value"])),
        ("hgetall_lower", Request::from_args(&["hgetall", "h"])),
        (
            "config_get",
            Request::from_args(&["CONFIG", "GET", "maxmemory"]),
        ),
        (
            "evalsha_ro",
            Request::from_args(&["EVALSHA_RO", "abc", "1", "k"]),
        ),
        (
            "xread_block",
            Request::from_args(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]),
        ),
        ("unknown", Request::from_args(&["MYMODULE.CMD", "x"])),
    ];
    let mut group = c.benchmark_group("classify");
    for (name, req) in &requests {
        group.bench_function(*name, |b| {
            b.iter(|| {
                let req = black_box(req);
                let info = command::lookup(req);
                (
                    command::is_read(req, info),
                    command::is_blocking(req, info),
                    command::nil_is_array(req, info),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, classify);
criterion_main!(benches);
