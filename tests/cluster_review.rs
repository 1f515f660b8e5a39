//! Cluster mode: regressions found in review, against a real Redis Cluster.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{wait_until, Resp, Sluice};

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

fn bulk(s: &str) -> Resp {
    Resp::Bulk(s.as_bytes().to_vec())
}

fn queued() -> Resp {
    Resp::Simple("QUEUED".into())
}

fn is_error_with(r: &Resp, prefix: &str) -> bool {
    matches!(r, Resp::Error(e) if e.starts_with(prefix))
}

/// A proxy with one cluster pool in front of `cluster`, once it knows all `masters` shards.
fn proxy(cluster: &Cluster, masters: usize) -> Sluice {
    proxy_with(cluster, masters, "")
}

/// Same, with `extra` pool settings.
fn proxy_with(cluster: &Cluster, masters: usize, extra: &str) -> Sluice {
    let interval = if extra.contains("health_check_interval") {
        ""
    } else {
        "health_check_interval = \"200ms\"\n"
    };
    let proxy = Sluice::start(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[pools]]\nname = \"c\"\nlisten = \"127.0.0.1:0\"\n\
         mode = \"cluster\"\nseeds = [{}]\n{interval}{extra}\n",
        cluster.seeds()
    ));
    wait_until(
        Duration::from_secs(30),
        "the proxy to learn the cluster",
        || {
            let (_, body) = proxy.http_get("/topology");
            let t = serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default();
            t["pools"]["c"]["shards"]
                .as_array()
                .is_some_and(|s| s.len() == masters)
        },
    );
    proxy
}

/// Before the first keyed command a MULTI is held by the proxy; a command refused in that
/// window (cross-slot, or not allowed inside MULTI) must abort the transaction at EXEC, as
/// Redis does, and must never reach a node.
#[test]
fn a_command_refused_before_the_first_key_aborts_the_transaction() {
    let cluster = Cluster::start(3, 0);
    let proxy = proxy(&cluster, 3);
    let mut c = proxy.client();

    // Cross-slot MSET (a split command) refused, then a keyed command: EXECABORT.
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert!(is_error_with(
        &c.cmd(&["MSET", "{a}1", "x", "{b}2", "y"]),
        "CROSSSLOT"
    ));
    assert_eq!(c.cmd(&["SET", "{tx}k", "1"]), queued());
    assert!(is_error_with(&c.cmd(&["EXEC"]), "EXECABORT"));
    assert_eq!(c.cmd(&["GET", "{tx}k"]), Resp::Nil, "the aborted SET ran");

    // Cross-slot MGET and then EXEC with no keyed command at all.
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert!(is_error_with(
        &c.cmd(&["MGET", "{a}1", "{b}2"]),
        "CROSSSLOT"
    ));
    assert_eq!(c.cmd(&["PING"]), queued());
    assert!(is_error_with(&c.cmd(&["EXEC"]), "EXECABORT"));

    // A connection-changing command is refused inside MULTI (as on a pinned one), not queued
    // to run on a pooled node connection.
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert!(is_error_with(&c.cmd(&["CLIENT", "SETNAME", "x"]), "ERR"));
    assert!(is_error_with(&c.cmd(&["HELLO", "2"]), "ERR"));
    assert_eq!(c.cmd(&["SET", "{tx}k", "2"]), queued());
    assert!(is_error_with(&c.cmd(&["EXEC"]), "EXECABORT"));
    assert_eq!(c.cmd(&["GET", "{tx}k"]), Resp::Nil, "the aborted SET ran");

    // The session is usable afterwards, and a clean deferred transaction still commits.
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["PING"]), queued());
    assert_eq!(c.cmd(&["SET", "{tx}k", "3"]), queued());
    assert_eq!(
        c.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::Simple("PONG".into()), ok()])
    );
}

/// The keyless commands a MULTI holds before its first key are bounded: past the limit a
/// command is refused and the transaction aborts, instead of the proxy buffering without end.
#[test]
fn keyless_commands_held_before_the_first_key_are_bounded() {
    let cluster = Cluster::start(3, 0);
    let proxy = proxy(&cluster, 3);
    let mut c = proxy.client();
    let big = "x".repeat(1 << 20);
    assert_eq!(c.cmd(&["MULTI"]), ok());
    let mut refused = false;
    for _ in 0..8 {
        match c.cmd(&["PING", &big]) {
            r if r == queued() => {}
            r => {
                assert!(is_error_with(&r, "ERR sluice"), "{r:?}");
                refused = true;
                break;
            }
        }
    }
    assert!(refused, "8 MiB of PINGs were all held for the transaction");
    assert_eq!(c.cmd(&["SET", "{tx}k", "1"]), queued());
    assert!(is_error_with(&c.cmd(&["EXEC"]), "EXECABORT"));
    assert_eq!(c.cmd(&["GET", "{tx}k"]), Resp::Nil, "the aborted SET ran");
}

/// A key `node` serves.
fn key_on(node: &common::Redis, prefix: &str) -> (String, i64) {
    let port = i64::from(node.port);
    let Resp::Array(ranges) = node.client().cmd(&["CLUSTER", "SLOTS"]) else {
        panic!("CLUSTER SLOTS");
    };
    let owns = |slot: i64| {
        ranges.iter().any(|r| {
            matches!(r, Resp::Array(items) if matches!((&items[0], &items[1], &items[2]),
                (Resp::Int(a), Resp::Int(b), Resp::Array(m))
                    if *a <= slot && slot <= *b && m.get(1) == Some(&Resp::Int(port))))
        })
    };
    let mut c = node.client();
    (0..10_000)
        .map(|i| format!("{prefix}{i}"))
        .find_map(|k| match c.cmd(&["CLUSTER", "KEYSLOT", &k]) {
            Resp::Int(slot) if owns(slot) => Some((k, slot)),
            _ => None,
        })
        .expect("a key on the node")
}

/// A request sent on with ASKING to a node that stops answering is bounded by
/// `request_timeout` like any other, instead of holding the client forever.
#[test]
fn an_ask_to_a_node_that_stops_answering_times_out() {
    let cluster = Cluster::start(3, 0);
    let proxy = proxy_with(
        &cluster,
        3,
        "read_from = \"master\"\nrequest_timeout = \"300ms\"\nmaster_wait = \"1s\"\n",
    );
    let (src, dst) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (key, slot) = key_on(src, "ask:");
    let slot = slot.to_string();
    let (src_id, dst_id) = (Cluster::id(src), Cluster::id(dst));
    assert_eq!(
        dst.client()
            .cmd(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &src_id]),
        ok()
    );
    assert_eq!(
        src.client()
            .cmd(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &dst_id]),
        ok()
    );
    let mut c = proxy.client();
    // The key is on neither node: the source answers ASK, the target nil.
    assert_eq!(c.cmd(&["GET", &key]), Resp::Nil);
    // The target stops answering for 8 s (a paused node keeps its connections open).
    assert_eq!(dst.client().cmd(&["CLIENT", "PAUSE", "8000", "ALL"]), ok());
    c.set_timeout(Duration::from_secs(20));
    let started = Instant::now();
    let reply = c.cmd(&["GET", &key]);
    let waited = started.elapsed();
    assert!(
        matches!(reply, Resp::Error(_)),
        "{reply:?} after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "the reply took {waited:?}");
}

/// A held MULTI replayed on a node that stopped answering is bounded by `request_timeout`.
#[test]
fn a_held_multi_replayed_on_a_node_that_stops_answering_times_out() {
    let cluster = Cluster::start(3, 0);
    let proxy = proxy_with(&cluster, 3, "request_timeout = \"300ms\"\n");
    let node = &cluster.nodes[0];
    let (key, _) = key_on(node, "tx:");
    let mut c = proxy.client();
    // A transaction on that node leaves a pooled dedicated connection to it.
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["SET", &key, "1"]), queued());
    assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![ok()]));
    assert_eq!(node.client().cmd(&["CLIENT", "PAUSE", "8000", "ALL"]), ok());
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["PING"]), queued());
    c.set_timeout(Duration::from_secs(20));
    let started = Instant::now();
    let reply = c.cmd(&["SET", &key, "2"]);
    let waited = started.elapsed();
    assert!(
        matches!(reply, Resp::Error(_)),
        "{reply:?} after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "the reply took {waited:?}");
}

/// RANDOMKEY answers nil only when the whole cluster is empty, not when the one shard it
/// happened to ask has no keys.
#[test]
fn randomkey_finds_a_key_on_any_shard() {
    let cluster = Cluster::start(3, 0);
    let proxy = proxy_with(&cluster, 3, "read_from = \"master\"\n");
    let (key, _) = key_on(&cluster.nodes[0], "rk:");
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["RANDOMKEY"]), Resp::Nil);
    assert_eq!(c.cmd(&["SET", &key, "1"]), ok());
    for _ in 0..6 {
        assert_eq!(c.cmd(&["RANDOMKEY"]), Resp::Bulk(key.as_bytes().to_vec()));
    }
}

/// A blocking command sent on with ASKING: the ASKING itself is bounded by
/// `request_timeout` (only the blocking command may wait long).
#[test]
fn asking_before_a_blocking_command_times_out() {
    let cluster = Cluster::start(3, 0);
    let proxy = proxy_with(&cluster, 3, "request_timeout = \"300ms\"\n");
    let (src, dst) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (key, slot) = key_on(src, "bask:");
    let slot = slot.to_string();
    let (src_id, dst_id) = (Cluster::id(src), Cluster::id(dst));
    assert_eq!(
        dst.client()
            .cmd(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", &src_id]),
        ok()
    );
    assert_eq!(
        src.client()
            .cmd(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", &dst_id]),
        ok()
    );
    let mut c = proxy.client();
    // Followed to the target, where it times out (and leaves a pooled connection there).
    assert_eq!(c.cmd(&["BLPOP", &key, "0.1"]), Resp::Nil);
    assert_eq!(dst.client().cmd(&["CLIENT", "PAUSE", "8000", "ALL"]), ok());
    c.set_timeout(Duration::from_secs(20));
    let started = Instant::now();
    let reply = c.cmd(&["BLPOP", &key, "0.1"]);
    let waited = started.elapsed();
    assert!(
        matches!(reply, Resp::Error(_)),
        "{reply:?} after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "the reply took {waited:?}");
}

/// A held MULTI whose first keyed command cannot be pinned (its slot is not served) stays a
/// MULTI for the client: later commands are still queued, and EXEC aborts.
#[test]
fn a_held_multi_whose_node_cannot_be_pinned_stays_open_and_aborts() {
    let cluster = Cluster::start(3, 0);
    for n in &cluster.nodes {
        assert_eq!(
            n.client()
                .cmd(&["CONFIG", "SET", "cluster-require-full-coverage", "no"]),
            ok()
        );
    }
    let proxy = proxy(&cluster, 3);
    let (gone, slot) = key_on(&cluster.nodes[0], "gone:");
    let (kept, _) = key_on(&cluster.nodes[1], "kept:");
    for n in &cluster.nodes {
        let _ = n.client().cmd(&["CLUSTER", "DELSLOTS", &slot.to_string()]);
    }
    let mut c = proxy.client();
    wait_until(Duration::from_secs(10), "the slot to be unserved", || {
        is_error_with(&c.cmd(&["GET", &gone]), "CLUSTERDOWN")
    });
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["PING"]), queued());
    assert!(matches!(c.cmd(&["SET", &gone, "1"]), Resp::Error(_)));
    assert_eq!(
        c.cmd(&["SET", &kept, "1"]),
        queued(),
        "the MULTI was dropped"
    );
    assert!(is_error_with(&c.cmd(&["EXEC"]), "EXECABORT"));
    assert_eq!(c.cmd(&["GET", &kept]), Resp::Nil, "the aborted SET ran");
}

/// The transaction's connection fails inside MULTI: the client is still inside its MULTI, so
/// what it sends next is queued (never run at once) and EXEC aborts.
#[test]
fn a_multi_whose_connection_fails_stays_open_and_aborts() {
    let cluster = Cluster::start(3, 0);
    let proxy = proxy(&cluster, 3);
    let node = &cluster.nodes[0];
    let (key, _) = key_on(node, "lost:");
    let (a, b, c2) = (
        format!("{{{key}}}a"),
        format!("{{{key}}}b"),
        format!("{{{key}}}c"),
    );
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["SET", &a, "1"]), queued());
    // Every client connection of the node is closed, the proxy's pinned one among them.
    assert!(matches!(
        node.client().cmd(&["CLIENT", "KILL", "TYPE", "normal"]),
        Resp::Int(n) if n > 0
    ));
    assert!(matches!(c.cmd(&["SET", &b, "1"]), Resp::Error(_)));
    assert_eq!(c.cmd(&["SET", &c2, "1"]), queued(), "the MULTI was dropped");
    assert!(is_error_with(&c.cmd(&["EXEC"]), "EXECABORT"));
    for k in [&a, &b, &c2] {
        assert_eq!(c.cmd(&["GET", k]), Resp::Nil, "{k} was written");
    }
    // The session is usable again.
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["SET", &a, "2"]), queued());
    assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![ok()]));
}

/// Moves `slot` from `from` to `to` with its `keys`, the way `redis-cli --cluster reshard`
/// does (IMPORTING, MIGRATING, MIGRATE, then SETSLOT NODE on every master).
fn move_slot(
    masters: &[&common::Redis],
    slot: &str,
    from: &common::Redis,
    to: &common::Redis,
    keys: &[&str],
) {
    let (from_id, to_id) = (Cluster::id(from), Cluster::id(to));
    assert_eq!(
        to.client()
            .cmd(&["CLUSTER", "SETSLOT", slot, "IMPORTING", &from_id]),
        ok()
    );
    assert_eq!(
        from.client()
            .cmd(&["CLUSTER", "SETSLOT", slot, "MIGRATING", &to_id]),
        ok()
    );
    if !keys.is_empty() {
        let port = to.port.to_string();
        let mut migrate = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
        migrate.extend_from_slice(keys);
        assert_eq!(from.client().cmd(&migrate), ok());
    }
    for m in masters {
        assert_eq!(
            m.client()
                .cmd(&["CLUSTER", "SETSLOT", slot, "NODE", &to_id]),
            ok()
        );
    }
}

/// Writes to the proxy's `/metrics` counter of requests of `class` sent to the node at `addr`.
fn sent_to(proxy: &Sluice, addr: &str, class: &str) -> u64 {
    let (_, body) = proxy.http_get("/metrics");
    let node = format!("node=\"{addr}\"");
    let class = format!("class=\"{class}\"");
    body.lines()
        .filter(|l| {
            l.starts_with("sluice_requests_total{") && l.contains(&node) && l.contains(&class)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// A client pipelining two writes to one key while the slot changes owner between them: the
/// first, still in flight to the former owner, comes back MOVED and is re-sent; the second,
/// routed by the fixed map, must not overtake it (the key ends with the client's last value).
#[test]
fn pipelined_writes_keep_their_order_across_a_slot_owner_change() {
    let cluster = Cluster::start(3, 1);
    // No periodic refresh during the test: only the data path changes the proxy's map.
    let proxy = proxy_with(
        &cluster,
        3,
        "read_from = \"replica\"\nhealth_check_interval = \"1h\"\nmaster_wait = \"10s\"\n",
    );
    let masters = cluster.masters();
    let (old, new) = (masters[0], masters[1]);
    let (key, slot) = key_on(old, "order:");
    let slot = slot.to_string();
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["SET", &key, "0"]), ok());
    let replica = cluster
        .replicas()
        .into_iter()
        .find(|r| {
            r.info("replication")
                .contains(&format!("master_port:{}\r", old.port))
        })
        .expect("the old owner's replica");

    // Move the slot (and the key) to `new`, behind the proxy's back.
    move_slot(&masters, &slot, old, new, &[&key]);
    let mut r = replica.client();
    assert_eq!(r.cmd(&["READONLY"]), ok());
    wait_until(
        Duration::from_secs(20),
        "the old owner's replica to redirect the slot",
        || is_error_with(&r.cmd(&["GET", &key]), "MOVED"),
    );

    // The old owner stops answering (a busy script: CLIENT PAUSE would still answer MOVED
    // at once): the client's first write waits there.
    let busy_addr = old.addr();
    let busy = std::thread::spawn(move || {
        let mut b = common::Client::connect(&busy_addr);
        b.set_timeout(Duration::from_secs(20));
        b.cmd(&[
            "EVAL",
            "local s = redis.call('TIME') repeat local n = redis.call('TIME') \
             until (n[1] - s[1]) * 1000000 + (n[2] - s[2]) > 2500000 return 1",
            "0",
        ])
    });
    wait_until(Duration::from_secs(5), "the old owner to be busy", || {
        let mut p = old.client();
        p.set_timeout(Duration::from_millis(200));
        p.send(&["PING"]);
        p.try_read().is_err()
    });
    let before = sent_to(&proxy, &old.addr(), "write");
    c.set_timeout(Duration::from_secs(20));
    c.send(&["SET", &key, "1"]);
    wait_until(
        Duration::from_secs(2),
        "the first write to reach the old owner",
        || sent_to(&proxy, &old.addr(), "write") > before,
    );
    // Another client's read on that slot goes to the replica, comes back MOVED, and fixes
    // the slot in the proxy's map.
    let mut other = proxy.client();
    assert_eq!(other.cmd(&["GET", &key]), bulk("0"));
    // The same client's second write to the key, pipelined behind the first.
    c.send(&["SET", &key, "2"]);
    assert_eq!(c.read(), ok());
    assert_eq!(c.read(), ok());
    assert_eq!(new.client().cmd(&["GET", &key]), bulk("2"));
    assert_eq!(busy.join().expect("busy script"), Resp::Int(1));
    // Reads go to replicas: poll until the replica has the write.
    wait_until(
        Duration::from_secs(10),
        "the read to see the last write",
        || c.cmd(&["GET", &key]) == bulk("2"),
    );
}

/// A transaction whose slot moved: pinned by a stale map (the first keyed command or the
/// WATCH comes back MOVED), or moved while commands were being queued. Nothing has run, so
/// the proxy replays it on the new owner and the client never sees MOVED. A slot still
/// migrating (ASK) gets a retryable TRYAGAIN and EXEC aborts.
#[test]
fn transactions_follow_a_slot_that_moved() {
    let cluster = Cluster::start(3, 0);
    let proxy = proxy_with(
        &cluster,
        3,
        "read_from = \"master\"\nhealth_check_interval = \"1h\"\n",
    );
    let masters = cluster.masters();
    let (a, b) = (masters[0], masters[1]);
    let mut c = proxy.client();
    // Each case gets a slot of its own on `a`, written once through the proxy so that the
    // proxy's map has it on `a` before it moves. Keys `{tag}...` share the tag's slot.
    let mut case = |prefix: &str| {
        let (key, slot) = key_on(a, prefix);
        assert_eq!(c.cmd(&["SET", &key, "0"]), ok());
        (key, slot.to_string())
    };
    let cases = [case("txa:"), case("txb:"), case("txc:"), case("txd:")];
    let k = |i: usize, name: &str| format!("{{{}}}{name}", cases[i].0);

    // 1. The map is stale when the transaction starts.
    move_slot(&masters, &cases[0].1, a, b, &[&cases[0].0]);
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["SET", &k(0, "x"), "1"]), queued());
    assert_eq!(c.cmd(&["INCR", &k(0, "n")]), queued());
    assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![ok(), Resp::Int(1)]));
    assert_eq!(b.client().cmd(&["GET", &k(0, "x")]), bulk("1"));

    // 2. The WATCH that pins the transaction comes back MOVED.
    move_slot(&masters, &cases[1].1, a, b, &[&cases[1].0]);
    assert_eq!(c.cmd(&["WATCH", &k(1, "w")]), ok());
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["SET", &k(1, "w"), "2"]), queued());
    assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![ok()]));
    assert_eq!(b.client().cmd(&["GET", &k(1, "w")]), bulk("2"));

    // 3. The slot moves between two queued commands.
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["SET", &k(2, "m"), "3"]), queued());
    move_slot(&masters, &cases[2].1, a, b, &[&cases[2].0]);
    assert_eq!(c.cmd(&["INCR", &k(2, "n")]), queued());
    assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![ok(), Resp::Int(1)]));
    assert_eq!(b.client().cmd(&["GET", &k(2, "m")]), bulk("3"));

    // 4. A slot half-way through a migration: a retryable error, and nothing runs.
    let (a_id, b_id) = (Cluster::id(a), Cluster::id(b));
    let slot = &cases[3].1;
    assert_eq!(
        b.client()
            .cmd(&["CLUSTER", "SETSLOT", slot, "IMPORTING", &a_id]),
        ok()
    );
    assert_eq!(
        a.client()
            .cmd(&["CLUSTER", "SETSLOT", slot, "MIGRATING", &b_id]),
        ok()
    );
    assert_eq!(c.cmd(&["MULTI"]), ok());
    let r = c.cmd(&["SET", &k(3, "new"), "4"]);
    assert!(is_error_with(&r, "TRYAGAIN"), "{r:?}");
    assert!(is_error_with(&c.cmd(&["EXEC"]), "EXECABORT"));
    // (The proxy follows the migration's ASK for this read.)
    assert_eq!(c.cmd(&["GET", &k(3, "new")]), Resp::Nil);
    // The client is usable afterwards, and so are the node connections it held.
    assert_eq!(c.cmd(&["GET", &cases[3].0]), bulk("0"));
}

/// EXEC itself comes back MOVED (the slot moved after the commands were queued) and the
/// replay on the new owner fails: EXEC is answered with an error and the transaction is
/// over, as after any EXEC. The client must not be left inside a MULTI it no longer has
/// (its next commands answered `+QUEUED` instead of run).
#[test]
fn an_exec_that_cannot_follow_its_slot_ends_the_transaction() {
    let cluster = Cluster::start(3, 0);
    let proxy = proxy_with(
        &cluster,
        3,
        "read_from = \"master\"\nhealth_check_interval = \"1h\"\nrequest_timeout = \"500ms\"\n\
         connect_timeout = \"500ms\"\n",
    );
    let masters = cluster.masters();
    let (a, b, third) = (masters[0], masters[1], masters[2]);
    let (key, slot) = key_on(a, "execmoved:");
    let (elsewhere, _) = key_on(third, "elsewhere:");
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["SET", &key, "0"]), ok());
    assert_eq!(c.cmd(&["SET", &elsewhere, "here"]), ok());
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["INCR", &key]), queued());
    move_slot(&masters, &slot.to_string(), a, b, &[&key]);

    // The new owner stops answering for a while (a busy script), so the replay fails.
    let busy_addr = b.addr();
    let busy = std::thread::spawn(move || {
        let mut s = common::Client::connect(&busy_addr);
        s.set_timeout(Duration::from_secs(20));
        s.cmd(&[
            "EVAL",
            "local s = redis.call('TIME') repeat local n = redis.call('TIME') \
             until (n[1] - s[1]) * 1000000 + (n[2] - s[2]) > 2500000 return 1",
            "0",
        ])
    });
    wait_until(Duration::from_secs(5), "the new owner to be busy", || {
        let mut p = b.client();
        p.set_timeout(Duration::from_millis(200));
        p.send(&["PING"]);
        p.try_read().is_err()
    });
    let exec = c.cmd(&["EXEC"]);
    assert!(matches!(exec, Resp::Error(_)), "EXEC: {exec:?}");
    // Out of the transaction: a command runs at once (on a node that is not busy).
    assert_eq!(c.cmd(&["GET", &elsewhere]), bulk("here"));
    assert!(is_error_with(&c.cmd(&["EXEC"]), "ERR EXEC without MULTI"));
    assert_eq!(busy.join().expect("busy script"), Resp::Int(1));
    // Nothing of the transaction ran.
    assert_eq!(b.client().cmd(&["GET", &key]), bulk("0"));
}
