//! Sentinel mode against real redis-server + redis-sentinel processes.

mod common;

use std::time::Duration;

use common::{wait_until, Redis, Resp, Sentinel, Sluice};

fn topology(proxy: &Sluice) -> serde_json::Value {
    let (_, body) = proxy.http_get("/topology");
    serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default()["pools"]["orders"].clone()
}

#[test]
fn follows_the_master_and_replicas_named_by_sentinel_through_a_failover() {
    let master = Redis::start();
    let replica = Redis::replica_of(&master);
    replica.wait_synced();
    let sentinel = Sentinel::start(&master, "mymaster");
    wait_until(
        Duration::from_secs(20),
        "sentinel to discover the replica",
        || matches!(sentinel.client().cmd(&["SENTINEL", "replicas", "mymaster"]), Resp::Array(r) if r.len() == 1),
    );
    let proxy = Sluice::start(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[pools]]\nname = \"orders\"\nlisten = \"127.0.0.1:0\"\n\
         mode = \"sentinel\"\nsentinels = [\"{}\"]\nmaster_name = \"mymaster\"\nread_from = \"replica\"\n\
         health_check_interval = \"100ms\"\n",
        sentinel.addr()
    ));
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
    assert_eq!(
        sentinel.client().cmd(&["SENTINEL", "FAILOVER", "mymaster"]),
        Resp::Simple("OK".into())
    );
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
    let master = Redis::start();
    let replica = Redis::replica_of(&master);
    replica.wait_synced();
    let mut sentinel = Sentinel::start(&master, "grp");
    wait_until(
        Duration::from_secs(20),
        "sentinel to discover the replica",
        || matches!(sentinel.client().cmd(&["SENTINEL", "replicas", "grp"]), Resp::Array(r) if r.len() == 1),
    );
    let proxy = Sluice::start(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[pools]]\nname = \"orders\"\nlisten = \"127.0.0.1:0\"\n\
         mode = \"sentinel\"\nsentinels = [\"{}\"]\nmaster_name = \"grp\"\nread_from = \"replica\"\n\
         health_check_interval = \"100ms\"\n",
        sentinel.addr()
    ));
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
