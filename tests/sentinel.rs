//! Sentinel mode against real redis-server + redis-sentinel processes.

mod common;

use std::time::Duration;

use common::{wait_until, Redis, Resp, Sentinel, Sluice};

fn topology(proxy: &Sluice) -> serde_json::Value {
    let (_, body) = proxy.http_get("/topology");
    serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default()["pools"]["orders"].clone()
}

/// A master with `replicas` replicas that replicate, and a sentinel that knows them all as
/// group `name`.
fn group(name: &str, replicas: usize) -> (Redis, Vec<Redis>, Sentinel) {
    let master = Redis::start();
    let reps: Vec<Redis> = (0..replicas).map(|_| Redis::replica_of(&master)).collect();
    for r in &reps {
        r.wait_streaming(&master);
    }
    let sentinel = Sentinel::start(&master, name);
    wait_until(
        Duration::from_secs(20),
        "sentinel to discover the replicas",
        || matches!(sentinel.client().cmd(&["SENTINEL", "replicas", name]), Resp::Array(r) if r.len() == replicas),
    );
    (master, reps, sentinel)
}

/// A proxy with one sentinel pool, `orders`, following `name` through `sentinels`.
fn proxy(sentinels: &[&Sentinel], name: &str, extra: &str) -> Sluice {
    let list: Vec<String> = sentinels
        .iter()
        .map(|s| format!("\"{}\"", s.addr()))
        .collect();
    Sluice::start(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[pools]]\nname = \"orders\"\nlisten = \"127.0.0.1:0\"\n\
         mode = \"sentinel\"\nsentinels = [{}]\nmaster_name = \"{name}\"\nhealth_check_interval = \"100ms\"\n{extra}\n",
        list.join(", ")
    ))
}

/// Asks for a failover until the sentinel accepts it (it answers NOGOODSLAVE until it has
/// fresh INFO from a replica).
fn failover(sentinel: &Sentinel, name: &str) {
    wait_until(
        Duration::from_secs(40),
        "sentinel to accept the failover",
        || sentinel.client().cmd(&["SENTINEL", "FAILOVER", name]) == Resp::Simple("OK".into()),
    );
}

#[test]
fn follows_the_master_and_replicas_named_by_sentinel_through_a_failover() {
    let (master, replicas, sentinel) = group("mymaster", 1);
    let replica = &replicas[0];
    let proxy = proxy(&[&sentinel], "mymaster", "read_from = \"replica\"\n");
    wait_until(
        Duration::from_secs(10),
        "master and read pool from sentinel",
        || {
            let t = topology(&proxy);
            t["master"]["addr"] == master.addr()
                && t["read_pool"].as_array().map(Vec::len) == Some(1)
        },
    );
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["SET", "k", "v1"]), Resp::Simple("OK".into()));
    wait_until(Duration::from_secs(5), "replication", || {
        replica.client().cmd(&["GET", "k"]) == Resp::Bulk(b"v1".to_vec())
    });
    let before = replica.calls("get");
    for _ in 0..10 {
        assert_eq!(c.cmd(&["GET", "k"]), Resp::Bulk(b"v1".to_vec()));
    }
    assert_eq!(
        replica.calls("get") - before,
        10,
        "reads must come from the replica"
    );
    assert_eq!(master.calls("get"), 0);

    // A failover: the proxy follows the new master and writes land there.
    failover(&sentinel, "mymaster");
    wait_until(
        Duration::from_secs(30),
        "the proxy to follow the new master",
        || topology(&proxy)["master"]["addr"] == replica.addr(),
    );
    wait_until(Duration::from_secs(10), "a write through the proxy", || {
        c.cmd(&["SET", "k", "v2"]) == Resp::Simple("OK".into())
    });
    assert_eq!(
        replica.client().cmd(&["GET", "k"]),
        Resp::Bulk(b"v2".to_vec())
    );
    let (_, metrics) = proxy.http_get("/metrics");
    assert!(
        metrics.contains("sluice_topology_changes_total{pool=\"orders\"}"),
        "{metrics}"
    );
}

#[test]
fn with_every_sentinel_down_the_last_topology_keeps_serving() {
    let (master, replicas, mut sentinel) = group("grp", 1);
    let replica = &replicas[0];
    let proxy = proxy(&[&sentinel], "grp", "read_from = \"replica\"");
    wait_until(Duration::from_secs(10), "topology from sentinel", || {
        let t = topology(&proxy);
        t["master"]["addr"] == master.addr() && t["read_pool"].as_array().map(Vec::len) == Some(1)
    });
    sentinel.kill();
    wait_until(
        Duration::from_secs(10),
        "/topology to report the sentinels unreachable",
        || topology(&proxy)["source_reachable"] == false,
    );
    let (_, metrics) = proxy.http_get("/metrics");
    assert!(
        metrics.contains("sluice_topology_source_up{pool=\"orders\"} 0"),
        "{metrics}"
    );
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Resp::Simple("OK".into()));
    wait_until(Duration::from_secs(5), "replication", || {
        replica.client().cmd(&["GET", "k"]) == Resp::Bulk(b"v".to_vec())
    });
    assert_eq!(c.cmd(&["GET", "k"]), Resp::Bulk(b"v".to_vec()));
    assert_eq!(topology(&proxy)["master"]["addr"], master.addr());
}

#[test]
fn a_failover_under_writes_shows_no_readonly_and_loses_no_acknowledged_write() {
    let (master, replicas, sentinel) = group("wgrp", 1);
    let replica = &replicas[0];
    let proxy = proxy(
        &[&sentinel],
        "wgrp",
        "read_from = \"prefer-replica\"\nmaster_wait = \"10s\"\n",
    );
    wait_until(Duration::from_secs(10), "master from sentinel", || {
        topology(&proxy)["master"]["addr"] == master.addr()
    });
    let mut c = proxy.client();
    let mut acknowledged = Vec::new();
    let mut errors = Vec::new();
    let mut failover_sent = false;
    let start = std::time::Instant::now();
    let mut i = 0u32;
    while start.elapsed() < Duration::from_secs(40) {
        i += 1;
        let key = format!("w{i}");
        match c.cmd(&["SET", &key, "x"]) {
            Resp::Simple(ok) if ok == "OK" => acknowledged.push(key),
            Resp::Error(e) => errors.push(e),
            other => panic!("unexpected {other:?}"),
        }
        if i >= 50 && !failover_sent {
            // Sentinel refuses (NOGOODSLAVE) until it has fresh INFO from the replica.
            failover_sent = sentinel.client().cmd(&["SENTINEL", "FAILOVER", "wgrp"])
                == Resp::Simple("OK".into());
        }
        if failover_sent && i > 200 && topology(&proxy)["master"]["addr"] == replica.addr() {
            break;
        }
    }
    assert!(failover_sent);
    assert_eq!(
        topology(&proxy)["master"]["addr"],
        replica.addr(),
        "the proxy never followed the failover"
    );
    assert!(
        errors.iter().all(|e| !e.starts_with("READONLY")),
        "READONLY reached the client: {errors:?}"
    );
    // Writes acknowledged before the switch replicated to the new master before it was
    // promoted (SENTINEL FAILOVER waits for the replica to catch up); later ones went to it.
    wait_until(Duration::from_secs(40), "old master demoted", || {
        master.info("replication").contains("role:slave")
    });
    let mut check = replica.client();
    eprintln!(
        "failover under writes: {} acknowledged, {} failed: {:?}",
        acknowledged.len(),
        errors.len(),
        errors
    );
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|k| check.cmd(&["EXISTS", k]) != Resp::Int(1))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes missing on the new master: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(errors.len() < 20, "too many failed writes: {errors:?}");
}

#[test]
fn a_killed_master_is_replaced_without_failed_writes_and_gets_no_writes_when_back() {
    let (mut master, replicas, sentinel) = group("kgrp", 1);
    let replica = &replicas[0];
    let proxy = proxy(
        &[&sentinel],
        "kgrp",
        "read_from = \"prefer-replica\"\nmaster_wait = \"15s\"\n",
    );
    wait_until(Duration::from_secs(10), "master from sentinel", || {
        topology(&proxy)["master"]["addr"] == master.addr()
    });
    let mut c = proxy.client();
    for i in 0..20 {
        assert_eq!(
            c.cmd(&["SET", &format!("before{i}"), "x"]),
            Resp::Simple("OK".into())
        );
    }
    master.kill();
    let killed = std::time::Instant::now();
    // The next write waits for the failover instead of failing.
    assert_eq!(c.cmd(&["SET", "during", "x"]), Resp::Simple("OK".into()));
    let waited = killed.elapsed();
    let named = sentinel
        .client()
        .cmd(&["SENTINEL", "get-master-addr-by-name", "kgrp"]);
    assert_eq!(
        named,
        Resp::Array(vec![
            Resp::Bulk(b"127.0.0.1".to_vec()),
            Resp::Bulk(replica.port.to_string().into_bytes())
        ])
    );
    eprintln!("write resumed {waited:?} after kill -9 of the master");
    assert_eq!(
        replica.client().cmd(&["GET", "during"]),
        Resp::Bulk(b"x".to_vec())
    );
    // The old master restarts (empty, as a master) and is turned into a replica: it gets no
    // writes, and clients see no error.
    let old_addr = master.addr();
    let old_writes = || {
        let (_, metrics) = proxy.http_get("/metrics");
        let series =
            format!("sluice_requests_total{{pool=\"orders\",node=\"{old_addr}\",class=\"write\"}}");
        metrics
            .lines()
            .find(|l| l.starts_with(&series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let before_restart = old_writes();
    assert!(
        before_restart >= 20.0,
        "writes to the old master were not counted: {before_restart}"
    );
    master.restart();
    for i in 0..50 {
        assert_eq!(
            c.cmd(&["SET", &format!("after{i}"), "x"]),
            Resp::Simple("OK".into())
        );
    }
    // Sentinel converts a returning master only after it has reported the wrong role for a
    // while (INFO every 10 s, then a grace period; on a loaded machine much longer). Keep
    // writing, error-free, for 15 s or until it is converted: the returned master must get
    // none of these writes either way.
    let started = std::time::Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(15)
        && !master.info("replication").contains("role:slave")
    {
        n += 1;
        assert_eq!(
            c.cmd(&["SET", &format!("meanwhile{n}"), "x"]),
            Resp::Simple("OK".into())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 0..20 {
        assert_eq!(
            c.cmd(&["SET", &format!("later{i}"), "x"]),
            Resp::Simple("OK".into())
        );
    }
    assert_eq!(
        old_writes(),
        before_restart,
        "the restarted old master received writes"
    );
    let mut new_master = replica.client();
    for i in 0..50 {
        assert_eq!(
            new_master.cmd(&["EXISTS", &format!("after{i}")]),
            Resp::Int(1)
        );
    }
}

#[test]
fn two_pools_follow_two_master_groups_of_the_same_sentinel() {
    let a = Redis::start();
    let b = Redis::start();
    let sentinel = Sentinel::start(&a, "ga");
    sentinel.monitor(&b, "gb");
    let pool = |name: &str, group: &str| {
        format!(
            "[[pools]]\nname = \"{name}\"\nlisten = \"127.0.0.1:0\"\nmode = \"sentinel\"\nsentinels = [\"{}\"]\n\
             master_name = \"{group}\"\nhealth_check_interval = \"100ms\"\n",
            sentinel.addr()
        )
    };
    let proxy = Sluice::start(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n{}\n{}",
        pool("orders", "ga"),
        pool("cache", "gb")
    ));
    let (_, body) = proxy.http_get("/topology");
    assert!(body.contains("orders") && body.contains("cache"), "{body}");
    let mut orders = common::Client::connect(&proxy.pools[0].to_string());
    let mut cache = common::Client::connect(&proxy.pools[1].to_string());
    wait_until(
        Duration::from_secs(10),
        "both pools to have their master",
        || {
            orders.cmd(&["SET", "which", "orders"]) == Resp::Simple("OK".into())
                && cache.cmd(&["SET", "which", "cache"]) == Resp::Simple("OK".into())
        },
    );
    assert_eq!(
        a.client().cmd(&["GET", "which"]),
        Resp::Bulk(b"orders".to_vec())
    );
    assert_eq!(
        b.client().cmd(&["GET", "which"]),
        Resp::Bulk(b"cache".to_vec())
    );
    // The two pools share their sentinel connections: one subscription and one query
    // connection in all, not two of each.
    let ours = || {
        sentinel
            .client()
            .cmd(&["CLIENT", "LIST"])
            .text()
            .lines()
            .filter(|l| l.contains("name=sluice-sentinel"))
            .count()
    };
    wait_until(
        Duration::from_secs(10),
        "the query connection to be named",
        || ours() == 2,
    );
    assert_eq!(
        ours(),
        2,
        "{}",
        sentinel.client().cmd(&["CLIENT", "LIST"]).text()
    );
}

#[test]
fn a_killed_replica_leaves_the_read_pool_fast_and_rejoins() {
    let (_master, mut replicas, sentinel) = group("rgrp", 2);
    let proxy = proxy(&[&sentinel], "rgrp", "read_from = \"replica\"");
    let (replica, other) = replicas.split_at_mut(1);
    let (replica, other) = (&mut replica[0], &other[0]);
    let pool_size = |p: &Sluice| topology(p)["read_pool"].as_array().map(Vec::len);
    wait_until(
        Duration::from_secs(10),
        "two replicas in the read pool",
        || pool_size(&proxy) == Some(2),
    );
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Resp::Simple("OK".into()));
    wait_until(Duration::from_secs(5), "replication", || {
        other.client().cmd(&["GET", "k"]) == Resp::Bulk(b"v".to_vec())
    });
    replica.kill();
    let killed = std::time::Instant::now();
    while pool_size(&proxy) != Some(1) {
        assert_eq!(
            c.cmd(&["GET", "k"]),
            Resp::Bulk(b"v".to_vec()),
            "client-visible error after the kill"
        );
        assert!(
            killed.elapsed() < Duration::from_secs(1),
            "the killed replica stayed in the read pool"
        );
    }
    for _ in 0..20 {
        assert_eq!(c.cmd(&["GET", "k"]), Resp::Bulk(b"v".to_vec()));
    }
    replica.restart();
    wait_until(
        Duration::from_secs(30),
        "the restarted replica to rejoin",
        || pool_size(&proxy) == Some(2),
    );
}

#[test]
fn tracking_continues_when_one_sentinel_dies() {
    let (master, replicas, mut first) = group("sgrp", 1);
    let replica = &replicas[0];
    let second = Sentinel::start(&master, "sgrp");
    wait_until(
        Duration::from_secs(20),
        "the second sentinel to discover the replica",
        || matches!(second.client().cmd(&["SENTINEL", "replicas", "sgrp"]), Resp::Array(r) if r.len() == 1),
    );
    let proxy = proxy(&[&first, &second], "sgrp", "master_wait = \"15s\"");
    wait_until(Duration::from_secs(10), "master from sentinel", || {
        topology(&proxy)["master"]["addr"] == master.addr()
    });
    first.kill();
    failover(&second, "sgrp");
    wait_until(
        Duration::from_secs(30),
        "the proxy to follow through the remaining sentinel",
        || topology(&proxy)["master"]["addr"] == replica.addr(),
    );
    assert_eq!(topology(&proxy)["source_reachable"], true);
    assert_eq!(
        proxy.client().cmd(&["SET", "k", "v"]),
        Resp::Simple("OK".into())
    );
    assert_eq!(
        replica.client().cmd(&["GET", "k"]),
        Resp::Bulk(b"v".to_vec())
    );
}
