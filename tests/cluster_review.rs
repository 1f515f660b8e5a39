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
    cluster.proxy(masters, "")
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
    let mut c = node.client();
    (0..10_000)
        .map(|i| format!("{prefix}{i}"))
        .find_map(|k| match c.cmd(&["CLUSTER", "KEYSLOT", &k]) {
            Resp::Int(slot) if Cluster::serves(node, slot) => Some((k, slot)),
            _ => None,
        })
        .expect("a key on the node")
}

/// A request sent on with ASKING to a node that stops answering is bounded by
/// `request_timeout` like any other, instead of holding the client forever.
#[test]
fn an_ask_to_a_node_that_stops_answering_times_out() {
    let cluster = Cluster::start(3, 0);
    let proxy = cluster.proxy(
        3,
        "read_from = \"master\"\nrequest_timeout = \"300ms\"\nmaster_wait = \"1s\"\n",
    );
    let (src, dst) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (key, slot) = key_on(src, "ask:");
    let slot = slot.to_string();
    Cluster::start_migration(&slot, src, dst);
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
    let proxy = cluster.proxy(3, "request_timeout = \"300ms\"\n");
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
    let proxy = cluster.proxy(3, "read_from = \"master\"\n");
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
    let proxy = cluster.proxy(3, "request_timeout = \"300ms\"\n");
    let (src, dst) = (&cluster.nodes[0], &cluster.nodes[1]);
    let (key, slot) = key_on(src, "bask:");
    let slot = slot.to_string();
    Cluster::start_migration(&slot, src, dst);
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
    let proxy = cluster.proxy(
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
    cluster.move_slot(&slot, old, new, &[&key]);
    let mut r = replica.client();
    assert_eq!(r.cmd(&["READONLY"]), ok());
    wait_until(
        Duration::from_secs(20),
        "the old owner's replica to redirect the slot",
        || is_error_with(&r.cmd(&["GET", &key]), "MOVED"),
    );

    // The old owner stops answering (a busy script: CLIENT PAUSE would still answer MOVED
    // at once): the client's first write waits there.
    let busy = keep_busy(old, 2500);
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
    let proxy = cluster.proxy(
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
    cluster.move_slot(&cases[0].1, a, b, &[&cases[0].0]);
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["SET", &k(0, "x"), "1"]), queued());
    assert_eq!(c.cmd(&["INCR", &k(0, "n")]), queued());
    assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![ok(), Resp::Int(1)]));
    assert_eq!(b.client().cmd(&["GET", &k(0, "x")]), bulk("1"));

    // 2. The WATCH that pins the transaction comes back MOVED.
    cluster.move_slot(&cases[1].1, a, b, &[&cases[1].0]);
    assert_eq!(c.cmd(&["WATCH", &k(1, "w")]), ok());
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["SET", &k(1, "w"), "2"]), queued());
    assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![ok()]));
    assert_eq!(b.client().cmd(&["GET", &k(1, "w")]), bulk("2"));

    // 3. The slot moves between two queued commands.
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["SET", &k(2, "m"), "3"]), queued());
    cluster.move_slot(&cases[2].1, a, b, &[&cases[2].0]);
    assert_eq!(c.cmd(&["INCR", &k(2, "n")]), queued());
    assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![ok(), Resp::Int(1)]));
    assert_eq!(b.client().cmd(&["GET", &k(2, "m")]), bulk("3"));

    // 4. A slot half-way through a migration: a retryable error, and nothing runs.
    Cluster::start_migration(&cases[3].1, a, b);
    assert_eq!(c.cmd(&["MULTI"]), ok());
    let r = c.cmd(&["SET", &k(3, "new"), "4"]);
    assert!(is_error_with(&r, "TRYAGAIN"), "{r:?}");
    assert!(is_error_with(&c.cmd(&["EXEC"]), "EXECABORT"));
    // (The proxy follows the migration's ASK for this read.)
    assert_eq!(c.cmd(&["GET", &k(3, "new")]), Resp::Nil);
    // The client is usable afterwards, and so are the node connections it held.
    assert_eq!(c.cmd(&["GET", &cases[3].0]), bulk("0"));
}

/// SCAN through the proxy while slots move from a master the walk has not reached yet to one
/// it has already scanned: every key present throughout is still returned (repeats allowed,
/// as with Redis's own SCAN).
#[test]
fn scan_returns_every_key_while_slots_move() {
    let cluster = Cluster::start(3, 0);
    let proxy = cluster.proxy(3, "read_from = \"master\"\n");
    let mut c = proxy.client();
    let keys: Vec<String> = (0..2000).map(|i| format!("walk:{i}")).collect();
    for chunk in keys.chunks(100) {
        let mut mset = vec!["MSET"];
        for k in chunk {
            mset.extend([k.as_str(), "v"]);
        }
        assert_eq!(c.cmd(&mset), ok());
    }
    // The proxy walks masters in slot order: the first owns slot 0, the last slot 16383.
    let masters = cluster.masters();
    let owner_of = |slot: i64| {
        *masters
            .iter()
            .find(|m| Cluster::serves(m, slot))
            .expect("an owner")
    };
    let (first, last) = (owner_of(0), owner_of(16383));
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = "0".to_string();
    let mut moved = 0;
    loop {
        let Resp::Array(reply) = c.cmd(&["SCAN", &cursor, "COUNT", "20"]) else {
            panic!("SCAN");
        };
        cursor = reply[0].text();
        if let Resp::Array(batch) = &reply[1] {
            seen.extend(batch.iter().map(Resp::text));
        }
        let shard = cursor.parse::<u64>().expect("cursor") & 1023;
        if moved == 0 && shard >= 1 {
            // The first master is done: move 40 slots that hold keys from the last master,
            // which the walk has not reached, to the first.
            let mut slots = std::collections::BTreeSet::new();
            for k in &keys {
                let Resp::Int(slot) = last.client().cmd(&["CLUSTER", "KEYSLOT", k]) else {
                    panic!("KEYSLOT");
                };
                if Cluster::serves(last, slot) && slots.len() < 40 {
                    slots.insert(slot);
                }
            }
            for slot in &slots {
                let slot = slot.to_string();
                let Resp::Array(in_slot) =
                    last.client()
                        .cmd(&["CLUSTER", "GETKEYSINSLOT", &slot, "1000"])
                else {
                    panic!("GETKEYSINSLOT");
                };
                let in_slot: Vec<String> = in_slot.iter().map(Resp::text).collect();
                let refs: Vec<&str> = in_slot.iter().map(String::as_str).collect();
                moved += refs.len();
                cluster.move_slot(&slot, last, first, &refs);
            }
            assert!(moved > 0, "no keys moved");
        }
        if cursor == "0" {
            break;
        }
    }
    assert!(moved > 0, "the walk ended before any slot moved");
    let missing: Vec<&String> = keys.iter().filter(|k| !seen.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} keys missed, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

/// A BLPOP whose slot moves away while it waits is unblocked by Redis with MOVED; the proxy
/// re-sends it to the new owner with only what is left of its timeout, so the client gets
/// its timeout's nil on time rather than after waiting the whole timeout again.
#[test]
fn a_blocked_command_whose_slot_moves_keeps_its_deadline() {
    let cluster = Cluster::start(3, 0);
    let proxy = cluster.proxy(3, "read_from = \"master\"\n");
    let masters = cluster.masters();
    let (a, b) = (masters[0], masters[1]);
    let (key, slot) = key_on(a, "blk:");
    let mut c = proxy.client();
    c.set_timeout(Duration::from_secs(30));
    let started = Instant::now();
    c.send(&["BLPOP", &key, "4"]);
    wait_until(
        Duration::from_secs(5),
        "BLPOP to block on its master",
        || a.info("clients").contains("blocked_clients:1"),
    );
    // The scenario, not a synchronisation: part of the timeout passes before the move.
    std::thread::sleep(Duration::from_millis(1500));
    cluster.move_slot(&slot.to_string(), a, b, &[]);
    // Redis unblocks it with MOVED (its cron checks blocked clients), then it blocks there.
    wait_until(
        Duration::from_secs(5),
        "BLPOP to move to the new owner",
        || b.info("clients").contains("blocked_clients:1"),
    );
    let moved_after = started.elapsed();
    assert_eq!(c.read(), Resp::Nil);
    let waited = started.elapsed();
    // The whole timeout again after the move would end at moved_after + 4 s.
    assert!(
        waited < moved_after + Duration::from_secs(4) - Duration::from_millis(700),
        "BLPOP 4 answered after {waited:?} (moved after {moved_after:?})"
    );
}

/// EXEC itself comes back MOVED (the slot moved after the commands were queued) and the
/// replay on the new owner fails: EXEC is answered with an error and the transaction is
/// over, as after any EXEC. The client must not be left inside a MULTI it no longer has
/// (its next commands answered `+QUEUED` instead of run).
#[test]
fn an_exec_that_cannot_follow_its_slot_ends_the_transaction() {
    let cluster = Cluster::start(3, 0);
    let proxy = cluster.proxy(
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
    cluster.move_slot(&slot.to_string(), a, b, &[&key]);

    // The new owner stops answering for a while (a busy script), so the replay fails.
    let busy = keep_busy(b, 2500);
    let exec = c.cmd(&["EXEC"]);
    assert!(matches!(exec, Resp::Error(_)), "EXEC: {exec:?}");
    // Out of the transaction: a command runs at once (on a node that is not busy).
    assert_eq!(c.cmd(&["GET", &elsewhere]), bulk("here"));
    assert!(is_error_with(&c.cmd(&["EXEC"]), "ERR EXEC without MULTI"));
    assert_eq!(busy.join().expect("busy script"), Resp::Int(1));
    // Nothing of the transaction ran.
    assert_eq!(b.client().cmd(&["GET", &key]), bulk("0"));
}

/// Keeps `node` busy for `ms` milliseconds with a script (it answers nobody meanwhile;
/// CLIENT PAUSE would still answer MOVED at once), returning once it is busy. The handle
/// yields the script's reply.
fn keep_busy(node: &common::Redis, ms: u64) -> std::thread::JoinHandle<Resp> {
    let addr = node.addr();
    let script = format!(
        "local s = redis.call('TIME') repeat local n = redis.call('TIME') \
         until (n[1] - s[1]) * 1000000 + (n[2] - s[2]) > {} return 1",
        ms * 1000
    );
    let busy = std::thread::spawn(move || {
        let mut s = common::Client::connect(&addr);
        s.set_timeout(Duration::from_secs(30));
        s.cmd(&["EVAL", &script, "0"])
    });
    wait_until(Duration::from_secs(5), "the node to be busy", || {
        let mut p = node.client();
        p.set_timeout(Duration::from_millis(200));
        p.send(&["PING"]);
        p.try_read().is_err()
    });
    busy
}
