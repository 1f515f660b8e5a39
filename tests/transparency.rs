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

fn client_reply_off_on_skip_drop_exactly_the_replies_redis_drops() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let script: &[&[&str]] = &[
        &["CLIENT", "REPLY", "OFF"],
        &["SET", "r1", "1"],
        &["GET", "r1"],
        &["PING"],
        &["MULTI"],
        &["INCR", "r1"],
        &["EXEC"],
        &["CLIENT", "REPLY", "ON"],
        &["CLIENT", "REPLY", "SKIP"],
        &["INCR", "r1"],
        &["GET", "r1"],
        &["CLIENT", "REPLY", "SKIP"],
        &["BLPOP", "nolist", "0.01"],
        &["ECHO", "last"],
    ];
    // +OK (ON), $1 3 (GET), $4 last (ECHO): every other reply is dropped.
    let (direct, proxied) = both_raw(&master, &p, script, 3);
    // (`sluice node` itself still answers a skipped blocking command: compare with Redis.)
    if common::Backend::current() == common::Backend::Redis {
        assert_eq!(
            String::from_utf8_lossy(&proxied),
            String::from_utf8_lossy(&direct)
        );
    }
    assert_eq!(proxied, b"+OK\r\n$1\r\n3\r\n$4\r\nlast\r\n".to_vec());
    // Nothing more arrives: the dropped replies are not just late.
    let mut c = p.client();
    c.send_raw(&encode(&["CLIENT", "REPLY", "OFF"]));
    c.send_raw(&encode(&["SET", "r2", "x"]));
    c.send_raw(&encode(&["CLIENT", "REPLY", "ON"]));
    assert_eq!(c.read(), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["GET", "r2"]), Resp::Bulk(b"x".to_vec()));
}

fn subscribe_confirmations_and_messages_reach_a_client_with_replies_off() {
    let master = Redis::start();
    let p = proxy(&master, "");
    // (`sluice node` itself does not send pub/sub confirmations with replies off yet: the
    // direct check runs against redis-server only.)
    let direct = (common::Backend::current() == common::Backend::Redis).then(|| master.addr());
    for addr in direct.into_iter().chain([p.addr()]) {
        let mut sub = common::Client::connect(&addr);
        sub.send_raw(&encode(&["CLIENT", "REPLY", "OFF"]));
        let confirm = sub.cmd(&["SUBSCRIBE", "quiet"]);
        assert_eq!(
            confirm,
            Resp::Array(vec![
                Resp::Bulk(b"subscribe".to_vec()),
                Resp::Bulk(b"quiet".to_vec()),
                Resp::Int(1)
            ]),
            "{addr}"
        );
        let mut publisher = p.client();
        common::wait_until(std::time::Duration::from_secs(5), "a receiver", || {
            publisher.cmd(&["PUBLISH", "quiet", "m"]) == Resp::Int(1)
        });
        match sub.read() {
            Resp::Array(items) => assert_eq!(items[2], Resp::Bulk(b"m".to_vec()), "{addr}"),
            other => panic!("{addr}: {other:?}"),
        }
    }
}

on_both_backends! {
    both: [
        nested_multi_is_refused_and_exec_still_runs,
        client_reply_off_on_skip_drop_exactly_the_replies_redis_drops,
        subscribe_confirmations_and_messages_reach_a_client_with_replies_off,
    ],
    redis_only: [],
}
