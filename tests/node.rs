//! `sluice node`: smoke tests over raw RESP.

mod common;

use std::time::Duration;

use common::node::Node;
use common::{wait_until, Resp};

#[test]
fn ping_echo_get_set_del() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.cmd_raw(&["PING"]), b"+PONG\r\n");
    assert_eq!(c.cmd_raw(&["ping", "hi"]), b"$2\r\nhi\r\n");
    assert_eq!(c.cmd_raw(&["ECHO", "a\r\nb"]), b"$4\r\na\r\nb\r\n");
    assert_eq!(c.cmd_raw(&["GET", "k"]), b"$-1\r\n");
    assert_eq!(c.cmd_raw(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(c.cmd_raw(&["get", "k"]), b"$1\r\nv\r\n");
    assert_eq!(c.cmd_raw(&["SET", "k", "w", "NX"]), b"$-1\r\n");
    assert_eq!(c.cmd_raw(&["SET", "k", "w", "XX", "GET"]), b"$1\r\nv\r\n");
    assert_eq!(c.cmd_raw(&["EXISTS", "k", "k", "nope"]), b":2\r\n");
    assert_eq!(c.cmd_raw(&["DEL", "k", "nope"]), b":1\r\n");
    assert_eq!(c.cmd_raw(&["GET", "k"]), b"$-1\r\n");
}

#[test]
fn errors_are_redis_7_texts() {
    let node = Node::start();
    let mut c = node.client();
    let cases: &[(&[&str], &str)] = &[
        (
            &["NOPE", "a", "b"],
            "-ERR unknown command 'NOPE', with args beginning with: 'a' 'b' \r\n",
        ),
        (
            &["GET"],
            "-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (&["SET", "k", "v", "EX"], "-ERR syntax error\r\n"),
        (
            &["SET", "k", "v", "EX", "x"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (
            &["SET", "k", "v", "EX", "0"],
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        (&["SELECT", "16"], "-ERR DB index is out of range\r\n"),
        (
            &["EXPIRE", "k", "1", "NX", "XX"],
            "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n",
        ),
    ];
    for (cmd, want) in cases {
        assert_eq!(
            String::from_utf8_lossy(&c.cmd_raw(cmd)),
            *want,
            "reply to {cmd:?}"
        );
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let node = Node::start();
    let mut c = node.client();
    let mut batch = Vec::new();
    for i in 0..100 {
        batch.extend(common::encode(&["SET", &format!("k{i}"), &i.to_string()]));
        batch.extend(common::encode(&["GET", &format!("k{i}")]));
    }
    batch.extend_from_slice(b"PING\r\n");
    c.send_raw(&batch);
    for i in 0..100 {
        assert_eq!(c.read(), Resp::Simple("OK".into()));
        assert_eq!(c.read(), Resp::Bulk(i.to_string().into_bytes()));
    }
    assert_eq!(c.read(), Resp::Simple("PONG".into()));
}

#[test]
fn databases_are_separate() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.cmd_raw(&["SET", "k", "zero"]), b"+OK\r\n");
    assert_eq!(c.cmd_raw(&["SELECT", "1"]), b"+OK\r\n");
    assert_eq!(c.cmd_raw(&["GET", "k"]), b"$-1\r\n");
    assert_eq!(node.client().cmd_raw(&["GET", "k"]), b"$4\r\nzero\r\n");
}

#[test]
fn keys_expire_lazily_and_actively() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.cmd_raw(&["SET", "k", "v", "EX", "100"]), b"+OK\r\n");
    assert_eq!(c.cmd(&["TTL", "k"]), Resp::Int(100));
    assert_eq!(c.cmd_raw(&["TTL", "nope"]), b":-2\r\n");
    assert_eq!(c.cmd_raw(&["PERSIST", "k"]), b":1\r\n");
    assert_eq!(c.cmd_raw(&["TTL", "k"]), b":-1\r\n");
    assert_eq!(c.cmd_raw(&["PEXPIRE", "k", "30"]), b":1\r\n");
    wait_until(Duration::from_secs(5), "k to expire", || {
        c.cmd(&["GET", "k"]) == Resp::Nil
    });
    for i in 0..50 {
        let k = format!("v{i}");
        assert_eq!(c.cmd_raw(&["SET", &k, "x", "PX", "20"]), b"+OK\r\n");
    }
    // Nobody reads these keys, and DBSIZE counts expired keys not yet deleted: only active
    // expiry can bring it to zero.
    wait_until(Duration::from_secs(5), "active expiry", || {
        c.cmd(&["DBSIZE"]) == Resp::Int(0)
    });
}

#[test]
fn protocol_error_closes_the_connection() {
    let node = Node::start();
    let mut c = node.client();
    c.send_raw(b"PING\r\n*x\r\n");
    assert_eq!(c.read(), Resp::Simple("PONG".into()));
    assert_eq!(
        c.read(),
        Resp::Error("ERR Protocol error: invalid multibulk length".into())
    );
    assert!(c.is_closed());
}

#[test]
fn requirepass_needs_auth() {
    let node = Node::start_with(&["--requirepass", "sekret"]);
    let mut c = node.client();
    assert_eq!(
        c.cmd_raw(&["GET", "k"]),
        b"-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        c.cmd_raw(&["AUTH", "wrong"]),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(c.cmd_raw(&["AUTH", "sekret"]), b"+OK\r\n");
    assert_eq!(c.cmd_raw(&["GET", "k"]), b"$-1\r\n");
}
