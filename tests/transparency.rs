//! Transparency (issue 13): commands a client library or Redis's own test suite relies on are
//! answered through the proxy as Redis answers them on a direct connection.

mod common;

use common::{encode, standalone_config, Redis, Resp, Sluice};

fn proxy(master: &Redis, extra: &str) -> Sluice {
    Sluice::start(&standalone_config(master, &[], "master", extra))
}

/// Sends `script` (one pipelined batch) to a direct connection and through the proxy, and
/// returns both raw reply streams (each `n` replies long).
fn both_raw(master: &Redis, proxy: &Sluice, script: &[&[&str]], n: usize) -> (Vec<u8>, Vec<u8>) {
    let run = |mut c: common::Client| {
        let batch: Vec<u8> = script.iter().flat_map(|a| encode(a)).collect();
        c.send_raw(&batch);
        (0..n).flat_map(|_| c.read_raw_reply()).collect::<Vec<u8>>()
    };
    (run(master.client()), run(proxy.client()))
}

fn nested_multi_is_refused_and_exec_still_runs() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let script: &[&[&str]] = &[
        &["MULTI"],
        &["SET", "nested", "1"],
        &["MULTI"],
        &["WATCH", "nested"],
        &["INCR", "nested"],
        &["EXEC"],
        &["GET", "nested"],
    ];
    let (direct, proxied) = both_raw(&master, &p, script, script.len());
    assert_eq!(
        String::from_utf8_lossy(&proxied),
        String::from_utf8_lossy(&direct)
    );
    assert!(
        String::from_utf8_lossy(&proxied).contains("-ERR MULTI calls can not be nested\r\n"),
        "{}",
        String::from_utf8_lossy(&proxied)
    );
    let mut c = p.client();
    assert_eq!(c.cmd(&["GET", "nested"]), Resp::Bulk(b"2".to_vec()));
}

on_both_backends! {
    both: [
        nested_multi_is_refused_and_exec_still_runs,
    ],
    redis_only: [],
}
