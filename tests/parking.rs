//! Idle clients are parked after `park_idle_after` (their task and socket registration freed)
//! and come back as they were: same database, name and protocol; CLIENT KILL reaches them;
//! a client in the middle of a transaction is never parked; one that leaves is forgotten.

mod common;

use std::time::Duration;

use common::{standalone_config, wait_until, Redis, Resp, Sluice};

const PARK: &str = "park_idle_after = \"100ms\"";

/// A gauge of the `main` pool from /metrics.
fn gauge(proxy: &Sluice, name: &str) -> i64 {
    let (status, body) = proxy.http_get("/metrics");
    assert_eq!(status, 200);
    let prefix = format!("{name}{{pool=\"main\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.parse::<f64>().map_or(-1, |v| v as i64))
}

fn wait_parked(proxy: &Sluice, n: i64) {
    wait_until(Duration::from_secs(10), &format!("{n} parked"), || {
        gauge(proxy, "sluice_parked_clients") == n
    });
}

fn an_idle_client_is_parked_and_keeps_its_session() {
    let master = Redis::start();
    let proxy = Sluice::start(&standalone_config(&master, &[], "master", PARK));
    let mut c = proxy.client();
    assert!(matches!(c.cmd(&["HELLO", "3"]), Resp::Map(_)));
    assert_eq!(
        c.cmd(&["CLIENT", "SETNAME", "bob"]),
        Resp::Simple("OK".into())
    );
    assert_eq!(c.cmd(&["SELECT", "3"]), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["SET", "k", "v"]), Resp::Simple("OK".into()));
    wait_parked(&proxy, 1);
    // The first request wakes it: database 3, its name and RESP3 (a map reply) are intact.
    assert_eq!(c.cmd(&["GET", "k"]), Resp::Bulk(b"v".to_vec()));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), Resp::Bulk(b"bob".to_vec()));
    assert_eq!(c.cmd(&["HGETALL", "none"]), Resp::Map(vec![]));
    assert_eq!(gauge(&proxy, "sluice_parked_clients"), 0);
    // And it parks again once idle.
    wait_parked(&proxy, 1);
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(1));
}

fn a_parked_client_can_be_killed_and_one_that_leaves_is_forgotten() {
    let master = Redis::start();
    let proxy = Sluice::start(&standalone_config(&master, &[], "master", PARK));
    let mut parked = proxy.client();
    let id = match parked.cmd(&["CLIENT", "ID"]) {
        Resp::Int(id) => id,
        other => panic!("CLIENT ID answered {other:?}"),
    };
    let mut leaver = proxy.client();
    assert_eq!(leaver.cmd(&["PING"]), Resp::Simple("PONG".into()));
    wait_parked(&proxy, 2);
    drop(leaver);
    wait_parked(&proxy, 1);
    wait_until(Duration::from_secs(10), "the leaver counted out", || {
        gauge(&proxy, "sluice_client_connections") == 1
    });
    let mut admin = proxy.client();
    // Listed as any client, its local address asked of its parked socket.
    let list = admin.cmd(&["CLIENT", "LIST", "ID", &id.to_string()]).text();
    assert!(
        list.contains(&format!("laddr={} ", proxy.addr())),
        "CLIENT LIST of the parked client: {list}"
    );
    let killed = admin.cmd(&["CLIENT", "KILL", "LADDR", &proxy.addr(), "SKIPME", "yes"]);
    assert_eq!(killed, Resp::Int(1));
    assert!(
        parked.is_closed(),
        "the killed parked client is still connected"
    );
    wait_parked(&proxy, 0);
    wait_until(
        Duration::from_secs(10),
        "the killed client counted out",
        || gauge(&proxy, "sluice_client_connections") == 1,
    );
}

fn a_client_in_a_transaction_is_not_parked() {
    let master = Redis::start();
    let proxy = Sluice::start(&standalone_config(&master, &[], "master", PARK));
    let mut tx = proxy.client();
    assert_eq!(tx.cmd(&["MULTI"]), Resp::Simple("OK".into()));
    assert_eq!(tx.cmd(&["SET", "k", "1"]), Resp::Simple("QUEUED".into()));
    let mut idle = proxy.client();
    assert_eq!(idle.cmd(&["PING"]), Resp::Simple("PONG".into()));
    // The idle client parks: the sweeps that saw the transaction's client ran too.
    wait_parked(&proxy, 1);
    let mut other = proxy.client();
    assert_eq!(other.cmd(&["PING"]), Resp::Simple("PONG".into()));
    wait_parked(&proxy, 2);
    assert_eq!(
        tx.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::Simple("OK".into())])
    );
    assert_eq!(idle.cmd(&["GET", "k"]), Resp::Bulk(b"1".to_vec()));
}

on_both_backends! {
    both: [
        an_idle_client_is_parked_and_keeps_its_session,
        a_parked_client_can_be_killed_and_one_that_leaves_is_forgotten,
        a_client_in_a_transaction_is_not_parked,
    ],
    redis_only: [],
}
