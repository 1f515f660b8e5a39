//! The proxy's limits: what it trusts from nodes, what it refuses from clients (before and
//! after AUTH), how much it holds for a client that does not read, which ACL commands it
//! keeps from clients, and the admin server's connection limits.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{standalone_config, Redis, Resp, Sluice};

/// Reads `n` bytes (a reply whose length the test knows) without parsing it (deep replies
/// would need a parser as deep as the reply); fewer if the peer stops sending for the read
/// timeout or closes, so a wrong answer shows up in the assertion rather than as a timeout.
fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => got += k,
        }
    }
    buf.truncate(got);
    buf
}

/// Sends `payload` on a fresh connection to `addr` (after `HELLO 3` when `resp3`) and returns
/// the next `n` bytes of the answer, HELLO's reply skipped.
fn raw_exchange(addr: &str, resp3: bool, payload: &[u8], n: usize) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    if resp3 {
        let mut c = common::Client::connect(addr);
        // Learn HELLO's reply length on a throwaway connection, then skip that many bytes.
        let hello = c.cmd_raw(&["HELLO", "3"]);
        s.write_all(&common::encode(&["HELLO", "3"]))
            .expect("write");
        read_exactly(&mut s, hello.len());
    }
    s.write_all(payload).expect("write");
    read_exactly(&mut s, n)
}

/// Item 8: a Lua table nested 1000 or 7000 deep (Redis's Lua allows nearly 8000 levels) comes
/// back through the proxy byte for byte, for RESP2 and RESP3 clients, also when it holds a
/// RESP3-only type a RESP2 client needs converted; the shared connection survives it.
fn deep_replies_from_a_node_pass_through() {
    let master = Redis::start();
    let proxy = Sluice::start(&standalone_config(&master, &[], "master", ""));
    let nest = "for i = 1, tonumber(ARGV[1]) do t = {t} end return t";
    let plain = format!("local t = 1 {nest}");
    let double = format!("redis.setresp(3) local t = {{double = 1.5}} {nest}");
    for depth in [1000usize, 7000] {
        let d = depth.to_string();
        let cases: [(&str, bool, &[u8]); 4] = [
            (&plain, false, b":1\r\n"),
            (&plain, true, b":1\r\n"),
            (&double, false, b"$3\r\n1.5\r\n"),
            (&double, true, b",1.5\r\n"),
        ];
        for (script, resp3, leaf) in cases {
            let mut want = b"*1\r\n".repeat(depth);
            want.extend_from_slice(leaf);
            let req = common::encode(&["EVAL", script, "0", &d]);
            let direct = raw_exchange(&master.addr(), resp3, &req, want.len());
            assert_eq!(direct, want, "redis-server itself (depth {depth})");
            let through = raw_exchange(&proxy.addr(), resp3, &req, want.len());
            assert!(
                through == want,
                "depth {depth}, resp3 {resp3}, leaf {:?}: got {:?}",
                String::from_utf8_lossy(leaf),
                String::from_utf8_lossy(&through[..through.len().min(200)])
            );
        }
    }
    // The shared node connection was not dropped as "malformed".
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["SET", "after", "1"]), Resp::Simple("OK".into()));
    let (_, metrics) = proxy.http_get("/metrics");
    assert!(
        !metrics.contains("malformed"),
        "metrics mention malformed replies"
    );
}

/// Item 11: `ACL SETUSER`/`DELUSER`/`LOAD` would change the users the proxy's own
/// connections log in as: denied by default (also inside MULTI), while ACL reads pass; the
/// node's users are untouched.
fn acl_commands_that_change_users_are_denied() {
    let master = Redis::start();
    let proxy = Sluice::start(&standalone_config(&master, &[], "master", ""));
    let mut c = proxy.client();
    for cmd in [
        vec!["ACL", "SETUSER", "default", "resetpass", ">x"],
        vec!["acl", "setuser", "alice", "on", ">pw", "+@all", "~*"],
        vec!["ACL", "DELUSER", "default"],
        vec!["Acl", "Load"],
    ] {
        match c.cmd(&cmd) {
            Resp::Error(e) => assert!(
                e.starts_with("ERR sluice: 'ACL ") && e.contains("allow_commands"),
                "{cmd:?}: {e}"
            ),
            other => panic!("{cmd:?} passed: {other:?}"),
        }
    }
    assert_eq!(c.cmd(&["MULTI"]), Resp::Simple("OK".into()));
    assert!(
        matches!(c.cmd(&["ACL", "SETUSER", "default", "resetpass"]), Resp::Error(e) if e.contains("allow_commands"))
    );
    let _ = c.cmd(&["DISCARD"]);
    // Nothing reached the node: its default user still needs no password, and new
    // connections through the proxy still work.
    assert_eq!(master.client().cmd(&["PING"]), Resp::Simple("PONG".into()));
    assert_eq!(
        proxy.client().cmd(&["SET", "k", "v"]),
        Resp::Simple("OK".into())
    );
}

/// Item 11: `allow_commands` lifts the denial of one ACL subcommand, not the others.
fn allow_commands_lets_one_acl_subcommand_through() {
    let master = Redis::start();
    let proxy = Sluice::start(&standalone_config(
        &master,
        &[],
        "master",
        "allow_commands = [\"acl setuser\"]",
    ));
    let mut c = proxy.client();
    assert_eq!(
        c.cmd(&["ACL", "SETUSER", "alice", "on", ">pw", "+get", "~*"]),
        Resp::Simple("OK".into())
    );
    assert!(matches!(
        master.client().cmd(&["ACL", "GETUSER", "alice"]),
        Resp::Array(_)
    ));
    assert!(matches!(
        c.cmd(&["ACL", "DELUSER", "alice"]),
        Resp::Error(e) if e.contains("'ACL DELUSER' is not allowed")
    ));
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), Resp::Bulk(b"default".to_vec()));
}

on_both_backends! {
    both: [acl_commands_that_change_users_are_denied],
    redis_only: [
        // Needs Lua scripting (EVAL), which sluice node does not have.
        deep_replies_from_a_node_pass_through,
        // Needs ACL users, which sluice node does not have.
        allow_commands_lets_one_acl_subcommand_through,
    ],
}
