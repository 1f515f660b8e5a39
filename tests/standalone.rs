//! The proxy in front of real redis-server processes (1 master + 2 replicas).

mod common;

use std::time::{Duration, Instant};

use common::{full_scan, misses_and_repeats, standalone_config, wait_until, Redis, Resp, Sluice};

struct Stack {
    master: Redis,
    replicas: Vec<Redis>,
    proxy: Sluice,
}

fn stack(read_from: &str, extra: &str) -> Stack {
    let master = Redis::start();
    let replicas = vec![Redis::replica_of(&master), Redis::replica_of(&master)];
    for r in &replicas {
        r.wait_synced();
    }
    let cfg = standalone_config(
        &master,
        &replicas.iter().collect::<Vec<_>>(),
        read_from,
        extra,
    );
    let proxy = Sluice::start(&cfg);
    let s = Stack {
        master,
        replicas,
        proxy,
    };
    if read_from != "master" {
        wait_read_pool(&s.proxy, 2);
    }
    s
}

/// Waits until /topology shows `n` replicas in the read pool.
fn wait_read_pool(proxy: &Sluice, n: usize) {
    wait_until(Duration::from_secs(10), "replicas in the read pool", || {
        let (_, body) = proxy.http_get("/topology");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        v["pools"]["main"]["read_pool"].as_array().map(|a| a.len()) == Some(n)
    });
}

fn get_set_round_trip() {
    let s = stack("master", "");
    let mut c = s.proxy.client();
    assert_eq!(
        c.cmd(&["SET", "greeting", "hello"]),
        Resp::Simple("OK".into())
    );
    assert_eq!(c.cmd(&["GET", "greeting"]), Resp::Bulk(b"hello".to_vec()));
    assert_eq!(c.cmd(&["GET", "missing"]), Resp::Nil);
    assert_eq!(
        s.master.client().cmd(&["GET", "greeting"]),
        Resp::Bulk(b"hello".to_vec())
    );
    // Through an unmodified client library too.
    let mut con = s.proxy.redis();
    let v: String = redis::cmd("GET")
        .arg("greeting")
        .query(&mut con)
        .expect("GET");
    assert_eq!(v, "hello");
    let n: i64 = redis::cmd("INCR")
        .arg("counter")
        .query(&mut con)
        .expect("INCR");
    assert_eq!(n, 1);
}

fn reads_go_to_replicas_and_never_to_the_master() {
    let s = stack("replica", "");
    let mut c = s.proxy.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Resp::Simple("OK".into()));
    wait_until(Duration::from_secs(5), "replication of k", || {
        s.replicas
            .iter()
            .all(|r| r.client().cmd(&["GET", "k"]) == Resp::Bulk(b"v".to_vec()))
    });
    let before: Vec<u64> = s.replicas.iter().map(|r| r.calls("get")).collect();
    let master_before = s.master.calls("get");
    for _ in 0..200 {
        assert_eq!(c.cmd(&["GET", "k"]), Resp::Bulk(b"v".to_vec()));
    }
    let after: Vec<u64> = s.replicas.iter().map(|r| r.calls("get")).collect();
    let served: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(s.master.calls("get"), master_before, "master served reads");
    assert_eq!(
        served.iter().sum::<u64>(),
        200,
        "replicas served {served:?}"
    );
    assert!(
        served.iter().all(|&n| n >= 50),
        "reads not spread: {served:?}"
    );
    // The write went to the master (a replica would have answered READONLY).
    assert!(s.master.calls("set") >= 1);
}

fn ten_thousand_pipelined_requests_come_back_in_order() {
    let s = stack("replica", "");
    let mut c = s.proxy.client();
    let mut batch = Vec::new();
    for i in 0..10_000 {
        // Interleave writes (master) and reads (replicas) so replies come from different nodes.
        if i % 2 == 0 {
            batch.extend(common::encode(&["SET", &format!("p:{i}"), &i.to_string()]));
        } else {
            batch.extend(common::encode(&["ECHO", &format!("e{i}")]));
        }
    }
    c.send_raw(&batch);
    for i in 0..10_000 {
        let r = c.read();
        if i % 2 == 0 {
            assert_eq!(r, Resp::Simple("OK".into()), "reply {i}");
        } else {
            assert_eq!(r, Resp::Bulk(format!("e{i}").into_bytes()), "reply {i}");
        }
    }
    // Now reads from replicas mixed with master writes, each checked against its own index.
    let mut batch = Vec::new();
    for i in 0..2_000 {
        batch.extend(common::encode(&["INCRBY", "ctr", "1"]));
        batch.extend(common::encode(&["GET", &format!("p:{}", (i % 5000) * 2)]));
    }
    wait_until(Duration::from_secs(5), "replication", || {
        s.replicas
            .iter()
            .all(|r| r.client().cmd(&["GET", "p:9998"]) == Resp::Bulk(b"9998".to_vec()))
    });
    c.send_raw(&batch);
    for i in 0..2_000 {
        assert_eq!(c.read(), Resp::Int(i + 1));
        assert_eq!(
            c.read(),
            Resp::Bulk(((i % 5000) * 2).to_string().into_bytes())
        );
    }
}

fn multi_exec_and_watch_abort() {
    let s = stack("replica", "");
    let mut c = s.proxy.client();
    assert_eq!(c.cmd(&["MULTI"]), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["SET", "tx", "1"]), Resp::Simple("QUEUED".into()));
    assert_eq!(c.cmd(&["INCR", "tx"]), Resp::Simple("QUEUED".into()));
    assert_eq!(c.cmd(&["GET", "tx"]), Resp::Simple("QUEUED".into()));
    assert_eq!(
        c.cmd(&["EXEC"]),
        Resp::Array(vec![
            Resp::Simple("OK".into()),
            Resp::Int(2),
            Resp::Bulk(b"2".to_vec())
        ])
    );
    assert_eq!(
        c.cmd(&["DISCARD"]),
        Resp::Error("ERR DISCARD without MULTI".into())
    );

    // WATCH: another client changes the key, EXEC aborts with a null array.
    assert_eq!(c.cmd(&["SET", "w", "0"]), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["WATCH", "w"]), Resp::Simple("OK".into()));
    let mut other = s.proxy.client();
    assert_eq!(
        other.cmd(&["SET", "w", "changed"]),
        Resp::Simple("OK".into())
    );
    assert_eq!(c.cmd(&["MULTI"]), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["SET", "w", "mine"]), Resp::Simple("QUEUED".into()));
    assert_eq!(c.cmd(&["EXEC"]), Resp::Nil);
    c.send_raw(b"*1\r\n$4\r\nPING\r\n");
    assert_eq!(c.read(), Resp::Simple("PONG".into()));
    assert_eq!(
        s.master.client().cmd(&["GET", "w"]),
        Resp::Bulk(b"changed".to_vec())
    );

    // Transactions reuse dedicated connections instead of opening one each.
    let conns_before = connected_clients(&s.master);
    for i in 0..50 {
        assert_eq!(c.cmd(&["MULTI"]), Resp::Simple("OK".into()));
        assert_eq!(
            c.cmd(&["SET", "loop", &i.to_string()]),
            Resp::Simple("QUEUED".into())
        );
        assert_eq!(
            c.cmd(&["EXEC"]),
            Resp::Array(vec![Resp::Simple("OK".into())])
        );
    }
    let conns_after = connected_clients(&s.master);
    assert!(
        conns_after <= conns_before + 1,
        "{conns_before} -> {conns_after} connections"
    );
}

fn connected_clients(r: &Redis) -> u64 {
    r.info("clients")
        .lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn subscribe_and_publish_through_the_proxy() {
    let s = stack("replica", "");
    let mut sub = s.proxy.client();
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "news"]),
        Resp::Array(vec![
            Resp::Bulk(b"subscribe".to_vec()),
            Resp::Bulk(b"news".to_vec()),
            Resp::Int(1)
        ])
    );
    // RESP2 subscribed clients may not run other commands (Redis's own rule).
    match sub.cmd(&["GET", "x"]) {
        Resp::Error(e) => assert!(e.contains("only (P|S)SUBSCRIBE"), "{e}"),
        other => panic!("expected error, got {other:?}"),
    }
    let mut publisher = s.proxy.client();
    assert_eq!(publisher.cmd(&["PUBLISH", "news", "hello"]), Resp::Int(1));
    assert_eq!(
        sub.read(),
        Resp::Array(vec![
            Resp::Bulk(b"message".to_vec()),
            Resp::Bulk(b"news".to_vec()),
            Resp::Bulk(b"hello".to_vec())
        ])
    );
    assert_eq!(
        sub.cmd(&["PSUBSCRIBE", "n*"]),
        Resp::Array(vec![
            Resp::Bulk(b"psubscribe".to_vec()),
            Resp::Bulk(b"n*".to_vec()),
            Resp::Int(2)
        ])
    );
    assert_eq!(publisher.cmd(&["PUBLISH", "nope", "x"]), Resp::Int(1));
    assert_eq!(
        sub.read(),
        Resp::Array(vec![
            Resp::Bulk(b"pmessage".to_vec()),
            Resp::Bulk(b"n*".to_vec()),
            Resp::Bulk(b"nope".to_vec()),
            Resp::Bulk(b"x".to_vec())
        ])
    );
    // Leaving all subscriptions returns the client to normal commands.
    assert_eq!(
        sub.cmd(&["UNSUBSCRIBE"]),
        Resp::Array(vec![
            Resp::Bulk(b"unsubscribe".to_vec()),
            Resp::Bulk(b"news".to_vec()),
            Resp::Int(1)
        ])
    );
    assert_eq!(
        sub.cmd(&["PUNSUBSCRIBE"]),
        Resp::Array(vec![
            Resp::Bulk(b"punsubscribe".to_vec()),
            Resp::Bulk(b"n*".to_vec()),
            Resp::Int(0)
        ])
    );
    assert_eq!(sub.cmd(&["SET", "after", "1"]), Resp::Simple("OK".into()));
}

fn blpop_is_released_by_lpush_while_others_are_served() {
    let s = stack("replica", "");
    let mut blocked = s.proxy.client();
    blocked.send(&["BLPOP", "queue", "10"]);
    // While it blocks, other clients keep being served promptly.
    let mut other = s.proxy.client();
    let start = Instant::now();
    for i in 0..100 {
        assert_eq!(
            other.cmd(&["SET", &format!("b{i}"), "x"]),
            Resp::Simple("OK".into())
        );
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    wait_until(
        Duration::from_secs(5),
        "BLPOP to block on the master",
        || s.master.info("clients").contains("blocked_clients:1"),
    );
    assert_eq!(other.cmd(&["LPUSH", "queue", "job1"]), Resp::Int(1));
    assert_eq!(
        blocked.read(),
        Resp::Array(vec![
            Resp::Bulk(b"queue".to_vec()),
            Resp::Bulk(b"job1".to_vec())
        ])
    );
    // A timed-out BLPOP answers a RESP2 null array.
    assert_eq!(blocked.cmd(&["BLPOP", "empty", "0.05"]), Resp::Nil);
    assert_eq!(blocked.cmd(&["PING"]), Resp::Simple("PONG".into()));
}

fn select_isolates_databases_under_multiplexing() {
    let s = stack("master", "");
    let mut a = s.proxy.client();
    let mut b = s.proxy.client();
    assert_eq!(a.cmd(&["SELECT", "1"]), Resp::Simple("OK".into()));
    // Interleave: both clients share the same node connections.
    for i in 0..50 {
        assert_eq!(
            a.cmd(&["SET", "k", &format!("db1-{i}")]),
            Resp::Simple("OK".into())
        );
        assert_eq!(
            b.cmd(&["SET", "k", &format!("db0-{i}")]),
            Resp::Simple("OK".into())
        );
    }
    assert_eq!(a.cmd(&["GET", "k"]), Resp::Bulk(b"db1-49".to_vec()));
    assert_eq!(b.cmd(&["GET", "k"]), Resp::Bulk(b"db0-49".to_vec()));
    let mut direct = s.master.client();
    assert_eq!(direct.cmd(&["GET", "k"]), Resp::Bulk(b"db0-49".to_vec()));
    assert_eq!(direct.cmd(&["SELECT", "1"]), Resp::Simple("OK".into()));
    assert_eq!(direct.cmd(&["GET", "k"]), Resp::Bulk(b"db1-49".to_vec()));
    assert_eq!(
        a.cmd(&["SELECT", "99"]),
        Resp::Error("ERR DB index is out of range".into())
    );
    assert_eq!(
        a.cmd(&["SELECT", "x"]),
        Resp::Error("ERR value is not an integer or out of range".into())
    );
    // A transaction on db 1 stays on db 1.
    assert_eq!(a.cmd(&["MULTI"]), Resp::Simple("OK".into()));
    assert_eq!(a.cmd(&["GET", "k"]), Resp::Simple("QUEUED".into()));
    assert_eq!(
        a.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::Bulk(b"db1-49".to_vec())])
    );
}

fn auth_is_required_and_enforced() {
    let master = Redis::start();
    let cfg = standalone_config(&master, &[], "master", "password = \"s3cret\"");
    let proxy = Sluice::start(&cfg);
    let mut c = proxy.client();
    assert_eq!(
        c.cmd(&["GET", "k"]),
        Resp::Error("NOAUTH Authentication required.".into())
    );
    assert_eq!(
        c.cmd(&["AUTH", "wrong"]),
        Resp::Error("WRONGPASS invalid username-password pair or user is disabled.".into())
    );
    assert_eq!(
        c.cmd(&["SET", "k", "v"]),
        Resp::Error("NOAUTH Authentication required.".into())
    );
    assert_eq!(c.cmd(&["AUTH", "s3cret"]), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["SET", "k", "v"]), Resp::Simple("OK".into()));
    // HELLO with AUTH in one go.
    let mut h = proxy.client();
    match h.cmd(&["HELLO", "3", "AUTH", "default", "s3cret"]) {
        Resp::Map(pairs) => assert!(pairs.contains(&(Resp::Bulk(b"proto".to_vec()), Resp::Int(3)))),
        other => panic!("HELLO: {other:?}"),
    }
    assert_eq!(h.cmd(&["GET", "k"]), Resp::Bulk(b"v".to_vec()));
    // The library's own AUTH path.
    let url = format!("redis://:s3cret@{}/", proxy.addr());
    let mut con = redis::Client::open(url)
        .expect("url")
        .get_connection()
        .expect("auth via library");
    let v: String = redis::cmd("GET").arg("k").query(&mut con).expect("GET");
    assert_eq!(v, "v");
}

fn hello_3_gives_resp3_replies_while_resp2_clients_share_the_nodes() {
    let s = stack("replica", "");
    let mut c3 = s.proxy.client();
    match c3.cmd(&["HELLO", "3"]) {
        Resp::Map(pairs) => {
            assert!(pairs.contains(&(Resp::Bulk(b"proto".to_vec()), Resp::Int(3))));
            assert!(pairs.contains(&(
                Resp::Bulk(b"server".to_vec()),
                Resp::Bulk(b"redis".to_vec())
            )));
        }
        other => panic!("HELLO 3: {other:?}"),
    }
    let mut c2 = s.proxy.client();
    assert_eq!(c2.cmd(&["HSET", "h", "f", "v"]), Resp::Int(1));
    assert_eq!(c2.cmd(&["ZADD", "z", "1.5", "m"]), Resp::Int(1));
    wait_until(Duration::from_secs(5), "replication", || {
        s.replicas
            .iter()
            .all(|r| r.client().cmd(&["EXISTS", "h", "z"]) == Resp::Int(2))
    });
    for _ in 0..4 {
        // RESP3: native map, double and null.
        assert_eq!(
            c3.cmd(&["HGETALL", "h"]),
            Resp::Map(vec![(Resp::Bulk(b"f".to_vec()), Resp::Bulk(b"v".to_vec()))])
        );
        assert_eq!(c3.cmd(&["ZSCORE", "z", "m"]), Resp::Double("1.5".into()));
        assert_eq!(c3.cmd(&["GET", "nothing"]), Resp::Nil);
        // RESP2 on the same node connections: flat array, bulk string.
        assert_eq!(
            c2.cmd(&["HGETALL", "h"]),
            Resp::Array(vec![Resp::Bulk(b"f".to_vec()), Resp::Bulk(b"v".to_vec())])
        );
        assert_eq!(c2.cmd(&["ZSCORE", "z", "m"]), Resp::Bulk(b"1.5".to_vec()));
    }
    // Back to RESP2.
    match c3.cmd(&["HELLO", "2"]) {
        Resp::Array(items) => assert!(items.contains(&Resp::Int(2))),
        other => panic!("HELLO 2: {other:?}"),
    }
    assert_eq!(
        c3.cmd(&["HGETALL", "h"]),
        Resp::Array(vec![Resp::Bulk(b"f".to_vec()), Resp::Bulk(b"v".to_vec())])
    );
    assert_eq!(
        c3.cmd(&["HELLO", "4"]),
        Resp::Error("NOPROTO unsupported protocol version".into())
    );
}

fn malformed_request_closes_only_that_client() {
    let s = stack("master", "");
    let mut good = s.proxy.client();
    assert_eq!(good.cmd(&["SET", "k", "v"]), Resp::Simple("OK".into()));
    let mut bad = s.proxy.client();
    bad.send_raw(b"*1\r\n$abc\r\n");
    assert_eq!(
        bad.read(),
        Resp::Error("ERR Protocol error: invalid bulk length".into())
    );
    assert!(bad.is_closed(), "malformed client must be disconnected");
    let mut bad2 = s.proxy.client();
    bad2.send_raw(b"*2\r\n$3\r\nGET\r\n:1\r\n");
    assert_eq!(
        bad2.read(),
        Resp::Error("ERR Protocol error: expected '$', got ':'".into())
    );
    assert!(bad2.is_closed());
    assert_eq!(good.cmd(&["GET", "k"]), Resp::Bulk(b"v".to_vec()));
    // Inline commands work as in Redis.
    let mut inline = s.proxy.client();
    inline.send_raw(b"SET inline \"a b\"\r\nGET inline\r\n");
    assert_eq!(inline.read(), Resp::Simple("OK".into()));
    assert_eq!(inline.read(), Resp::Bulk(b"a b".to_vec()));
}

fn denied_commands_get_a_clear_error_unless_allowed() {
    let master = Redis::start();
    let proxy = Sluice::start(&standalone_config(&master, &[], "master", ""));
    let mut c = proxy.client();
    for cmd in [
        vec!["CONFIG", "SET", "maxmemory", "1"],
        vec!["SHUTDOWN"],
        vec!["REPLICAOF", "NO", "ONE"],
        vec!["DEBUG", "SLEEP", "0"],
        vec!["CLUSTER", "INFO"],
        vec!["FAILOVER"],
    ] {
        match c.cmd(&cmd) {
            Resp::Error(e) => assert!(
                e.starts_with("ERR sluice:") && e.contains("allow_commands"),
                "{cmd:?}: {e}"
            ),
            other => panic!("{cmd:?} passed: {other:?}"),
        }
    }
    // Harmless admin reads and ordinary writes pass.
    assert!(matches!(
        c.cmd(&["CONFIG", "GET", "maxmemory"]),
        Resp::Array(_)
    ));
    assert_eq!(c.cmd(&["FLUSHALL"]), Resp::Simple("OK".into()));
    let allowed = Sluice::start(&standalone_config(
        &master,
        &[],
        "master",
        "allow_commands = [\"CONFIG\"]",
    ));
    assert_eq!(
        allowed
            .client()
            .cmd(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]),
        Resp::Simple("OK".into())
    );
}

fn killed_replica_leaves_the_read_pool_without_client_errors_and_rejoins() {
    let mut s = stack("replica", "");
    let mut c = s.proxy.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Resp::Simple("OK".into()));
    wait_until(Duration::from_secs(5), "replication", || {
        s.replicas
            .iter()
            .all(|r| r.client().cmd(&["GET", "k"]) == Resp::Bulk(b"v".to_vec()))
    });
    s.replicas[0].kill();
    let killed_at = Instant::now();
    // Reads keep succeeding throughout; the pool shrinks to one replica within 1 s.
    let mut shrunk_after = None;
    while killed_at.elapsed() < Duration::from_secs(2) {
        assert_eq!(
            c.cmd(&["GET", "k"]),
            Resp::Bulk(b"v".to_vec()),
            "client-visible error after kill"
        );
        if shrunk_after.is_none() {
            let (_, body) = s.proxy.http_get("/topology");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if v["pools"]["main"]["read_pool"].as_array().map(|a| a.len()) == Some(1) {
                shrunk_after = Some(killed_at.elapsed());
            }
        }
    }
    let shrunk = shrunk_after.expect("replica never left the read pool");
    assert!(
        shrunk < Duration::from_secs(1),
        "left the pool after {shrunk:?}"
    );
    let survivor_before = s.replicas[1].calls("get");
    for _ in 0..20 {
        assert_eq!(c.cmd(&["GET", "k"]), Resp::Bulk(b"v".to_vec()));
    }
    assert_eq!(s.replicas[1].calls("get") - survivor_before, 20);
    // Restart: it resyncs, rejoins, and serves reads again.
    s.replicas[0].restart();
    s.replicas[0].wait_synced();
    wait_read_pool(&s.proxy, 2);
    wait_until(
        Duration::from_secs(5),
        "restarted replica to serve reads",
        || {
            assert_eq!(c.cmd(&["GET", "k"]), Resp::Bulk(b"v".to_vec()));
            s.replicas[0].calls("get") > 0
        },
    );
}

fn admin_endpoints_report_health_topology_and_metrics() {
    let s = stack("replica", "");
    let mut c = s.proxy.client();
    for i in 0..10 {
        assert_eq!(
            c.cmd(&["SET", &format!("m{i}"), "1"]),
            Resp::Simple("OK".into())
        );
        let _ = c.cmd(&["GET", &format!("m{i}")]);
    }
    assert_eq!(s.proxy.http_get("/healthz").0, 200);
    wait_until(Duration::from_secs(5), "/ready", || {
        s.proxy.http_get("/ready").0 == 200
    });
    let (status, body) = s.proxy.http_get("/topology");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["pools"]["main"]["master"]["addr"], s.master.addr());
    assert_eq!(
        v["pools"]["main"]["replicas"].as_array().map(Vec::len),
        Some(2)
    );
    let (status, metrics) = s.proxy.http_get("/metrics");
    assert_eq!(status, 200);
    for name in [
        "sluice_requests_total",
        "sluice_request_duration_seconds_bucket",
        "sluice_client_connections",
        "sluice_backend_connections",
        "sluice_replicas_healthy",
    ] {
        assert!(metrics.contains(name), "missing {name} in\n{metrics}");
    }
    let writes = format!(
        "sluice_requests_total{{pool=\"main\",node=\"{}\",class=\"write\"}}",
        s.master.addr()
    );
    let line = metrics
        .lines()
        .find(|l| l.starts_with(&writes))
        .unwrap_or_else(|| panic!("no {writes} in\n{metrics}"));
    let n: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("value");
    assert!(n >= 10.0, "{line}");
    assert_eq!(s.proxy.http_get("/nope").0, 404);
}

fn ready_is_503_without_a_reachable_master() {
    let mut master = Redis::start();
    let proxy = Sluice::start(&standalone_config(&master, &[], "master", ""));
    wait_until(Duration::from_secs(5), "/ready", || {
        proxy.http_get("/ready").0 == 200
    });
    master.kill();
    wait_until(Duration::from_secs(5), "/ready to fail", || {
        proxy.http_get("/ready").0 == 503
    });
    let mut c = proxy.client();
    match c.cmd(&["SET", "k", "v"]) {
        Resp::Error(e) => assert!(e.contains("unavailable") || e.contains("lost"), "{e}"),
        other => panic!("write with master down: {other:?}"),
    }
}

fn a_lagging_replica_leaves_the_read_pool_and_returns_when_caught_up() {
    let master = Redis::start();
    let relay = common::Relay::start(&master.addr());
    let slow = Redis::start_with(&["--replicaof", "127.0.0.1", &relay.port.to_string()]);
    let fast = Redis::replica_of(&master);
    slow.wait_synced();
    fast.wait_synced();
    let proxy = Sluice::start(&standalone_config(
        &master,
        &[&slow, &fast],
        "replica",
        "max_replica_lag = \"4KiB\"",
    ));
    wait_read_pool(&proxy, 2);
    relay.pause(true);
    let mut c = proxy.client();
    let value = "x".repeat(1024);
    for i in 0..32 {
        assert_eq!(
            c.cmd(&["SET", &format!("lag{i}"), &value]),
            Resp::Simple("OK".into())
        );
    }
    wait_read_pool(&proxy, 1);
    let (_, body) = proxy.http_get("/topology");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["pools"]["main"]["read_pool"][0], fast.addr());
    let slow_view = v["pools"]["main"]["replicas"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["addr"] == slow.addr()).cloned())
        .expect("slow replica listed");
    assert_eq!(slow_view["health"]["state"], "lagging", "{slow_view}");
    // Reads meanwhile come from the replica that has the data.
    for i in 0..32 {
        assert_eq!(
            c.cmd(&["GET", &format!("lag{i}")]),
            Resp::Bulk(value.clone().into_bytes())
        );
    }
    relay.pause(false);
    wait_read_pool(&proxy, 2);
}

fn read_policies_when_no_replica_is_healthy() {
    let master = Redis::start();
    let mut replica = Redis::replica_of(&master);
    replica.wait_synced();
    // A read waits up to `master_wait` for a replica to come back before it fails.
    let strict = Sluice::start(&standalone_config(
        &master,
        &[&replica],
        "replica",
        "master_wait = \"300ms\"",
    ));
    let prefer = Sluice::start(&standalone_config(
        &master,
        &[&replica],
        "prefer-replica",
        "",
    ));
    wait_read_pool(&strict, 1);
    wait_read_pool(&prefer, 1);
    assert_eq!(
        strict.client().cmd(&["SET", "k", "v"]),
        Resp::Simple("OK".into())
    );
    replica.kill();
    wait_read_pool(&strict, 0);
    wait_read_pool(&prefer, 0);
    // replica: reads fail with a clear error after `master_wait`; writes still work.
    let mut c = strict.client();
    let started = Instant::now();
    match c.cmd(&["GET", "k"]) {
        Resp::Error(e) => assert!(e.contains("no healthy replica"), "{e}"),
        other => panic!("read without replicas: {other:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the read did not wait"
    );
    assert_eq!(c.cmd(&["SET", "k2", "v2"]), Resp::Simple("OK".into()));
    // prefer-replica: the master serves the read.
    let before = master.calls("get");
    assert_eq!(
        prefer.client().cmd(&["GET", "k"]),
        Resp::Bulk(b"v".to_vec())
    );
    assert_eq!(master.calls("get"), before + 1);
}

fn a_stuck_node_times_out_with_a_clear_error() {
    let master = Redis::start_with(&["--enable-debug-command", "yes"]);
    let proxy = Sluice::start(&standalone_config(
        &master,
        &[],
        "master",
        "request_timeout = \"300ms\"\nallow_commands = [\"DEBUG\"]",
    ));
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Resp::Simple("OK".into()));
    let start = Instant::now();
    match c.cmd(&["DEBUG", "SLEEP", "2"]) {
        Resp::Error(e) => assert!(e.contains("did not reply within 300 ms"), "{e}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        start.elapsed() < Duration::from_millis(1900),
        "timeout took {:?}",
        start.elapsed()
    );
    // The proxy reconnects and serves again once the node is back.
    wait_until(Duration::from_secs(5), "recovery", || {
        c.cmd(&["GET", "k"]) == Resp::Bulk(b"v".to_vec())
    });
}

fn scripts_go_to_the_master_and_read_only_scripts_to_replicas() {
    let s = stack("replica", "");
    let mut c = s.proxy.client();
    assert_eq!(c.cmd(&["SET", "sk", "1"]), Resp::Simple("OK".into()));
    assert_eq!(
        c.cmd(&["EVAL", "return redis.call('INCR', KEYS[1])", "1", "sk"]),
        Resp::Int(2)
    );
    let sha = c
        .cmd(&["SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])"])
        .text();
    wait_until(
        Duration::from_secs(5),
        "script and data on replicas",
        || {
            s.replicas.iter().all(|r| {
                let mut rc = r.client();
                rc.cmd(&["GET", "sk"]) == Resp::Bulk(b"2".to_vec())
                    && rc.cmd(&["SCRIPT", "EXISTS", &sha]) == Resp::Array(vec![Resp::Int(1)])
            })
        },
    );
    let replica_ro_before: u64 = s
        .replicas
        .iter()
        .map(|r| r.calls("evalsha_ro") + r.calls("eval_ro"))
        .sum();
    let master_eval_before = s.master.calls("eval");
    for _ in 0..10 {
        assert_eq!(
            c.cmd(&["EVALSHA_RO", &sha, "1", "sk"]),
            Resp::Bulk(b"2".to_vec())
        );
        assert_eq!(
            c.cmd(&["EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "sk"]),
            Resp::Bulk(b"2".to_vec())
        );
    }
    let replica_ro_after: u64 = s
        .replicas
        .iter()
        .map(|r| r.calls("evalsha_ro") + r.calls("eval_ro"))
        .sum();
    assert_eq!(replica_ro_after - replica_ro_before, 20);
    assert_eq!(s.master.calls("evalsha_ro") + s.master.calls("eval_ro"), 0);
    assert_eq!(s.master.calls("eval"), master_eval_before);
    assert_eq!(s.master.calls("eval"), 1);
}

fn client_name_and_id_are_per_connection() {
    let s = stack("master", "");
    let mut a = s.proxy.client();
    let mut b = s.proxy.client();
    assert_eq!(a.cmd(&["CLIENT", "GETNAME"]), Resp::Nil);
    assert_eq!(
        a.cmd(&["CLIENT", "SETNAME", "worker-a"]),
        Resp::Simple("OK".into())
    );
    assert_eq!(
        a.cmd(&["CLIENT", "GETNAME"]),
        Resp::Bulk(b"worker-a".to_vec())
    );
    assert_eq!(b.cmd(&["CLIENT", "GETNAME"]), Resp::Nil);
    assert_eq!(
        a.cmd(&["CLIENT", "SETNAME", "bad name"]),
        Resp::Error(
            "ERR Client names cannot contain spaces, newlines or special characters.".into()
        )
    );
    let (Resp::Int(ida), Resp::Int(idb)) = (a.cmd(&["CLIENT", "ID"]), b.cmd(&["CLIENT", "ID"]))
    else {
        panic!("CLIENT ID must be an integer");
    };
    assert_ne!(ida, idb);
    let info = a.cmd(&["CLIENT", "INFO"]).text();
    for field in [
        "name=worker-a",
        " age=",
        " flags=N",
        " cmd=client|info",
        " user=default",
        " resp=2",
    ] {
        assert!(info.contains(field), "{field} missing from {info}");
    }
    assert!(a
        .cmd(&["CLIENT", "LIST"])
        .text()
        .contains(&format!("id={ida} ")));
    // The pool's other clients are listed too (CLIENT LIST covers the pool, as on Redis).
    let only_b = a.cmd(&["CLIENT", "LIST", "ID", &idb.to_string()]).text();
    assert!(only_b.starts_with(&format!("id={idb} ")), "{only_b}");
    assert_eq!(only_b.lines().count(), 1, "{only_b}");
    assert_eq!(
        a.cmd(&["CLIENT", "ID", "x"]),
        Resp::Error("ERR wrong number of arguments for 'client|id' command".into())
    );
    assert_eq!(a.cmd(&["ECHO", "hi"]), Resp::Bulk(b"hi".to_vec()));
    assert_eq!(a.cmd(&["PING", "x"]), Resp::Bulk(b"x".to_vec()));
    assert_eq!(a.cmd(&["QUIT"]), Resp::Simple("OK".into()));
    assert!(a.is_closed());
}

fn allowed_connection_state_commands_get_a_tunnel_of_their_own() {
    let master = Redis::start();
    let cfg = standalone_config(&master, &[], "master", "allow_commands = [\"MONITOR\"]");
    let proxy = Sluice::start(&cfg);
    let mut monitor = proxy.client();
    assert_eq!(monitor.cmd(&["MONITOR"]), Resp::Simple("OK".into()));
    let mut other = proxy.client();
    assert_eq!(
        other.cmd(&["SET", "watched", "1"]),
        Resp::Simple("OK".into())
    );
    // The monitor sees the command; the other client's shared connection is unaffected.
    wait_until(
        Duration::from_secs(5),
        "MONITOR to show the SET",
        || match monitor.read() {
            Resp::Simple(line) => line.contains("\"SET\" \"watched\" \"1\""),
            other => panic!("unexpected {other:?}"),
        },
    );
    assert_eq!(other.cmd(&["GET", "watched"]), Resp::Bulk(b"1".to_vec()));
    // RESP3 client-side caching, kept by the proxy (`tests/tracking.rs`): invalidations
    // reach the tracking client, from redis-server and from sluice nodes (BCAST sources).
    let mut tracking = proxy.client();
    assert!(matches!(tracking.cmd(&["HELLO", "3"]), Resp::Map(_)));
    assert_eq!(
        tracking.cmd(&["CLIENT", "TRACKING", "on"]),
        Resp::Simple("OK".into())
    );
    assert_eq!(tracking.cmd(&["GET", "cached"]), Resp::Nil);
    assert_eq!(
        other.cmd(&["SET", "cached", "x"]),
        Resp::Simple("OK".into())
    );
    match tracking.read() {
        Resp::Push(items) => {
            assert_eq!(items[0], Resp::Bulk(b"invalidate".to_vec()));
            assert_eq!(items[1], Resp::Array(vec![Resp::Bulk(b"cached".to_vec())]));
        }
        other => panic!("expected an invalidation push, got {other:?}"),
    }
    // SYNC is not allowed by default: still a clear error.
    let strict = Sluice::start(&standalone_config(&master, &[], "master", ""));
    match strict.client().cmd(&["SYNC"]) {
        Resp::Error(e) => assert!(e.contains("allow_commands"), "{e}"),
        other => panic!("{other:?}"),
    }
}

fn replicas_keep_serving_reads_while_the_master_is_down() {
    let mut master = Redis::start();
    let replica = Redis::replica_of(&master);
    replica.wait_synced();
    let proxy = Sluice::start(&standalone_config(
        &master,
        &[&replica],
        "prefer-replica",
        "",
    ));
    wait_read_pool(&proxy, 1);
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Resp::Simple("OK".into()));
    wait_until(Duration::from_secs(5), "replication", || {
        replica.client().cmd(&["GET", "k"]) == Resp::Bulk(b"v".to_vec())
    });
    master.kill();
    wait_until(Duration::from_secs(5), "replica link down", || {
        replica
            .info("replication")
            .contains("master_link_status:down")
    });
    // Reads are still served (stale but available) and writes fail clearly.
    wait_until(Duration::from_secs(5), "reads from the replica", || {
        c.cmd(&["GET", "k"]) == Resp::Bulk(b"v".to_vec())
    });
    for _ in 0..20 {
        assert_eq!(c.cmd(&["GET", "k"]), Resp::Bulk(b"v".to_vec()));
    }
    match c.cmd(&["SET", "k", "w"]) {
        Resp::Error(e) => assert!(e.starts_with("ERR sluice:"), "{e}"),
        other => panic!("write with the master down: {other:?}"),
    }
}

fn sigterm_stops_the_proxy_cleanly() {
    let master = Redis::start();
    // The client stays connected: the proxy exits once drain_timeout is over.
    let config = standalone_config(&master, &[], "master", "");
    let mut proxy = Sluice::start(&format!("drain_timeout = \"300ms\"\n{config}"));
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Resp::Simple("OK".into()));
    let status = proxy.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(c.is_closed(), "client connection left open after shutdown");
}

/// A RESP2 client through the proxy (whose node connections speak RESP3) must get the very
/// bytes Redis sends a RESP2 client directly, including for commands whose reply shape
/// differs between the protocols.
fn resp2_replies_are_byte_identical_to_redis() {
    let master = Redis::start();
    let proxy = Sluice::start(&standalone_config(&master, &[], "master", ""));
    let script: &[&[&str]] = &[
        &["ZADD", "z", "1", "a", "2.5", "b", "0.1", "c"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["ZRANGE", "z", "0", "-1"],
        &[
            "ZRANGE",
            "z",
            "0",
            "10",
            "BYSCORE",
            "WITHSCORES",
            "LIMIT",
            "0",
            "2",
        ],
        &["ZREVRANGE", "z", "0", "-1", "withscores"],
        &["ZRANGEBYSCORE", "z", "-inf", "+inf", "WITHSCORES"],
        &["ZREVRANGEBYSCORE", "z", "+inf", "-inf", "WITHSCORES"],
        &["ZUNION", "1", "z", "WITHSCORES"],
        &["ZINTER", "1", "z", "WITHSCORES"],
        &["ZDIFF", "1", "z", "WITHSCORES"],
        &["ZSCORE", "z", "c"],
        &["ZMSCORE", "z", "b", "nope"],
        &["ZINCRBY", "z", "1", "a"],
        &["ZADD", "z", "INCR", "1", "a"],
        &["ZSCAN", "z", "0"],
        &["ZRANDMEMBER", "z", "-5", "WITHSCORES"],
        &["ZPOPMIN", "z"],
        &["ZPOPMAX", "z", "1"],
        &["ZPOPMIN", "nothing", "2"],
        &["HSET", "h", "f", "v", "g", "w"],
        &["HGETALL", "h"],
        &["HRANDFIELD", "h", "-4", "WITHVALUES"],
        &[
            "GEOADD",
            "g",
            "13.361389",
            "38.115556",
            "a",
            "15.087269",
            "37.502669",
            "b",
        ],
        &["GEOPOS", "g", "a", "nosuch"],
        &[
            "GEOSEARCH",
            "g",
            "FROMLONLAT",
            "15",
            "37",
            "BYRADIUS",
            "200",
            "km",
            "WITHCOORD",
            "WITHDIST",
            "ASC",
        ],
        &["GEODIST", "g", "a", "b"],
        &["XADD", "s", "1-1", "f", "v"],
        &["XREAD", "STREAMS", "s", "0"],
        &["XREAD", "COUNT", "1", "STREAMS", "s", "nosuch", "0", "0"],
        &["XREAD", "STREAMS", "nosuch", "0"],
        &["XGROUP", "CREATE", "s", "grp", "0"],
        &["XREADGROUP", "GROUP", "grp", "c", "STREAMS", "s", ">"],
        &["XREADGROUP", "GROUP", "grp", "c", "STREAMS", "s", ">"],
        &["XINFO", "STREAM", "s"],
        &["XPENDING", "s", "grp"],
        &["CONFIG", "GET", "maxmemory"],
        &["LPOP", "nolist"],
        &["LPOP", "nolist", "2"],
        &["BLPOP", "nolist", "0.01"],
        &["GET", "nothing"],
        &["MGET", "h", "nothing"],
        &["SET", "n", "10"],
        &["INCRBYFLOAT", "n", "0.1"],
        &["OBJECT", "ENCODING", "z"],
        &["EVAL", "return {1, 'two', {3}, false}", "0"],
        &["LCS", "n", "h"],
        &["COMMAND", "INFO", "get"],
    ];
    let mut via = proxy.client();
    // Same data on both sides: run each write once through the proxy, then compare every
    // reply against a second, identical Redis fed directly.
    let twin = Redis::start();
    let mut twin_c = twin.client();
    for cmd in script {
        let a = via.cmd_raw(cmd);
        let b = twin_c.cmd_raw(cmd);
        if cmd[0].starts_with("ZRANDMEMBER") || cmd[0].starts_with("HRANDFIELD") {
            // Random picks: compare the shape (length and element count) only.
            assert_eq!(
                a.iter().filter(|&&c| c == b'\n').count(),
                b.iter().filter(|&&c| c == b'\n').count(),
                "{cmd:?}"
            );
            continue;
        }
        assert_eq!(
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b),
            "{cmd:?}"
        );
    }
}

fn reads_refused_with_loading_are_retried_on_another_node() {
    let master = Redis::start();
    let replica = Redis::replica_of(&master);
    replica.wait_synced();
    let loading = common::FakeReplica::start("-LOADING Redis is loading the dataset in memory\r\n");
    let cfg = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[pools]]\nname = \"main\"\nlisten = \"127.0.0.1:0\"\n\
         master = \"{}\"\nreplicas = [\"{}\", \"{}\"]\nread_from = \"replica\"\nhealth_check_interval = \"100ms\"\n",
        master.addr(),
        replica.addr(),
        loading.addr()
    );
    let proxy = Sluice::start(&cfg);
    wait_read_pool(&proxy, 2);
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Resp::Simple("OK".into()));
    wait_until(Duration::from_secs(5), "replication", || {
        replica.client().cmd(&["GET", "k"]) == Resp::Bulk(b"v".to_vec())
    });
    // Half the reads are routed to the "loading" replica; none may reach the client as an error.
    for _ in 0..40 {
        assert_eq!(c.cmd(&["GET", "k"]), Resp::Bulk(b"v".to_vec()));
    }
    let (_, metrics) = proxy.http_get("/metrics");
    let retries = metrics
        .lines()
        .find(|l| l.starts_with("sluice_retries_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(retries >= 10.0, "expected retries, metrics say {retries}");
}

fn read_your_writes_never_returns_an_older_value_while_a_replica_lags() {
    let master = Redis::start();
    let relay = common::Relay::start(&master.addr());
    let slow = Redis::start_with(&["--replicaof", "127.0.0.1", &relay.port.to_string()]);
    let fast = Redis::replica_of(&master);
    slow.wait_synced();
    fast.wait_streaming(&master);
    let proxy = Sluice::start(&standalone_config(
        &master,
        &[&slow, &fast],
        "replica",
        "consistency = \"read-your-writes\"",
    ));
    wait_read_pool(&proxy, 2);
    // The slow replica stops receiving the replication stream but stays "healthy" (its link
    // is up): exactly the replica an eventual read would happily use.
    relay.pause(true);
    let mut writer = proxy.client();
    let slow_reads_before = slow.calls("get");
    for i in 0..300 {
        let v = i.to_string();
        assert_eq!(writer.cmd(&["SET", "mine", &v]), Resp::Simple("OK".into()));
        assert_eq!(
            writer.cmd(&["GET", "mine"]),
            Resp::Bulk(v.into_bytes()),
            "stale read at {i}"
        );
        // Pipelined write + read in one go, too.
        let w = format!("p{i}");
        let mut batch = common::encode(&["SET", "mine2", &w]);
        batch.extend(common::encode(&["GET", "mine2"]));
        writer.send_raw(&batch);
        assert_eq!(writer.read(), Resp::Simple("OK".into()));
        assert_eq!(
            writer.read(),
            Resp::Bulk(w.into_bytes()),
            "stale pipelined read at {i}"
        );
    }
    assert_eq!(
        slow.calls("get"),
        slow_reads_before,
        "the lagging replica served this client's reads"
    );
    // Replicas that caught up do serve the writer's reads (not everything went to the master).
    assert!(
        fast.calls("get") > 0,
        "no read-your-writes read was served by the caught-up replica"
    );
    // Another client that does not write keeps reading from every replica.
    let mut reader = proxy.client();
    let (slow_before, fast_before) = (slow.calls("get"), fast.calls("get"));
    for _ in 0..40 {
        let _ = reader.cmd(&["GET", "other"]);
    }
    assert!(
        slow.calls("get") > slow_before && fast.calls("get") > fast_before,
        "reads of a non-writer were not spread"
    );
    relay.pause(false);
}

/// SCAN, SSCAN, HSCAN and ZSCAN through a pool reading from two replicas: every call of a
/// walk goes to the replica that issued its cursor (the replicas' hash tables differ, so a
/// cursor means nothing on the other one), and a walk whose replica leaves the read pool
/// goes on from the start on the other one: nothing is missed. Prints the figures of issue
/// 10 item 1 (1,000 keys).
fn scan_walks_stay_on_the_replica_that_issued_the_cursor() {
    let mut s = stack("replica", "");
    let mut c = s.proxy.client();
    let keys: Vec<String> = (0..1000).map(|i| format!("sk:{i}")).collect();
    for chunk in keys.chunks(100) {
        let mut mset = vec!["MSET"];
        for k in chunk {
            mset.extend([k.as_str(), "v"]);
        }
        assert_eq!(c.cmd(&mset), Resp::Simple("OK".into()));
        let mut hset = vec!["HSET", "h"];
        let mut sadd = vec!["SADD", "s"];
        let mut zadd = vec!["ZADD", "z"];
        for k in chunk {
            hset.extend([k.as_str(), "v"]);
            sadd.push(k);
            zadd.extend(["1", k.as_str()]);
        }
        assert_eq!(c.cmd(&hset), Resp::Int(100));
        assert_eq!(c.cmd(&sadd), Resp::Int(100));
        assert_eq!(c.cmd(&zadd), Resp::Int(100));
    }
    for r in &s.replicas {
        r.wait_streaming(&s.master);
    }
    // Every round is walked (and its figures printed) before anything is asserted.
    let mut wrong = Vec::new();
    for prefix in [
        &["SCAN"][..],
        &["SSCAN", "s"],
        &["HSCAN", "h"],
        &["ZSCAN", "z"],
    ] {
        for round in 0..3 {
            let before: Vec<u64> = s
                .replicas
                .iter()
                .map(|r| r.calls(&cmd_stat(prefix)))
                .collect();
            let (got, calls) = full_scan(&mut c, prefix);
            let got: Vec<String> = got.into_iter().filter(|k| k.starts_with("sk:")).collect();
            let (missed, repeated) = misses_and_repeats(&keys, &got);
            let served: Vec<u64> = s
                .replicas
                .iter()
                .zip(&before)
                .map(|(r, b)| r.calls(&cmd_stat(prefix)) - b)
                .collect();
            eprintln!(
                "{} round {round}: {calls} calls, {missed} of {} keys missed, {repeated} repeated, calls per replica {served:?}",
                prefix[0],
                keys.len()
            );
            if (missed, repeated) != (0, 0) || served.iter().filter(|&&n| n > 0).count() != 1 {
                wrong.push(format!(
                    "{} round {round}: {missed} missed, {repeated} repeated, calls per replica {served:?}",
                    prefix[0]
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "walks that missed or repeated keys, or went to several replicas: {wrong:?}"
    );
    // The replica serving a walk dies in the middle of it: the walk goes on from the start
    // on the other replica (repeats allowed, no miss).
    let before: Vec<u64> = s.replicas.iter().map(|r| r.calls("scan")).collect();
    let reply = c.cmd(&["SCAN", "0", "COUNT", "10"]);
    let Resp::Array(parts) = reply else {
        panic!("SCAN: {reply:?}");
    };
    let mut got: Vec<String> = match &parts[1] {
        Resp::Array(items) => items.iter().map(Resp::text).collect(),
        other => panic!("SCAN keys: {other:?}"),
    };
    let used = s
        .replicas
        .iter()
        .zip(&before)
        .position(|(r, b)| r.calls("scan") > *b)
        .expect("a replica served the SCAN");
    s.replicas[used].kill();
    let mut cursor = parts[0].text();
    while cursor != "0" {
        match c.cmd(&["SCAN", &cursor, "COUNT", "10"]) {
            Resp::Array(parts) => {
                if let Resp::Array(items) = &parts[1] {
                    got.extend(items.iter().map(Resp::text));
                }
                cursor = parts[0].text();
            }
            other => panic!("SCAN after the replica died: {other:?}"),
        }
    }
    let got: Vec<String> = got.into_iter().filter(|k| k.starts_with("sk:")).collect();
    let (missed, _) = misses_and_repeats(&keys, &got);
    assert_eq!(missed, 0, "keys missed after the walk's replica died");
}

/// The `INFO commandstats` name of a scan command.
fn cmd_stat(prefix: &[&str]) -> String {
    prefix[0].to_ascii_lowercase()
}

/// A read that finds no replica in the read pool waits (up to `master_wait`) for one, rather
/// than failing at once: here the proxy has just started and the only replica is still
/// waiting for its first full sync (the master delays it by 2 s) when the read arrives.
fn a_read_waits_for_a_replica_to_join_the_read_pool() {
    let master = Redis::start_with(&["--repl-diskless-sync-delay", "2"]);
    assert_eq!(
        master.client().cmd(&["SET", "k", "v"]),
        Resp::Simple("OK".into())
    );
    let replica = Redis::replica_of(&master);
    let proxy = Sluice::start(&standalone_config(
        &master,
        &[&replica],
        "replica",
        "master_wait = \"30s\"",
    ));
    let (_, body) = proxy.http_get("/topology");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(
        v["pools"]["main"]["read_pool"].as_array().map(|a| a.len()),
        Some(0),
        "the replica synced before the test could read"
    );
    let started = Instant::now();
    assert_eq!(proxy.client().cmd(&["GET", "k"]), Resp::Bulk(b"v".to_vec()));
    eprintln!("the read waited {:?} for the replica", started.elapsed());
    assert_eq!(
        replica.calls("get"),
        1,
        "the read did not go to the replica"
    );
}

on_both_backends! {
    both: [
        get_set_round_trip,
        reads_go_to_replicas_and_never_to_the_master,
        ten_thousand_pipelined_requests_come_back_in_order,
        multi_exec_and_watch_abort,
        subscribe_and_publish_through_the_proxy,
        blpop_is_released_by_lpush_while_others_are_served,
        select_isolates_databases_under_multiplexing,
        auth_is_required_and_enforced,
        hello_3_gives_resp3_replies_while_resp2_clients_share_the_nodes,
        malformed_request_closes_only_that_client,
        denied_commands_get_a_clear_error_unless_allowed,
        killed_replica_leaves_the_read_pool_without_client_errors_and_rejoins,
        admin_endpoints_report_health_topology_and_metrics,
        ready_is_503_without_a_reachable_master,
        a_lagging_replica_leaves_the_read_pool_and_returns_when_caught_up,
        read_policies_when_no_replica_is_healthy,
        a_stuck_node_times_out_with_a_clear_error,
        client_name_and_id_are_per_connection,
        allowed_connection_state_commands_get_a_tunnel_of_their_own,
        replicas_keep_serving_reads_while_the_master_is_down,
        sigterm_stops_the_proxy_cleanly,
        resp2_replies_are_byte_identical_to_redis,
        reads_refused_with_loading_are_retried_on_another_node,
        read_your_writes_never_returns_an_older_value_while_a_replica_lags,
        scan_walks_stay_on_the_replica_that_issued_the_cursor,
        scripts_go_to_the_master_and_read_only_scripts_to_replicas,
    ],
    redis_only: [
        // Needs `repl-diskless-sync-delay` to take effect, which sluice node does not do.
        a_read_waits_for_a_replica_to_join_the_read_pool,
    ],
}
