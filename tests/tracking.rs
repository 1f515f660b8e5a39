//! CLIENT TRACKING through the proxy (issue 13): the proxy keeps the tracking table itself
//! and routes each node's invalidations to the clients that read the key, whichever node
//! served the read.

mod common;

use std::time::Duration;

use common::{standalone_config, wait_until, Client, Redis, Resp, Sluice};

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

fn bulk(s: &str) -> Resp {
    Resp::Bulk(s.as_bytes().to_vec())
}

/// A RESP3 client with tracking on (`opts` after `CLIENT TRACKING on`).
fn tracking_client(proxy: &Sluice, opts: &[&str]) -> Client {
    let mut c = proxy.client();
    assert!(matches!(c.cmd(&["HELLO", "3"]), Resp::Map(_)));
    let mut args = vec!["CLIENT", "TRACKING", "on"];
    args.extend_from_slice(opts);
    assert_eq!(c.cmd(&args), ok());
    c
}

/// The keys of the next frame, which must be an `invalidate` push (`None`: a flush).
fn invalidated(c: &mut Client) -> Option<Vec<String>> {
    match c.read() {
        Resp::Push(items) if items.len() == 2 && items[0] == bulk("invalidate") => {
            match &items[1] {
                Resp::Array(keys) => Some(keys.iter().map(Resp::text).collect()),
                Resp::Nil => None,
                other => panic!("invalidate of {other:?}"),
            }
        }
        other => panic!("expected an invalidate push, got {other:?}"),
    }
}

/// The keys of the next `__redis__:invalidate` message of a subscribed RESP2 client.
fn invalidated_message(c: &mut Client) -> Vec<String> {
    match c.read() {
        Resp::Array(items) if items.len() == 3 && items[1] == bulk("__redis__:invalidate") => {
            match &items[2] {
                Resp::Array(keys) => keys.iter().map(Resp::text).collect(),
                other => panic!("message of {other:?}"),
            }
        }
        other => panic!("expected an invalidation message, got {other:?}"),
    }
}

/// Nothing else is waiting: the next frame is the reply to a PING.
fn nothing_more(c: &mut Client) {
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
}

fn proxy_on(master: &Redis, replicas: &[&Redis], read_from: &str, extra: &str) -> Sluice {
    Sluice::start(&standalone_config(master, replicas, read_from, extra))
}

#[test]
fn a_write_invalidates_what_another_client_read_once() {
    let master = Redis::start();
    let p = proxy_on(&master, &[], "master", "");
    let mut a = tracking_client(&p, &[]);
    let mut b = p.client();
    assert_eq!(b.cmd(&["SET", "k", "1"]), ok());
    assert_eq!(b.cmd(&["SET", "unread", "1"]), ok());
    assert_eq!(a.cmd(&["GET", "k"]), bulk("1"));
    assert_eq!(b.cmd(&["SET", "unread", "2"]), ok());
    assert_eq!(b.cmd(&["SET", "k", "2"]), ok());
    assert_eq!(invalidated(&mut a), Some(vec!["k".to_string()]));
    // Told once: the key left the table until A reads it again.
    assert_eq!(b.cmd(&["SET", "k", "3"]), ok());
    nothing_more(&mut a);
    // A's own write of a key it read invalidates it too (no NOLOOP), after the reply.
    assert_eq!(a.cmd(&["GET", "k"]), bulk("3"));
    assert_eq!(a.cmd(&["DEL", "k"]), Resp::Int(1));
    assert_eq!(invalidated(&mut a), Some(vec!["k".to_string()]));
    nothing_more(&mut a);
}

/// Redis's own Tcl suite (unit/tracking): the keys of one write reach a default-mode
/// reader in the command's order, as Redis tells them (the node's BCAST report that the
/// proxy hears them from lists them sorted). Checked on a direct connection too.
#[test]
fn keys_of_one_write_are_invalidated_in_the_commands_order() {
    let run = |reader: &mut Client, writer: &mut Client| {
        assert_eq!(writer.cmd(&["MSET", "key1{t}", "1", "key2{t}", "1"]), ok());
        assert!(matches!(
            reader.cmd(&["MGET", "key1{t}", "key2{t}"]),
            Resp::Array(_)
        ));
        assert_eq!(writer.cmd(&["MSET", "key2{t}", "2", "key1{t}", "2"]), ok());
        let got = vec![invalidated(reader), invalidated(reader)];
        nothing_more(reader);
        got
    };
    let direct = Redis::start();
    let mut reader = direct.client();
    assert!(matches!(reader.cmd(&["HELLO", "3"]), Resp::Map(_)));
    assert_eq!(reader.cmd(&["CLIENT", "TRACKING", "on"]), ok());
    let want = run(&mut reader, &mut direct.client());
    let key = |k: &str| Some(vec![k.to_string()]);
    assert_eq!(want, vec![key("key2{t}"), key("key1{t}")]);
    let master = Redis::start();
    let p = proxy_on(&master, &[], "master", "");
    let mut reader = tracking_client(&p, &[]);
    assert_eq!(run(&mut reader, &mut p.client()), want);
}

#[test]
fn a_read_served_by_a_lagging_replica_is_invalidated_when_the_replica_catches_up() {
    let master = Redis::start();
    let relay = common::Relay::start(&master.addr());
    let replica = Redis::start_with(&["--replicaof", "127.0.0.1", &relay.port.to_string()]);
    replica.wait_streaming(&master);
    let p = proxy_on(&master, &[&replica], "replica", "");
    wait_until(
        Duration::from_secs(10),
        "the replica in the read pool",
        || {
            let (_, body) = p.http_get("/topology");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            v["pools"]["main"]["read_pool"].as_array().map(Vec::len) == Some(1)
        },
    );
    let mut a = tracking_client(&p, &[]);
    let mut b = p.client();
    assert_eq!(b.cmd(&["SET", "lag", "old"]), ok());
    wait_until(
        Duration::from_secs(10),
        "the replica to have the key",
        || replica.client().cmd(&["GET", "lag"]) == bulk("old"),
    );
    // The replica stops receiving writes: the master reports the next change of `lag`
    // before A has read it, so only the replica's own report can reach A.
    relay.pause_settled();
    assert_eq!(b.cmd(&["SET", "lag", "new"]), ok());
    assert_eq!(
        a.cmd(&["GET", "lag"]),
        bulk("old"),
        "served by the stale replica"
    );
    relay.pause(false);
    assert_eq!(invalidated(&mut a), Some(vec!["lag".to_string()]));
    wait_until(Duration::from_secs(10), "the replica to catch up", || {
        replica.client().cmd(&["GET", "lag"]) == bulk("new")
    });
    assert_eq!(a.cmd(&["GET", "lag"]), bulk("new"));
}

#[test]
fn resp2_clients_redirect_to_a_subscribed_client() {
    let master = Redis::start();
    let p = proxy_on(&master, &[], "master", "");
    let mut target = p.client();
    let Resp::Int(target_id) = target.cmd(&["CLIENT", "ID"]) else {
        panic!("CLIENT ID");
    };
    assert!(matches!(
        target.cmd(&["SUBSCRIBE", "__redis__:invalidate"]),
        Resp::Array(_)
    ));
    let id = target_id.to_string();
    let mut a = p.client();
    assert_eq!(a.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", &id]), ok());
    assert_eq!(a.cmd(&["CLIENT", "GETREDIR"]), Resp::Int(target_id));
    let mut b = p.client();
    assert_eq!(b.cmd(&["MSET", "r1", "1", "r2", "2"]), ok());
    assert_eq!(
        a.cmd(&["MGET", "r1", "r2"]),
        Resp::Array(vec![bulk("1"), bulk("2")])
    );
    assert_eq!(b.cmd(&["INCR", "r2"]), Resp::Int(3));
    assert_eq!(invalidated_message(&mut target), vec!["r2".to_string()]);
    // A redirect to a client that does not exist is refused, as on Redis.
    assert_eq!(
        a.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", "999999"]),
        Resp::Error("ERR The client ID you want redirect to does not exist".into())
    );
    // The target leaves: a RESP3 client redirecting to it is told, and its TRACKINGINFO
    // says so.
    let mut c = tracking_client(&p, &["REDIRECT", &id]);
    assert_eq!(c.cmd(&["GET", "r1"]), bulk("1"));
    drop(target);
    wait_until(Duration::from_secs(5), "the target to leave", || {
        !p.client()
            .cmd(&["CLIENT", "LIST"])
            .text()
            .contains(&format!("id={id} "))
    });
    assert_eq!(b.cmd(&["SET", "r1", "9"]), ok());
    assert_eq!(
        c.read(),
        Resp::Push(vec![bulk("tracking-redir-broken"), Resp::Int(target_id)])
    );
    let Resp::Map(info) = c.cmd(&["CLIENT", "TRACKINGINFO"]) else {
        panic!("TRACKINGINFO is a map");
    };
    assert_eq!(
        info[0].1,
        Resp::Set(vec![bulk("on"), bulk("broken_redirect")])
    );
}

#[test]
fn bcast_prefixes_and_noloop() {
    let master = Redis::start();
    let p = proxy_on(&master, &[], "master", "");
    let mut a = tracking_client(&p, &["BCAST", "PREFIX", "a:", "PREFIX", "b:", "NOLOOP"]);
    let mut b = p.client();
    // A's own write is not reported back to it (NOLOOP), others' are, one message per prefix.
    assert_eq!(a.cmd(&["SET", "a:mine", "1"]), ok());
    assert_eq!(b.cmd(&["MULTI"]), ok());
    for k in ["a:1", "b:1", "c:1", "a:2"] {
        assert_eq!(b.cmd(&["SET", k, "1"]), Resp::Simple("QUEUED".into()));
    }
    assert!(matches!(b.cmd(&["EXEC"]), Resp::Array(_)));
    let mut first = invalidated(&mut a).expect("keys");
    let mut second = invalidated(&mut a).expect("keys");
    first.sort();
    second.sort();
    let mut both = [first, second];
    both.sort();
    assert_eq!(
        both,
        [
            vec!["a:1".to_string(), "a:2".to_string()],
            vec!["b:1".to_string()]
        ]
    );
    nothing_more(&mut a);
    // Overlapping prefixes are refused as Redis refuses them.
    let Resp::Error(e) = a.cmd(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a"]) else {
        panic!("overlap accepted");
    };
    assert!(
        e.starts_with("ERR Prefix 'a' overlaps with an existing prefix 'a:'"),
        "{e}"
    );
}

#[test]
fn optin_and_optout_follow_client_caching() {
    let master = Redis::start();
    let p = proxy_on(&master, &[], "master", "");
    let mut a = tracking_client(&p, &["OPTIN"]);
    let mut b = p.client();
    assert_eq!(b.cmd(&["MSET", "in1", "1", "in2", "1"]), ok());
    assert_eq!(a.cmd(&["GET", "in1"]), bulk("1"));
    assert_eq!(a.cmd(&["CLIENT", "CACHING", "yes"]), ok());
    assert_eq!(a.cmd(&["GET", "in2"]), bulk("1"));
    assert_eq!(b.cmd(&["MSET", "in1", "2", "in2", "2"]), ok());
    assert_eq!(invalidated(&mut a), Some(vec!["in2".to_string()]));
    nothing_more(&mut a);
    assert_eq!(
        a.cmd(&["CLIENT", "CACHING", "no"]),
        Resp::Error(
            "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.".into()
        )
    );
    assert_eq!(a.cmd(&["CLIENT", "TRACKING", "off"]), ok());
    assert_eq!(a.cmd(&["CLIENT", "GETREDIR"]), Resp::Int(-1));
    assert_eq!(a.cmd(&["CLIENT", "TRACKING", "on", "OPTOUT"]), ok());
    assert_eq!(a.cmd(&["CLIENT", "CACHING", "no"]), ok());
    assert_eq!(a.cmd(&["GET", "in1"]), bulk("2"));
    assert_eq!(a.cmd(&["GET", "in2"]), bulk("2"));
    assert_eq!(b.cmd(&["MSET", "in1", "3", "in2", "3"]), ok());
    assert_eq!(invalidated(&mut a), Some(vec!["in2".to_string()]));
    nothing_more(&mut a);
}

#[test]
fn flushes_and_the_key_cap_invalidate() {
    let master = Redis::start();
    let p = proxy_on(&master, &[], "master", "allow_commands = [\"CONFIG\"]");
    let mut a = tracking_client(&p, &[]);
    let mut b = p.client();
    let keys: Vec<String> = (0..5).map(|i| format!("cap{i}")).collect();
    for k in &keys {
        assert_eq!(a.cmd(&["GET", k]), Resp::Nil);
    }
    let info = a.cmd(&["INFO"]).text();
    assert!(info.contains("tracking_total_keys:5\r\n"), "{info}");
    assert!(info.contains("tracking_clients:1\r\n"), "{info}");
    // Down to 2 keys: the 3 evicted are reported as if they had changed.
    assert_eq!(
        a.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "2"]),
        ok()
    );
    let mut evicted = Vec::new();
    for _ in 0..3 {
        evicted.extend(invalidated(&mut a).expect("keys"));
    }
    evicted.sort();
    evicted.dedup();
    assert_eq!(evicted.len(), 3);
    assert!(evicted.iter().all(|k| keys.contains(k)));
    assert_eq!(b.cmd(&["FLUSHALL"]), ok());
    assert_eq!(invalidated(&mut a), None);
    nothing_more(&mut a);
    assert_eq!(
        b.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "0"]),
        ok()
    );
}

#[test]
fn tracking_info_and_errors_match_redis() {
    let master = Redis::start();
    let p = proxy_on(&master, &[], "master", "");
    let mut direct = master.client();
    let mut proxied = p.client();
    let script: &[&[&str]] = &[
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"],
        &["CLIENT", "TRACKING", "on", "BCAST", "OPTIN"],
        &["CLIENT", "TRACKING", "on", "PREFIX", "x"],
        &["CLIENT", "TRACKING", "maybe"],
        &["CLIENT", "CACHING", "yes"],
        &[
            "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "foo", "PREFIX", "bar",
        ],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "TRACKING", "on"],
        &["CLIENT", "TRACKING", "off"],
        &["CLIENT", "TRACKING", "on", "OPTIN", "NOLOOP"],
        &["CLIENT", "CACHING", "yes"],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "GETREDIR"],
    ];
    for args in script {
        assert_eq!(proxied.cmd(args), direct.cmd(args), "{args:?}");
    }
}

/// A key whose slot `node` serves.
fn key_on(node: &Redis, prefix: &str) -> String {
    (0..10_000)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| {
            let Resp::Int(slot) = node.client().cmd(&["CLUSTER", "KEYSLOT", k]) else {
                return false;
            };
            common::cluster::Cluster::serves(node, slot)
        })
        .expect("a key on the node")
}

#[test]
fn cluster_pools_track_keys_on_every_shard() {
    let cluster = common::cluster::Cluster::start(3, 0);
    let p = cluster.proxy(3, "");
    let masters = cluster.masters();
    let (k0, k1) = (key_on(masters[0], "t0:"), key_on(masters[1], "t1:"));
    let mut a = tracking_client(&p, &[]);
    let mut watcher = tracking_client(&p, &["BCAST", "PREFIX", "t1:"]);
    let mut b = p.client();
    assert_eq!(b.cmd(&["SET", &k0, "1"]), ok());
    assert_eq!(b.cmd(&["SET", &k1, "1"]), ok());
    assert_eq!(invalidated(&mut watcher), Some(vec![k1.clone()]));
    assert_eq!(a.cmd(&["GET", &k0]), bulk("1"));
    assert_eq!(a.cmd(&["GET", &k1]), bulk("1"));
    assert_eq!(b.cmd(&["INCR", &k1]), Resp::Int(2));
    assert_eq!(invalidated(&mut a), Some(vec![k1.clone()]));
    assert_eq!(invalidated(&mut watcher), Some(vec![k1.clone()]));
    assert_eq!(b.cmd(&["INCR", &k0]), Resp::Int(2));
    assert_eq!(invalidated(&mut a), Some(vec![k0.clone()]));
    nothing_more(&mut a);
    nothing_more(&mut watcher);
}

#[test]
fn an_idle_resp3_client_receives_the_invalidations_redirected_to_it() {
    let master = Redis::start();
    let p = proxy_on(&master, &[], "master", "");
    let mut target = p.client();
    assert!(matches!(target.cmd(&["HELLO", "3"]), Resp::Map(_)));
    let Resp::Int(id) = target.cmd(&["CLIENT", "ID"]) else {
        panic!("CLIENT ID");
    };
    let mut a = p.client();
    let id = id.to_string();
    assert_eq!(a.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", &id]), ok());
    assert_eq!(a.cmd(&["GET", "idle"]), Resp::Nil);
    assert_eq!(p.client().cmd(&["SET", "idle", "1"]), ok());
    // The target sends nothing: the push comes on its own.
    assert_eq!(invalidated(&mut target), Some(vec!["idle".to_string()]));
}

/// A gauge of the `main` pool from /metrics.
fn gauge(proxy: &Sluice, name: &str) -> i64 {
    let (_, body) = proxy.http_get("/metrics");
    let prefix = format!("{name}{{pool=\"main\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.parse::<f64>().map_or(-1, |v| v as i64))
}

#[test]
fn idle_tracking_clients_are_not_parked() {
    let master = Redis::start();
    let p = proxy_on(&master, &[], "master", "park_idle_after = \"100ms\"");
    // Idle first: were it parkable, it would be parked no later than the plain client.
    let mut a = tracking_client(&p, &[]);
    assert_eq!(a.cmd(&["GET", "parked"]), Resp::Nil);
    let mut plain = p.client();
    assert_eq!(plain.cmd(&["PING"]), Resp::Simple("PONG".into()));
    wait_until(Duration::from_secs(10), "the plain client parked", || {
        gauge(&p, "sluice_parked_clients") >= 1
    });
    assert_eq!(gauge(&p, "sluice_parked_clients"), 1);
    assert_eq!(p.client().cmd(&["SET", "parked", "1"]), ok());
    assert_eq!(invalidated(&mut a), Some(vec!["parked".to_string()]));
}

#[test]
fn sentinel_pools_track_on_the_master_sentinel_names() {
    let master = Redis::start();
    let sentinel = common::Sentinel::start(&master, "trk");
    let p = Sluice::start(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[pools]]\nname = \"main\"\nlisten = \"127.0.0.1:0\"\n\
         mode = \"sentinel\"\nsentinels = [\"{}\"]\nmaster_name = \"trk\"\nhealth_check_interval = \"100ms\"\n",
        sentinel.addr()
    ));
    let mut b = p.client();
    wait_until(
        Duration::from_secs(10),
        "the pool to find its master",
        || b.cmd(&["SET", "s1", "1"]) == ok(),
    );
    let mut a = tracking_client(&p, &[]);
    let mut watcher = tracking_client(&p, &["BCAST"]);
    assert_eq!(a.cmd(&["GET", "s1"]), bulk("1"));
    assert_eq!(b.cmd(&["SET", "s1", "2"]), ok());
    assert_eq!(invalidated(&mut a), Some(vec!["s1".to_string()]));
    assert_eq!(invalidated(&mut watcher), Some(vec!["s1".to_string()]));
    nothing_more(&mut a);
}

#[test]
fn hello_while_subscribed_switches_the_protocol_of_the_messages() {
    let master = Redis::start();
    let p = proxy_on(&master, &[], "master", "");
    let mut sub = p.client();
    assert!(matches!(sub.cmd(&["HELLO", "3"]), Resp::Map(_)));
    assert!(matches!(sub.cmd(&["SUBSCRIBE", "ch"]), Resp::Push(_)));
    // RESP3 allows any command while subscribed, HELLO included; the reply comes in the new
    // protocol, as on Redis.
    let Resp::Array(hello) = sub.cmd(&["HELLO", "2"]) else {
        panic!("HELLO 2 is answered in RESP2");
    };
    assert!(
        hello.windows(2).any(|w| w == [bulk("proto"), Resp::Int(2)]),
        "{hello:?}"
    );
    assert_eq!(p.client().cmd(&["PUBLISH", "ch", "m"]), Resp::Int(1));
    assert_eq!(
        sub.read(),
        Resp::Array(vec![bulk("message"), bulk("ch"), bulk("m")])
    );
}

/// The `used_memory - mem_not_counted_for_evict` of a node, as Redis's own test reads it.
fn memory_counted_for_evict(c: &mut Client) -> u64 {
    let info = c.cmd(&["INFO", "memory"]).text();
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in INFO"))
    };
    field("used_memory:") - field("mem_not_counted_for_evict:")
}

/// Redis's Tcl suite (unit/tracking, "invalidation message of eviction keys should be before
/// response"): a key evicted by a tracking client's own command is invalidated before that
/// command's reply, as Redis writes them. The proxy learns the eviction settings from the
/// CONFIG SETs passing through it; with them off again, replies do not wait.
#[test]
fn an_eviction_by_the_clients_own_command_is_invalidated_before_its_reply() {
    let master = Redis::start();
    let p = proxy_on(&master, &[], "master", "allow_commands = [\"CONFIG\"]");
    let mut c = tracking_client(&p, &[]);
    let limit = memory_counted_for_evict(&mut master.client()) + 100 * 1024;
    let limit = limit.to_string();
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", &limit]), ok());
    let policy = ["CONFIG", "SET", "maxmemory-policy", "volatile-random"];
    assert_eq!(c.cmd(&policy), ok());
    assert_eq!(c.cmd(&["SETEX", "volatile-key", "10000", "x"]), ok());
    assert_eq!(c.cmd(&["GET", "volatile-key"]), bulk("x"));
    // About 200 KB: used memory goes past the limit; the next command evicts.
    assert_eq!(c.cmd(&["SETBIT", "big-key", "1600000", "0"]), Resp::Int(0));
    c.send(&["GETBIT", "big-key", "0"]);
    assert_eq!(invalidated(&mut c), Some(vec!["volatile-key".to_string()]));
    assert_eq!(c.read(), Resp::Int(0));
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0"]), ok());
    let noeviction = ["CONFIG", "SET", "maxmemory-policy", "noeviction"];
    assert_eq!(c.cmd(&noeviction), ok());
    assert_eq!(c.cmd(&["GET", "big-key"]), Resp::Bulk(vec![0; 200_001]));
    nothing_more(&mut c);
}

/// The eviction settings are learned from the node when the tracking source connects (set
/// there directly, not through the proxy).
#[test]
fn eviction_settings_set_on_the_node_are_learned() {
    let master = Redis::start();
    let p = proxy_on(&master, &[], "master", "");
    let mut c = p.client();
    assert!(matches!(c.cmd(&["HELLO", "3"]), Resp::Map(_)));
    let mut direct = master.client();
    // Set with the proxy's connections open; the tracking source (one more) opens after.
    let limit = (memory_counted_for_evict(&mut direct) + 300 * 1024).to_string();
    assert_eq!(direct.cmd(&["CONFIG", "SET", "maxmemory", &limit]), ok());
    let policy = ["CONFIG", "SET", "maxmemory-policy", "volatile-random"];
    assert_eq!(direct.cmd(&policy), ok());
    assert_eq!(c.cmd(&["CLIENT", "TRACKING", "on"]), ok());
    assert_eq!(c.cmd(&["SETEX", "volatile-key", "10000", "x"]), ok());
    assert_eq!(c.cmd(&["GET", "volatile-key"]), bulk("x"));
    assert_eq!(c.cmd(&["SETBIT", "big-key", "3200000", "0"]), Resp::Int(0));
    c.send(&["GETBIT", "big-key", "0"]);
    assert_eq!(invalidated(&mut c), Some(vec!["volatile-key".to_string()]));
    assert_eq!(c.read(), Resp::Int(0));
}
