//! `sluice node`: behaviour across clients — WATCH, SCAN under concurrent writes, CLIENT
//! LIST/KILL, commandstats, active expiry, SHUTDOWN.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::node::Node;
use common::{wait_until, Client, Resp};

#[test]
fn watch_is_broken_by_another_client() {
    let node = Node::start();
    let (mut a, mut b) = (node.client(), node.client());
    assert_eq!(a.cmd_raw(&["SET", "k", "1"]), b"+OK\r\n");
    assert_eq!(a.cmd_raw(&["WATCH", "k"]), b"+OK\r\n");
    assert_eq!(b.cmd_raw(&["SET", "k", "2"]), b"+OK\r\n");
    assert_eq!(a.cmd_raw(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd_raw(&["SET", "k", "3"]), b"+QUEUED\r\n");
    assert_eq!(a.cmd_raw(&["EXEC"]), b"*-1\r\n");
    assert_eq!(a.cmd_raw(&["GET", "k"]), b"$1\r\n2\r\n");

    // Untouched watch: EXEC runs, and the watch is gone afterwards.
    assert_eq!(a.cmd_raw(&["WATCH", "k", "other"]), b"+OK\r\n");
    assert_eq!(b.cmd_raw(&["SET", "unrelated", "x"]), b"+OK\r\n");
    assert_eq!(a.cmd_raw(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd_raw(&["INCR", "k"]), b"+QUEUED\r\n");
    assert_eq!(a.cmd_raw(&["EXEC"]), b"*1\r\n:3\r\n");
    assert_eq!(b.cmd_raw(&["SET", "k", "9"]), b"+OK\r\n");
    assert_eq!(a.cmd_raw(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd_raw(&["EXEC"]), b"*0\r\n");

    // Deleting, flushing and expiring a watched key all break the transaction.
    for breaker in [&["DEL", "k"][..], &["FLUSHDB"][..]] {
        assert_eq!(a.cmd_raw(&["SET", "k", "1"]), b"+OK\r\n");
        assert_eq!(a.cmd_raw(&["WATCH", "k"]), b"+OK\r\n");
        b.cmd(breaker);
        assert_eq!(a.cmd_raw(&["MULTI"]), b"+OK\r\n");
        assert_eq!(a.cmd_raw(&["PING"]), b"+QUEUED\r\n");
        assert_eq!(a.cmd_raw(&["EXEC"]), b"*-1\r\n", "after {breaker:?}");
    }
    // Long enough that the WATCH below comes before the expiry on a loaded machine (at 50 ms
    // it sometimes did not, and EXEC then ran: the key was gone before it was watched).
    assert_eq!(a.cmd_raw(&["SET", "k", "1", "PX", "400"]), b"+OK\r\n");
    assert_eq!(a.cmd_raw(&["WATCH", "k"]), b"+OK\r\n");
    wait_until(Duration::from_secs(5), "k to expire", || {
        b.cmd(&["EXISTS", "k"]) == Resp::Int(0)
    });
    assert_eq!(a.cmd_raw(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmd_raw(&["EXEC"]), b"*-1\r\n");
    // A disconnected watcher leaves nothing behind that could break others.
    drop(a);
    assert_eq!(b.cmd_raw(&["SET", "k", "1"]), b"+OK\r\n");
}

#[test]
fn scan_returns_every_stable_key_while_keys_change() {
    let node = Node::start();
    let mut c = node.client();
    let mut w = node.client();
    let mut batch = Vec::new();
    for i in 0..10_000 {
        batch.extend(common::encode(&["SET", &format!("stable:{i}"), "v"]));
    }
    for i in 0..2_000 {
        batch.extend(common::encode(&["SET", &format!("doomed:{i}"), "v"]));
    }
    c.send_raw(&batch);
    for _ in 0..12_000 {
        c.read();
    }
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut round = 0;
    loop {
        let Resp::Array(reply) = c.cmd(&["SCAN", &cursor, "COUNT", "100"]) else {
            panic!("bad SCAN reply")
        };
        cursor = reply[0].text();
        let Resp::Array(keys) = &reply[1] else {
            panic!("bad SCAN keys")
        };
        seen.extend(keys.iter().map(Resp::text));
        // Between calls another client adds and deletes keys.
        w.cmd(&["SET", &format!("new:{round}"), "v"]);
        w.cmd(&["DEL", &format!("doomed:{round}")]);
        round += 1;
        if cursor == "0" {
            break;
        }
    }
    let missing = (0..10_000)
        .filter(|i| !seen.contains(&format!("stable:{i}")))
        .count();
    assert_eq!(missing, 0, "keys present throughout but never returned");
    let Resp::Array(typed) = c.cmd(&["SCAN", "0", "MATCH", "stable:1?", "COUNT", "20000"]) else {
        panic!()
    };
    let Resp::Array(keys) = &typed[1] else {
        panic!()
    };
    assert_eq!(keys.len(), 10);
    let Resp::Array(none) = c.cmd(&["SCAN", "0", "TYPE", "hash", "COUNT", "20000"]) else {
        panic!()
    };
    assert_eq!(none[1], Resp::Array(vec![]));
}

#[test]
fn client_list_and_kill() {
    let node = Node::start();
    let mut a = node.client();
    let mut b = node.client();
    assert_eq!(b.cmd_raw(&["CLIENT", "SETNAME", "victim"]), b"+OK\r\n");
    let Resp::Int(b_id) = b.cmd(&["CLIENT", "ID"]) else {
        panic!()
    };
    let list = a.cmd(&["CLIENT", "LIST"]).text();
    assert_eq!(list.lines().count(), 2, "{list}");
    let line = list
        .lines()
        .find(|l| l.contains("name=victim"))
        .expect("victim listed");
    assert!(
        line.starts_with(&format!("id={b_id} addr=127.0.0.1:")),
        "{line}"
    );
    for field in [
        " laddr=",
        " age=",
        " idle=",
        " flags=N ",
        " db=0 ",
        " cmd=client",
        " resp=2",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
    let info = a.cmd(&["CLIENT", "INFO"]).text();
    assert!(
        info.contains("cmd=client") && info.ends_with('\n'),
        "{info}"
    );
    let addr = line
        .split(' ')
        .find_map(|f| f.strip_prefix("addr="))
        .expect("addr");

    // Old form by address, then new form by id (SKIPME defaults to yes).
    assert_eq!(a.cmd_raw(&["CLIENT", "KILL", addr]), b"+OK\r\n");
    assert!(b.is_closed());
    let mut c = node.client();
    let Resp::Int(c_id) = c.cmd(&["CLIENT", "ID"]) else {
        panic!()
    };
    assert_eq!(
        a.cmd(&["CLIENT", "KILL", "ID", &c_id.to_string()]),
        Resp::Int(1)
    );
    assert!(c.is_closed());
    let Resp::Int(a_id) = a.cmd(&["CLIENT", "ID"]) else {
        panic!()
    };
    assert_eq!(
        a.cmd(&["CLIENT", "KILL", "ID", &a_id.to_string()]),
        Resp::Int(0)
    );
    let mut d = node.client();
    d.cmd(&["PING"]);
    assert_eq!(a.cmd(&["CLIENT", "KILL", "USER", "default"]), Resp::Int(1));
    assert!(d.is_closed());
    wait_until(Duration::from_secs(5), "killed clients to leave", || {
        a.cmd(&["CLIENT", "LIST"]).text().lines().count() == 1
    });
    assert_eq!(a.cmd_raw(&["PING"]), b"+PONG\r\n");
}

/// `calls=` of `cmd` in INFO commandstats.
fn calls(c: &mut common::Client, cmd: &str) -> u64 {
    let info = c.cmd(&["INFO", "commandstats"]).text();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn commandstats_count_every_call() {
    let node = Node::start();
    let mut c = node.client();
    for _ in 0..5 {
        c.cmd(&["GET", "k"]);
    }
    c.cmd(&["MULTI"]);
    c.cmd(&["GET", "k"]);
    c.cmd(&["EXEC"]);
    c.cmd(&["GET"]);
    assert_eq!(calls(&mut c, "get"), 6);
    let info = c.cmd(&["INFO", "commandstats"]).text();
    assert!(
        info.contains("cmdstat_get:calls=6,usec=")
            && info.contains(",rejected_calls=1,failed_calls=0"),
        "{info}"
    );
    c.cmd(&["CONFIG", "GET", "maxmemory"]);
    assert_eq!(calls(&mut c, "config|get"), 1);
    let stats = c.cmd(&["INFO", "stats"]).text();
    assert!(stats.contains("keyspace_misses:6\r\n"), "{stats}");
    assert!(stats.contains("sync_partial_ok:0\r\n"));
    assert_eq!(c.cmd_raw(&["CONFIG", "RESETSTAT"]), b"+OK\r\n");
    assert_eq!(calls(&mut c, "get"), 0);
}

#[test]
fn active_expiry_and_debug_switch() {
    let node = Node::start();
    let mut c = node.client();
    assert_eq!(c.cmd_raw(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), b"+OK\r\n");
    for i in 0..20 {
        c.cmd(&["SET", &format!("k{i}"), "v", "PX", "10"]);
    }
    std::thread::sleep(Duration::from_millis(300));
    // Nothing touched the keys and active expiry is off: still counted.
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(20));
    assert_eq!(c.cmd_raw(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]), b"+OK\r\n");
    wait_until(Duration::from_secs(5), "active expiry", || {
        c.cmd(&["DBSIZE"]) == Resp::Int(0)
    });
    let stats = c.cmd(&["INFO", "stats"]).text();
    assert!(stats.contains("expired_keys:20\r\n"), "{stats}");
}

#[test]
fn hello_auth_and_shutdown() {
    let node = Node::start_with(&["--requirepass", "pw"]);
    let mut c = node.client();
    assert!(c
        .cmd(&["HELLO", "3"])
        .text()
        .starts_with("NOAUTH HELLO must be called with the client already authenticated"));
    let Resp::Map(fields) = c.cmd(&["HELLO", "3", "AUTH", "default", "pw", "SETNAME", "n1"]) else {
        panic!("HELLO 3 answers a map")
    };
    let keys: Vec<String> = fields.iter().map(|(k, _)| k.text()).collect();
    assert_eq!(
        keys,
        ["server", "version", "proto", "id", "mode", "role", "modules"]
    );
    assert_eq!(fields[1].1, Resp::Bulk(b"7.0.15".to_vec()));
    assert_eq!(fields[2].1, Resp::Int(3));
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), Resp::Bulk(b"n1".to_vec()));
    assert_eq!(
        c.cmd_raw(&["CONFIG", "GET", "requirepass"]),
        b"%1\r\n$11\r\nrequirepass\r\n$2\r\npw\r\n"
    );
    assert_eq!(c.cmd_raw(&["RESET"]), b"+RESET\r\n");
    assert_eq!(
        c.cmd_raw(&["PING"]),
        b"-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(c.cmd_raw(&["AUTH", "pw"]), b"+OK\r\n");
    c.send(&["SHUTDOWN", "NOSAVE"]);
    assert!(c.is_closed());
    wait_until(Duration::from_secs(5), "the node to stop", || {
        std::net::TcpStream::connect(node.addr).is_err()
    });
}

#[test]
fn debug_sleep_blocks_the_whole_node() {
    let node = Node::start();
    let mut sleeper = node.client();
    let mut other = node.client();
    sleeper.send(&["DEBUG", "SLEEP", "0.4"]);
    let done = std::thread::spawn(move || sleeper.read_raw_reply());
    // PINGs back to back: the one in flight when the sleep starts waits for its end.
    let mut slowest = Duration::ZERO;
    while !done.is_finished() {
        let t = std::time::Instant::now();
        assert_eq!(other.cmd_raw(&["PING"]), b"+PONG\r\n");
        slowest = slowest.max(t.elapsed());
    }
    assert_eq!(done.join().expect("sleeper"), b"+OK\r\n");
    assert!(
        slowest >= Duration::from_millis(200),
        "slowest PING {slowest:?}"
    );
}

#[test]
fn quit_in_subscribed_mode() {
    let node = Node::start();
    let mut c = node.client();
    c.cmd(&["SUBSCRIBE", "x"]);
    assert_eq!(c.cmd_raw(&["QUIT"]), b"+OK\r\n");
    assert!(c.is_closed());
    let mut d = node.client();
    assert_eq!(
        d.cmd(&["PUBSUB", "NUMSUB", "x"]),
        Resp::Array(vec![Resp::Bulk(b"x".to_vec()), Resp::Int(0)])
    );
}

/// Pipelines PUBLISHes of `size`-byte messages on `channel`, about 1 MiB per round trip,
/// until one reaches no subscriber or `max` bytes went out; returns the bytes published.
fn publish_until_dropped(p: &mut Client, channel: &str, size: usize, max: usize) -> usize {
    let payload = "x".repeat(size);
    let per_trip = ((1 << 20) / size).max(1);
    let mut batch = Vec::new();
    for _ in 0..per_trip {
        batch.extend_from_slice(&common::encode(&["PUBLISH", channel, &payload]));
    }
    let mut sent = 0;
    while sent < max {
        p.send_raw(&batch);
        let replies: Vec<Resp> = (0..per_trip).map(|_| p.read()).collect();
        sent += per_trip * size;
        if replies.contains(&Resp::Int(0)) {
            break;
        }
    }
    sent
}

/// A client subscribed to `channel` that never reads again.
fn silent_subscriber(addr: &str, channel: &str) -> Client {
    let mut c = Client::connect(addr);
    c.cmd(&["SUBSCRIBE", channel]);
    c
}

/// Issue 10 item 14: a subscriber that does not read is cut at the pubsub class's
/// `client-output-buffer-limit` (here set to 8 MiB), and what the node holds for it is about
/// that much, also for small messages (a queue of one allocation per message once held
/// several times the bytes it counted).
#[test]
fn a_subscriber_that_stops_reading_costs_about_its_output_limit() {
    let node = Node::start();
    let mut publisher = node.client();
    assert_eq!(
        publisher.cmd_raw(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 8mb 0 0"
        ]),
        b"+OK\r\n"
    );
    let _sub = silent_subscriber(&node.addr(), "flood");
    let before = node.peak_rss();
    let sent = publish_until_dropped(&mut publisher, "flood", 40, 64 << 20);
    assert!(sent < 64 << 20, "not dropped after {sent} bytes");
    wait_until(Duration::from_secs(10), "the subscriber to be gone", || {
        publisher.cmd(&["PUBSUB", "NUMSUB", "flood"])
            == Resp::Array(vec![Resp::Bulk(b"flood".to_vec()), Resp::Int(0)])
    });
    let grown = node.peak_rss().saturating_sub(before);
    assert!(grown < 40 << 20, "peak RSS grew by {grown} bytes");
}

/// `client-output-buffer-limit` as Redis applies it, the same on redis-server and a node:
/// the pubsub hard limit cuts at once, its soft limit only after its seconds, and the normal
/// class closes a client whose reply is over its limit.
fn output_limits(addr: &str) {
    let mut admin = Client::connect(addr);
    let set = |admin: &mut Client, v: &str| {
        assert_eq!(
            admin.cmd_raw(&["CONFIG", "SET", "client-output-buffer-limit", v]),
            b"+OK\r\n"
        );
    };
    set(&mut admin, "pubsub 2mb 0 0");
    let _sub = silent_subscriber(addr, "hard");
    // 12 MiB: the socket buffers take a few MiB, the rest is past 2 MiB but far below the
    // default 32 MiB, so only the new limit can drop the subscriber.
    publish_until_dropped(&mut admin, "hard", 64 << 10, 12 << 20);
    wait_until(Duration::from_secs(10), "the hard limit to act", || {
        admin.cmd(&["PUBSUB", "NUMSUB", "hard"])
            == Resp::Array(vec![Resp::Bulk(b"hard".to_vec()), Resp::Int(0)])
    });

    set(&mut admin, "pubsub 0 1mb 1");
    let _sub = silent_subscriber(addr, "soft");
    let payload = "x".repeat(64 << 10);
    for _ in 0..192 {
        admin.cmd(&["PUBLISH", "soft", &payload]);
    }
    // 12 MiB: well past the soft limit, but only just; it takes its seconds to act.
    assert_eq!(admin.cmd(&["PUBLISH", "soft", "x"]), Resp::Int(1));
    wait_until(Duration::from_secs(10), "the soft limit to act", || {
        admin.cmd(&["PUBLISH", "soft", &payload]) == Resp::Int(0)
    });

    set(&mut admin, "normal 1mb 0 0 pubsub 32mb 8mb 60");
    let mut c = Client::connect(addr);
    c.cmd(&["SET", "small", &"x".repeat(512 << 10)]);
    c.cmd(&["SET", "big", &"x".repeat(2 << 20)]);
    assert!(matches!(c.cmd(&["GET", "small"]), Resp::Bulk(_)));
    c.send(&["GET", "big"]);
    assert!(c.is_closed(), "a 2 MiB reply over a 1 MiB normal limit");
    set(&mut admin, "normal 0 0 0");
}

#[test]
fn output_limits_on_redis() {
    output_limits(&common::Redis::start().addr());
}

#[test]
fn output_limits_on_node() {
    output_limits(&Node::start().addr());
}

/// The replica class: a replica that stops reading the stream is dropped at its limit.
#[test]
fn a_replica_that_stops_reading_is_dropped_at_its_output_limit() {
    let node = Node::start();
    let mut admin = node.client();
    assert_eq!(
        admin.cmd_raw(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "replica 1mb 0 0"
        ]),
        b"+OK\r\n"
    );
    let mut replica = node.client();
    replica.cmd(&["REPLCONF", "listening-port", "1"]);
    replica.send(&["PSYNC", "?", "-1"]);
    wait_until(Duration::from_secs(10), "the replica attached", || {
        node.info_field("replication", "connected_slaves") == "1"
    });
    let value = "x".repeat(64 << 10);
    for i in 0..256 {
        admin.cmd(&["SET", &format!("k{i}"), &value]);
        if node.info_field("replication", "connected_slaves") == "0" {
            return;
        }
    }
    panic!("a replica that reads nothing still attached after 16 MiB of writes");
}

#[test]
fn instantaneous_ops_per_sec_follows_load() {
    let node = Node::start();
    let mut c = node.client();
    let ops = |c: &mut common::Client| -> u64 {
        c.cmd(&["INFO", "stats"])
            .text()
            .lines()
            .find_map(|l| l.strip_prefix("instantaneous_ops_per_sec:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("instantaneous_ops_per_sec")
    };
    wait_until(Duration::from_secs(10), "ops/s to rise under load", || {
        let mut batch = Vec::new();
        for _ in 0..500 {
            batch.extend(common::encode(&["PING"]));
        }
        c.send_raw(&batch);
        for _ in 0..500 {
            c.read();
        }
        ops(&mut c) > 100
    });
}

#[test]
fn client_kill_filters() {
    let node = Node::start();
    let mut admin = node.client();
    let mut sub = node.client();
    sub.cmd(&["SUBSCRIBE", "ch"]);
    let mut plain = node.client();
    plain.cmd(&["PING"]);
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]),
        Resp::Int(1)
    );
    assert!(sub.is_closed());
    let list = admin.cmd(&["CLIENT", "LIST", "TYPE", "normal"]).text();
    assert_eq!(list.lines().count(), 2, "{list}");
    let laddr = node.addr();
    // By our own address: everyone but the caller (SKIPME defaults to yes).
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", "LADDR", &laddr]),
        Resp::Int(1)
    );
    assert!(plain.is_closed());
    assert_eq!(
        admin.cmd(&["CLIENT", "KILL", "LADDR", &laddr, "SKIPME", "no"]),
        Resp::Int(1)
    );
    assert!(admin.is_closed());
}
