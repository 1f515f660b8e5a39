//! `sluice node` against redis-server, same assertions on both: CLIENT PAUSE / UNPAUSE /
//! UNBLOCK, SLOWLOG, LATENCY and the DEBUG subcommands test suites use.

mod common;

use std::time::Duration;

use common::node::Node;
use common::{wait_until, Client, Redis, Resp};

/// Runs `scenario` against a fresh redis-server and a fresh node.
fn on_both(scenario: fn(&str)) {
    let redis = Redis::start();
    scenario(&redis.addr());
    let node = Node::start();
    scenario(&node.addr());
}

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

fn err(text: &str) -> Resp {
    Resp::Error(text.into())
}

/// `INFO clients` `blocked_clients`.
fn blocked_clients(c: &mut Client) -> i64 {
    let info = c.cmd(&["INFO", "clients"]).text();
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1)
}

fn wait_blocked(admin: &mut Client, n: i64) {
    wait_until(Duration::from_secs(10), "blocked clients", || {
        blocked_clients(admin) == n
    });
}

fn pause_scenario(addr: &str) {
    let mut admin = Client::connect(addr);
    let mut w = Client::connect(addr);
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "60000", "WRITE"]), ok());
    // Reads and syntax errors are answered at once; writes, PUBLISH and scripts wait.
    assert_eq!(w.cmd(&["GET", "k"]), Resp::Nil);
    assert_eq!(
        w.cmd(&["SET", "k"]),
        err("ERR wrong number of arguments for 'set' command")
    );
    assert_eq!(
        w.cmd(&["EVAL", "#!lua flags=no-writes\nreturn 1", "0"]),
        Resp::Int(1)
    );
    w.send(&["SET", "k", "v"]);
    let mut p = Client::connect(addr);
    p.send(&["EVAL", "return 2", "0"]);
    wait_blocked(&mut admin, 2);
    assert_eq!(admin.cmd(&["GET", "k"]), Resp::Nil);
    assert_eq!(admin.cmd(&["CLIENT", "UNPAUSE"]), ok());
    assert_eq!(w.read(), ok());
    assert_eq!(p.read(), Resp::Int(2));
    assert_eq!(admin.cmd(&["GET", "k"]), Resp::Bulk(b"v".to_vec()));

    // Under a pause, expired keys read as missing but are not deleted.
    assert_eq!(admin.cmd(&["SET", "e", "1", "PX", "1"]), ok());
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "60000", "WRITE"]), ok());
    wait_until(Duration::from_secs(5), "e to expire", || {
        admin.cmd(&["GET", "e"]) == Resp::Nil
    });
    assert_eq!(admin.cmd(&["DBSIZE"]), Resp::Int(2));
    assert_eq!(admin.cmd(&["CLIENT", "UNPAUSE"]), ok());
    assert_eq!(admin.cmd(&["GET", "e"]), Resp::Nil);
    assert_eq!(admin.cmd(&["DBSIZE"]), Resp::Int(1));

    // ALL holds every command back until the pause ends by itself.
    assert_eq!(admin.cmd(&["CLIENT", "PAUSE", "300", "ALL"]), ok());
    assert_eq!(w.cmd(&["PING"]), Resp::Simple("PONG".into()));

    for (args, want) in [
        (
            &["CLIENT", "PAUSE", "x"][..],
            "ERR timeout is not an integer or out of range",
        ),
        (&["CLIENT", "PAUSE", "-1"], "ERR timeout is negative"),
        (
            &["CLIENT", "PAUSE", "10", "SOME"],
            "ERR CLIENT PAUSE mode must be WRITE or ALL",
        ),
        (
            &["CLIENT", "UNBLOCK", "1", "NOW"],
            "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
        ),
        (
            &["CLIENT", "UNBLOCK", "x"],
            "ERR value is not an integer or out of range",
        ),
    ] {
        assert_eq!(admin.cmd(args), err(want), "{args:?}");
    }
}

#[test]
fn client_pause_write_and_all() {
    on_both(pause_scenario);
}

fn unblock_scenario(addr: &str) {
    let mut admin = Client::connect(addr);
    let mut b = Client::connect(addr);
    let Resp::Int(id) = b.cmd(&["CLIENT", "ID"]) else {
        panic!("CLIENT ID")
    };
    let id = id.to_string();
    b.send(&["BLPOP", "l", "0"]);
    wait_blocked(&mut admin, 1);
    let list = admin.cmd(&["CLIENT", "LIST", "ID", &id]).text();
    assert!(list.contains("flags=b"), "{list}");
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &id]), Resp::Int(1));
    assert_eq!(b.read(), Resp::Nil);
    b.send(&["BLPOP", "l", "0"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(
        admin.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]),
        Resp::Int(1)
    );
    assert_eq!(
        b.read(),
        err("UNBLOCKED client unblocked via CLIENT UNBLOCK")
    );
    // Not blocked: nothing to do.
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &id]), Resp::Int(0));
    // A key turned into another type does not wake a blocked pop with an error.
    b.send(&["BLPOP", "l", "0"]);
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["SET", "l", "x"]), ok());
    assert_eq!(admin.cmd(&["DEL", "l"]), Resp::Int(1));
    assert_eq!(admin.cmd(&["RPUSH", "l", "a"]), Resp::Int(1));
    assert_eq!(
        b.read(),
        Resp::Array(vec![Resp::Bulk(b"l".to_vec()), Resp::Bulk(b"a".to_vec())])
    );
}

#[test]
fn client_unblock_timeout_and_error() {
    on_both(unblock_scenario);
}
