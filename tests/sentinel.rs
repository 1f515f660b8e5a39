//! Sentinel mode against real redis-server + redis-sentinel processes.

mod common;

use std::time::Duration;

use common::{full_group, wait_until, Client, Redis, Resp, Sentinel, Sluice};

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
fn a_killed_master_is_replaced_without_failed_writes_and_gets_no_writes_when_back() {
    let (mut master, replicas, sentinels) = full_group("kgrp");
    let all: Vec<&Sentinel> = sentinels.iter().collect();
    let proxy = proxy(
        &all,
        "kgrp",
        "read_from = \"prefer-replica\"\nmaster_wait = \"15s\"\n",
    );
    wait_until(Duration::from_secs(10), "master from sentinel", || {
        topology(&proxy)["master"]["addr"] == master.addr()
    });
    let switched = switch_master_watch(&sentinels);
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
    let resumed = std::time::Instant::now();
    let named_at = switched
        .recv_timeout(Duration::from_secs(5))
        .expect("sentinel published +switch-master");
    let after_switch = resumed.saturating_duration_since(named_at);
    eprintln!(
        "kill -9: sentinel named the new master {:?} after the kill; the held write completed \
         {:+} ms from that ({:?} after the kill), 0 client-visible errors",
        named_at - killed,
        resumed.duration_since(killed).as_millis() as i64
            - named_at.duration_since(killed).as_millis() as i64,
        resumed - killed
    );
    assert!(
        after_switch <= Duration::from_secs(1),
        "writes resumed {after_switch:?} after sentinel named the new master"
    );
    let named = sentinels[0]
        .client()
        .cmd(&["SENTINEL", "get-master-addr-by-name", "kgrp"]);
    let Resp::Array(parts) = &named else {
        panic!("{named:?}")
    };
    let new_addr = format!("127.0.0.1:{}", parts[1].text());
    let replica = replicas
        .iter()
        .find(|r| r.addr() == new_addr)
        .expect("a replica was promoted");
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
    // The conversion ends with CLIENT KILL TYPE normal on that node (Redis's sentinel does
    // the same), which can cut this very INFO request: that is not a failure.
    let converted = || {
        let mut info = master.client();
        info.send(&["INFO", "replication"]);
        info.try_read()
            .is_ok_and(|r| r.text().contains("role:slave"))
    };
    while started.elapsed() < Duration::from_secs(15) && !converted() {
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

/// Records when the first of `sentinels` publishes `+switch-master` (the moment sentinel
/// itself names the new master; the failover leader does so before the others learn it).
fn switch_master_watch(sentinels: &[Sentinel]) -> std::sync::mpsc::Receiver<std::time::Instant> {
    let (tx, rx) = std::sync::mpsc::channel();
    for sentinel in sentinels {
        let mut sub = sentinel.client();
        sub.send(&["SUBSCRIBE", "+switch-master"]);
        assert!(matches!(sub.read(), Resp::Array(_)));
        let tx = tx.clone();
        std::thread::spawn(move || {
            sub.set_timeout(Duration::from_secs(120));
            if let Ok(Resp::Array(_)) = sub.try_read() {
                let _ = tx.send(std::time::Instant::now());
            }
        });
    }
    rx
}

#[test]
fn sentinel_failover_with_prefer_replica_reads_fails_no_write_and_reads_almost_nothing_stale() {
    let (master, replicas, sentinels) = full_group("fgrp");
    let all: Vec<&Sentinel> = sentinels.iter().collect();
    let proxy = proxy(
        &all,
        "fgrp",
        "read_from = \"prefer-replica\"\nmaster_wait = \"10s\"\n",
    );
    wait_until(Duration::from_secs(10), "master and replicas", || {
        let t = topology(&proxy);
        t["master"]["addr"] == master.addr()
            && t["replicas"].as_array().is_some_and(|r| {
                r.iter()
                    .filter(|r| r["health"]["state"] == "healthy")
                    .count()
                    == 2
            })
    });
    // Reads spread over both replicas; writes only on the master.
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["SET", "spread", "v"]), Resp::Simple("OK".into()));
    for r in &replicas {
        wait_until(Duration::from_secs(5), "replication", || {
            r.client().cmd(&["GET", "spread"]) == Resp::Bulk(b"v".to_vec())
        });
    }
    let gets_before: Vec<u64> = replicas.iter().map(|r| r.calls("get")).collect();
    let (master_gets, master_sets) = (master.calls("get"), master.calls("set"));
    for _ in 0..100 {
        assert_eq!(c.cmd(&["GET", "spread"]), Resp::Bulk(b"v".to_vec()));
        assert_eq!(c.cmd(&["SET", "spread", "v"]), Resp::Simple("OK".into()));
    }
    let served: Vec<u64> = replicas
        .iter()
        .zip(&gets_before)
        .map(|(r, b)| r.calls("get") - b)
        .collect();
    assert_eq!(served.iter().sum::<u64>(), 100, "replica GETs: {served:?}");
    assert!(
        served.iter().all(|&n| n >= 25),
        "reads not spread: {served:?}"
    );
    assert_eq!(
        master.calls("get"),
        master_gets,
        "a read reached the master"
    );
    assert_eq!(master.calls("set") - master_sets, 100);
    let changes_before = proxy_metric(&proxy, "sluice_topology_changes_total{pool=\"orders\"}");
    let run = failover_under_load(&proxy, &sentinels, "fgrp");
    let FailoverRun {
        n,
        reads,
        stale,
        ref failed_writes,
        ref errors,
        longest_gap,
        ref stale_at,
        ref last,
        ..
    } = run;
    let new_master = topology(&proxy)["master"]["addr"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(new_master, master.addr());
    assert!(replicas.iter().any(|r| r.addr() == new_master));
    let window = match (failed_writes.first(), failed_writes.last()) {
        (Some(a), Some(b)) => *b - *a,
        _ => Duration::ZERO,
    };
    eprintln!(
        "SENTINEL FAILOVER: {n} writes, {} failed over {window:?}, longest write pause {longest_gap:?}, \
         {stale} of {reads} reads stale ({:.3}%), errors {:?}",
        failed_writes.len(),
        100.0 * stale as f64 / reads as f64,
        &errors[..errors.len().min(5)]
    );
    eprintln!(
        "stale reads, ms from +switch-master: {:?}",
        ms_from(run.switched_at, stale_at)
    );
    assert!(
        errors.iter().all(|e| !e.starts_with("READONLY")),
        "READONLY reached the client: {errors:?}"
    );
    assert!(
        window <= Duration::from_secs(1),
        "writes failed for {window:?}"
    );
    assert!(
        stale * 100 <= reads,
        "{stale} of {reads} reads returned a value older than the client's own write"
    );
    // Every acknowledged write is on the new master, at least as new as acknowledged.
    let mut check = Client::connect(&new_master);
    for (k, &v) in last.iter().enumerate() {
        if v == 0 {
            continue;
        }
        let got = match check.cmd(&["GET", &format!("f{k}")]) {
            Resp::Bulk(b) => String::from_utf8_lossy(&b).parse::<u64>().unwrap_or(0),
            _ => 0,
        };
        assert!(got >= v, "key f{k}: acknowledged {v}, new master has {got}");
    }
    // Metrics and /topology show the failover.
    assert!(
        proxy_metric(&proxy, "sluice_topology_changes_total{pool=\"orders\"}") > changes_before
    );
    let (_, metrics) = proxy.http_get("/metrics");
    assert!(
        metrics.contains(&format!(
            "sluice_node_is_master{{pool=\"orders\",node=\"{new_master}\"}} 1"
        )),
        "current master not in metrics"
    );
}

/// What a write-then-read loop saw through a `SENTINEL FAILOVER`.
struct FailoverRun {
    /// Writes sent.
    n: u64,
    reads: u64,
    /// Reads that returned a value older than the client's own last acknowledged write.
    stale: u64,
    failed_writes: Vec<std::time::Instant>,
    /// Error replies (writes and reads).
    errors: Vec<String>,
    /// Error replies to reads.
    read_errors: Vec<String>,
    longest_gap: Duration,
    stale_at: Vec<std::time::Instant>,
    /// The last value acknowledged per key.
    last: Vec<u64>,
    switched_at: std::time::Instant,
}

/// Runs a write-then-read loop over 100 keys through `proxy`, asks `sentinels[0]` for a
/// failover of `group` after 200 writes, and keeps going until 8 s after `+switch-master`
/// (the old master keeps claiming its role for seconds and the other replica resyncs).
fn failover_under_load(proxy: &Sluice, sentinels: &[Sentinel], group: &str) -> FailoverRun {
    let mut c = proxy.client();
    let switched = switch_master_watch(sentinels);
    const KEYS: usize = 100;
    let mut last = vec![0u64; KEYS];
    let (mut reads, mut stale, mut n) = (0u64, 0u64, 0u64);
    let mut failed_writes: Vec<std::time::Instant> = Vec::new();
    let (mut errors, mut read_errors) = (Vec::new(), Vec::new());
    let mut last_ok = std::time::Instant::now();
    let mut longest_gap = Duration::ZERO;
    let mut stale_at = Vec::new();
    let mut failover_sent = false;
    let mut switch_seen: Option<std::time::Instant> = None;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(90) {
        n += 1;
        let k = (n as usize) % KEYS;
        let key = format!("f{k}");
        match c.cmd(&["SET", &key, &n.to_string()]) {
            Resp::Simple(ok) if ok == "OK" => {
                last[k] = n;
                let now = std::time::Instant::now();
                longest_gap = longest_gap.max(now - last_ok);
                last_ok = now;
            }
            Resp::Error(e) => {
                failed_writes.push(std::time::Instant::now());
                errors.push(e);
            }
            other => panic!("unexpected {other:?}"),
        }
        reads += 1;
        match c.cmd(&["GET", &key]) {
            Resp::Bulk(v) => {
                let seen: u64 = String::from_utf8_lossy(&v).parse().unwrap_or(0);
                if seen < last[k] {
                    stale += 1;
                    stale_at.push(std::time::Instant::now());
                }
            }
            Resp::Nil if last[k] > 0 => {
                stale += 1;
                stale_at.push(std::time::Instant::now());
            }
            Resp::Nil => {}
            Resp::Error(e) => {
                read_errors.push(e.clone());
                errors.push(e);
            }
            other => panic!("unexpected {other:?}"),
        }
        if n >= 200 && !failover_sent {
            failover_sent = sentinels[0].client().cmd(&["SENTINEL", "FAILOVER", group])
                == Resp::Simple("OK".into());
        }
        if switch_seen.is_none() {
            switch_seen = switched.try_recv().ok();
        }
        if switch_seen.is_some_and(|t| t.elapsed() > Duration::from_secs(8)) {
            break;
        }
    }
    let switched_at = match (failover_sent, switch_seen) {
        (true, Some(t)) => t,
        _ => panic!("no failover happened"),
    };
    FailoverRun {
        n,
        reads,
        stale,
        failed_writes,
        errors,
        read_errors,
        longest_gap,
        stale_at,
        last,
        switched_at,
    }
}

/// Issue 10 item 4: with `read_from = "replica"`, reads through a `SENTINEL FAILOVER` wait
/// for a replica of the new master instead of failing with "no healthy replica", and the
/// failover adds no stale read. Prints the figures (read errors, stale reads).
#[test]
fn sentinel_failover_with_replica_reads_fails_no_read() {
    let (master, _replicas, sentinels) = full_group("rgrp");
    let all: Vec<&Sentinel> = sentinels.iter().collect();
    let proxy = proxy(
        &all,
        "rgrp",
        "read_from = \"replica\"\nmaster_wait = \"10s\"\n",
    );
    wait_until(Duration::from_secs(10), "master and replicas", || {
        let t = topology(&proxy);
        t["master"]["addr"] == master.addr()
            && t["read_pool"].as_array().is_some_and(|r| r.len() == 2)
    });
    let run = failover_under_load(&proxy, &sentinels, "rgrp");
    let rel = ms_from(run.switched_at, &run.stale_at);
    eprintln!(
        "SENTINEL FAILOVER, read_from = replica: {} writes, {} failed; {} of {} reads failed, {} stale; \
         longest write pause {:?}; first errors {:?}; stale reads, ms from +switch-master: {rel:?}",
        run.n,
        run.failed_writes.len(),
        run.read_errors.len(),
        run.reads,
        run.stale,
        run.longest_gap,
        &run.read_errors[..run.read_errors.len().min(3)],
    );
    assert!(
        run.read_errors.is_empty(),
        "reads failed: {:?}",
        &run.read_errors[..run.read_errors.len().min(5)]
    );
    assert!(
        run.failed_writes.is_empty(),
        "writes failed: {:?}",
        run.errors
    );
}

/// Milliseconds from `origin` to each of `times` (negative: before it).
fn ms_from(origin: std::time::Instant, times: &[std::time::Instant]) -> Vec<i64> {
    times
        .iter()
        .map(|t| match t.checked_duration_since(origin) {
            Some(d) => d.as_millis() as i64,
            None => -(origin.duration_since(*t).as_millis() as i64),
        })
        .collect()
}

/// The value of one metric series, 0 when absent.
fn proxy_metric(proxy: &Sluice, series: &str) -> f64 {
    let (_, metrics) = proxy.http_get("/metrics");
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

// The same proxy tests with sluice sentinels (over sluice nodes and over redis-server) and
// with redis-sentinel over sluice nodes: the sentinel role and the data node each stand in
// for Redis's.
on_sentinel_stacks! {
    all: [a_killed_master_is_replaced_without_failed_writes_and_gets_no_writes_when_back],
    nodes_only: [
        follows_the_master_and_replicas_named_by_sentinel_through_a_failover,
        two_pools_follow_two_master_groups_of_the_same_sentinel,
        tracking_continues_when_one_sentinel_dies,
        sentinel_failover_with_replica_reads_fails_no_read,
    ],
}
