//! Cluster mode against a Redis Cluster (3 masters + 3 replicas made with
//! `redis-cli --cluster create`) of real redis-server nodes (`on_redis::`) and of sluice
//! cluster nodes (`on_node::`).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{Cluster, NODE_TIMEOUT_MS};
use common::{wait_until, Client, Resp, Sluice};

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

fn bulk(s: &str) -> Resp {
    Resp::Bulk(s.as_bytes().to_vec())
}

fn is_error_with(r: &Resp, prefix: &str) -> bool {
    matches!(r, Resp::Error(e) if e.starts_with(prefix))
}

/// A proxy with one cluster pool, `c`, seeded with three of the cluster's nodes.
fn proxy(cluster: &Cluster, extra: &str) -> Sluice {
    proxy_seeded(&cluster.seeds(), extra)
}

/// A proxy with one cluster pool, `c`, with these seeds (`"a", "b"`).
fn proxy_seeded(seeds: &str, extra: &str) -> Sluice {
    Sluice::start(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[pools]]\nname = \"c\"\nlisten = \"127.0.0.1:0\"\n\
         mode = \"cluster\"\nseeds = [{seeds}]\nhealth_check_interval = \"200ms\"\n{extra}\n"
    ))
}

fn topology(proxy: &Sluice) -> serde_json::Value {
    let (_, body) = proxy.http_get("/topology");
    serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default()["pools"]["c"].clone()
}

/// Waits until the proxy's map has three shards, each with a readable replica.
fn wait_ready(proxy: &Sluice) {
    wait_ready_with(proxy, 1);
}

/// Waits until the proxy's map has three shards, each with `replicas` readable replicas.
fn wait_ready_with(proxy: &Sluice, replicas: usize) {
    wait_until(
        Duration::from_secs(30),
        "the proxy to learn the cluster",
        || {
            let t = topology(proxy);
            t["shards"].as_array().is_some_and(|shards| {
                shards.len() == 3
                    && shards.iter().all(|s| {
                        s["read_pool"]
                            .as_array()
                            .is_some_and(|r| r.len() == replicas)
                    })
            })
        },
    );
}

fn total_calls(nodes: &[&common::Redis], cmd: &str) -> u64 {
    nodes.iter().map(|n| n.calls(cmd)).sum()
}

/// A key whose slot `node` serves.
fn key_on(node: &common::Redis, prefix: &str) -> String {
    let mut c = node.client();
    (0..10_000)
        .map(|i| format!("{prefix}{i}"))
        .find(|k| matches!(c.cmd(&["CLUSTER", "KEYSLOT", k]), Resp::Int(slot) if Cluster::serves(node, slot)))
        .expect("a key on the node")
}

fn routes_splits_merges_and_answers_like_one_redis() {
    let cluster = Cluster::start(3, 1);
    let proxy = proxy(
        &cluster,
        "read_from = \"replica\"\nallow_commands = [\"FLUSHALL\"]\n",
    );
    wait_ready(&proxy);
    let mut c = proxy.client();

    // Plain commands by slot; reads go to replicas only.
    let (masters, replicas) = (cluster.masters(), cluster.replicas());
    let master_gets = total_calls(&masters, "get");
    let replica_gets = total_calls(&replicas, "get");
    for i in 0..60 {
        assert_eq!(c.cmd(&["SET", &format!("key:{i}"), &i.to_string()]), ok());
    }
    for i in 0..60 {
        let key = format!("key:{i}");
        wait_until(Duration::from_secs(5), "the write to replicate", || {
            c.cmd(&["GET", &key]) == bulk(&i.to_string())
        });
    }
    assert_eq!(
        total_calls(&masters, "get"),
        master_gets,
        "a GET reached a master"
    );
    assert!(total_calls(&replicas, "get") >= replica_gets + 60);
    for m in &masters {
        assert!(
            matches!(m.client().cmd(&["DBSIZE"]), Resp::Int(n) if n > 0),
            "every shard holds some of the keys"
        );
    }

    // Multi-key commands across all three shards: split per slot and merged.
    let keys: Vec<String> = (0..30).map(|i| format!("multi:{i}")).collect();
    let mut mset = vec!["MSET".to_string()];
    for (i, k) in keys.iter().enumerate() {
        mset.push(k.clone());
        mset.push(format!("v{i}"));
    }
    let args: Vec<&str> = mset.iter().map(String::as_str).collect();
    assert_eq!(c.cmd(&args), ok());
    let mut mget: Vec<&str> = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    mget.push("multi:missing");
    let mut expected: Vec<Resp> = (0..30).map(|i| bulk(&format!("v{i}"))).collect();
    expected.push(Resp::Nil);
    wait_until(Duration::from_secs(5), "MGET to see every value", || {
        c.cmd(&mget) == Resp::Array(expected.clone())
    });
    let mut exists = mget.clone();
    exists[0] = "EXISTS";
    assert_eq!(c.cmd(&exists), Resp::Int(30));
    let mut del = mget.clone();
    del[0] = "DEL";
    assert_eq!(c.cmd(&del), Resp::Int(30));

    // What cannot be split gets Redis's own errors.
    // A key without its value is not split off and dropped: the node refuses the whole
    // request, as Redis Cluster does.
    assert!(matches!(
        c.cmd(&["MSET", "odd:a", "1", "odd:b"]),
        Resp::Error(_)
    ));
    assert_eq!(c.cmd(&["EXISTS", "odd:a"]), Resp::Int(0));
    assert!(is_error_with(
        &c.cmd(&["MSETNX", "a", "1", "b", "2"]),
        "CROSSSLOT Keys in request don't hash to the same slot"
    ));
    // Scripting and functions.
    {
        assert!(is_error_with(
            &c.cmd(&["EVAL", "return 1", "2", "a", "b"]),
            "CROSSSLOT"
        ));
        assert_eq!(
            c.cmd(&[
                "EVAL",
                "return redis.call('SET', KEYS[1], ARGV[1])",
                "1",
                "{s}x",
                "7"
            ]),
            ok()
        );
        assert_eq!(c.cmd(&["EVAL", "return 5", "0"]), Resp::Int(5));
        // Functions: loaded on every master (each shard keeps its own), so FCALL works on keys
        // of every shard; cross-slot FCALL is refused like EVAL.
        let lib = "#!lua name=sluicelib\n\
                   redis.register_function('setget', function(keys, args) \
                   redis.call('SET', keys[1], args[1]) return redis.call('GET', keys[1]) end)";
        assert_eq!(c.cmd(&["FUNCTION", "LOAD", lib]), bulk("sluicelib"));
        for m in cluster.masters() {
            assert!(
                matches!(m.client().cmd(&["FUNCTION", "LIST"]), Resp::Array(l) if l.len() == 1),
                "FUNCTION LOAD did not reach {}",
                m.addr()
            );
        }
        for i in 0..12 {
            let key = format!("fcall:{i}");
            assert_eq!(
                c.cmd(&["FCALL", "setget", "1", &key, &i.to_string()]),
                bulk(&i.to_string())
            );
        }
        assert!(is_error_with(
            &c.cmd(&["FCALL", "setget", "2", "a", "b", "x"]),
            "CROSSSLOT"
        ));
        assert_eq!(c.cmd(&["FUNCTION", "DELETE", "sluicelib"]), ok());
        for m in cluster.masters() {
            assert_eq!(m.client().cmd(&["FUNCTION", "LIST"]), Resp::Array(vec![]));
        }
    }
    assert_eq!(
        c.cmd(&["SELECT", "1"]),
        Resp::Error("ERR SELECT is not allowed in cluster mode".into())
    );
    assert_eq!(c.cmd(&["SELECT", "0"]), ok());

    {
        // Scripts: loaded on every node (replicas too), so EVALSHA and EVALSHA_RO work anywhere.
        let sha = c
            .cmd(&["SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])"])
            .text();
        assert_eq!(
            c.cmd(&["SCRIPT", "EXISTS", &sha, "0000"]),
            Resp::Array(vec![Resp::Int(1), Resp::Int(0)])
        );
        for i in 0..10 {
            let key = format!("key:{i}");
            assert_eq!(c.cmd(&["EVALSHA", &sha, "1", &key]), bulk(&i.to_string()));
            assert_eq!(
                c.cmd(&["EVALSHA_RO", &sha, "1", &key]),
                bulk(&i.to_string())
            );
        }
    }

    // Transactions: pinned to the slot of the first keyed command.
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("QUEUED".into()));
    assert_eq!(c.cmd(&["SET", "{tx}a", "1"]), Resp::Simple("QUEUED".into()));
    assert_eq!(c.cmd(&["INCR", "{tx}b"]), Resp::Simple("QUEUED".into()));
    assert_eq!(
        c.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::Simple("PONG".into()), ok(), Resp::Int(1)])
    );
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["SET", "{tx}a", "2"]), Resp::Simple("QUEUED".into()));
    assert!(is_error_with(
        &c.cmd(&["SET", "{other}a", "2"]),
        "CROSSSLOT"
    ));
    assert!(is_error_with(&c.cmd(&["EXEC"]), "EXECABORT"));
    // Read on the master (a transaction runs there): reads go to replicas in this pool, and
    // a replica may not have the first transaction's write yet.
    assert_eq!(
        get_on_master(&mut c, "{tx}a"),
        bulk("1"),
        "the aborted SET did not run"
    );
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
    // Keys of a WATCH in two slots: Redis's own error, not wrapped in another prefix.
    assert_eq!(
        c.cmd(&["WATCH", "{a}1", "{b}2"]),
        Resp::Error("CROSSSLOT Keys in request don't hash to the same slot".into())
    );
    assert_eq!(
        c.cmd(&["CLUSTER", "KEYSLOT"]),
        Resp::Error("ERR wrong number of arguments for 'cluster|keyslot' command".into())
    );
    // WATCH pins to its key's slot; a change by another client voids the transaction.
    assert_eq!(c.cmd(&["WATCH", "{tx}a"]), ok());
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["SET", "{tx}a", "3"]), Resp::Simple("QUEUED".into()));
    assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![ok()]));
    assert_eq!(c.cmd(&["WATCH", "{tx}a"]), ok());
    assert_eq!(proxy.client().cmd(&["SET", "{tx}a", "4"]), ok());
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["SET", "{tx}a", "5"]), Resp::Simple("QUEUED".into()));
    assert_eq!(c.cmd(&["EXEC"]), Resp::Nil);
    assert_eq!(get_on_master(&mut c, "{tx}a"), bulk("4"));

    // RESP3 clients get merged replies in RESP3.
    let mut r3 = proxy.client();
    assert!(matches!(r3.cmd(&["HELLO", "3"]), Resp::Map(_)));
    assert_eq!(c.cmd(&["MSET", "{r3}a", "1", "{other}b", "2"]), ok());
    wait_until(Duration::from_secs(5), "MGET in RESP3", || {
        r3.cmd(&["MGET", "{r3}a", "{other}b", "{r3}missing"])
            == Resp::Array(vec![bulk("1"), bulk("2"), Resp::Nil])
    });

    // Fan-out: FLUSHALL (allowed by this pool's config; FLUSHDB is not, since a flush in a
    // cluster pool empties every master), then KEYS, DBSIZE and a full SCAN see every key
    // exactly once.
    assert!(is_error_with(
        &c.cmd(&["FLUSHDB"]),
        "ERR sluice: 'FLUSHDB' is not allowed through the proxy"
    ));
    assert_eq!(
        c.cmd(&["EXISTS", "{tx}a"]),
        Resp::Int(1),
        "a denied FLUSHDB ran"
    );
    assert_eq!(c.cmd(&["FLUSHALL"]), ok());
    let written: BTreeSet<String> = (0..300).map(|i| format!("scan:{i}")).collect();
    for k in &written {
        assert_eq!(c.cmd(&["SET", k, "x"]), ok());
    }
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(300));
    assert!(matches!(c.cmd(&["KEYS", "scan:*"]), Resp::Array(a) if a.len() == 300));
    let mut seen = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let Resp::Array(reply) = c.cmd(&["SCAN", &cursor, "COUNT", "20"]) else {
            panic!("SCAN reply");
        };
        cursor = reply[0].text();
        let Resp::Array(batch) = &reply[1] else {
            panic!("SCAN keys");
        };
        seen.extend(batch.iter().map(Resp::text));
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(
        c.cmd(&["SCAN"]),
        Resp::Error("ERR wrong number of arguments for 'scan' command".into())
    );
    assert_eq!(
        c.cmd(&["SCAN", "banana"]),
        Resp::Error("ERR invalid cursor".into())
    );
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), unique.len(), "SCAN returned a key twice");
    assert_eq!(unique, written);

    // Pub/sub: a SUBSCRIBE anywhere hears a PUBLISH sent anywhere (the cluster broadcasts);
    // SSUBSCRIBE and SPUBLISH meet on the channel's shard.
    let mut sub = proxy.client();
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "news"]),
        Resp::Array(vec![bulk("subscribe"), bulk("news"), Resp::Int(1)])
    );
    assert!(matches!(c.cmd(&["PUBLISH", "news", "hello"]), Resp::Int(_)));
    assert_eq!(
        sub.read(),
        Resp::Array(vec![bulk("message"), bulk("news"), bulk("hello")])
    );
    let mut ssub = proxy.client();
    assert_eq!(
        ssub.cmd(&["SSUBSCRIBE", "{s}chan"]),
        Resp::Array(vec![bulk("ssubscribe"), bulk("{s}chan"), Resp::Int(1)])
    );
    assert_eq!(c.cmd(&["SPUBLISH", "{s}chan", "hi"]), Resp::Int(1));
    assert_eq!(
        ssub.read(),
        Resp::Array(vec![bulk("smessage"), bulk("{s}chan"), bulk("hi")])
    );
    // PUBSUB introspection merges every master's answer: six more clients, whose classic
    // subscriptions the proxy keeps on the master of slot 0 (where PUBLISH goes too, so its
    // reply counts them all).
    let mut subs: Vec<_> = (0..6).map(|_| proxy.client()).collect();
    for (i, s) in subs.iter_mut().enumerate() {
        let channel = if i % 2 == 0 { "news" } else { "sport" };
        assert!(matches!(s.cmd(&["SUBSCRIBE", channel]), Resp::Array(_)));
        assert!(matches!(s.cmd(&["PSUBSCRIBE", "n*"]), Resp::Array(_)));
    }
    let holders: Vec<_> = cluster
        .masters()
        .into_iter()
        .filter(|m| m.client().cmd(&["PUBSUB", "NUMPAT"]) != Resp::Int(0))
        .collect();
    assert_eq!(holders.len(), 1, "the patterns are on one master");
    assert!(
        Cluster::serves(holders[0], 0),
        "the patterns' master serves slot 0"
    );
    assert_eq!(
        c.cmd(&["PUBSUB", "NUMSUB", "news", "sport", "none", "news"]),
        Resp::Array(vec![
            bulk("news"),
            Resp::Int(4),
            bulk("sport"),
            Resp::Int(3),
            bulk("none"),
            Resp::Int(0),
            bulk("news"),
            Resp::Int(4)
        ])
    );
    // One distinct pattern.
    assert_eq!(c.cmd(&["PUBSUB", "NUMPAT"]), Resp::Int(1));
    let Resp::Array(channels) = c.cmd(&["PUBSUB", "CHANNELS"]) else {
        panic!("PUBSUB CHANNELS");
    };
    let channels: BTreeSet<String> = channels.iter().map(Resp::text).collect();
    assert_eq!(channels.len(), 2, "{channels:?}");
    assert!(channels.contains("news") && channels.contains("sport"));
    assert_eq!(
        c.cmd(&["PUBSUB", "SHARDNUMSUB", "{s}chan"]),
        Resp::Array(vec![bulk("{s}chan"), Resp::Int(1)])
    );
    assert_eq!(
        c.cmd(&["PUBSUB", "SHARDCHANNELS"]),
        Resp::Array(vec![bulk("{s}chan")])
    );
    drop(subs);

    // Blocking commands wait on the key's shard without stalling other clients.
    let mut blocked = proxy.client();
    blocked.send(&["BLPOP", "{q}list", "10"]);
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
    wait_until(Duration::from_secs(5), "BLPOP to block", || {
        cluster.masters().iter().any(|m| {
            m.info("clients")
                .lines()
                .any(|l| l.starts_with("blocked_clients:") && !l.ends_with(":0"))
        })
    });
    assert_eq!(c.cmd(&["RPUSH", "{q}list", "job"]), Resp::Int(1));
    assert_eq!(
        blocked.read(),
        Resp::Array(vec![bulk("{q}list"), bulk("job")])
    );

    // Cluster-aware clients see a one-node cluster: the proxy.
    let Resp::Array(slots) = c.cmd(&["CLUSTER", "SLOTS"]) else {
        panic!("CLUSTER SLOTS");
    };
    let port = i64::from(proxy.pools[0].port());
    assert!(
        matches!(&slots[..], [Resp::Array(r)] if r[0] == Resp::Int(0)
        && r[1] == Resp::Int(16383)
        && matches!(&r[2], Resp::Array(n) if n[1] == Resp::Int(port)))
    );
    let client = redis::cluster::ClusterClient::new(vec![format!("redis://{}/", proxy.addr())])
        .expect("cluster client");
    let mut conn = client.get_connection().expect("cluster connection");
    for i in 0..20 {
        let key = format!("rc:{i}");
        redis::cmd("SET")
            .arg(&key)
            .arg(i)
            .query::<()>(&mut conn)
            .expect("SET through the cluster client");
    }
    let values: Vec<i64> = redis::cmd("MGET")
        .arg((0..20).map(|i| format!("rc:{i}")).collect::<Vec<_>>())
        .query(&mut conn)
        .expect("MGET through the cluster client");
    assert_eq!(values, (0..20).collect::<Vec<i64>>());
}

/// Issue 10 item 1 in cluster pools: SSCAN, HSCAN and ZSCAN of one key through a shard
/// with two replicas stay on the replica that issued the cursor (the replicas' hash tables
/// differ), so a walk misses and repeats nothing.
#[test]
fn keyed_scans_stay_on_the_replica_that_issued_the_cursor() {
    let cluster = Cluster::start(3, 2);
    let proxy = proxy(&cluster, "read_from = \"replica\"\n");
    wait_ready_with(&proxy, 2);
    let mut c = proxy.client();
    let members: Vec<String> = (0..1000).map(|i| format!("m:{i}")).collect();
    for chunk in members.chunks(100) {
        let mut hset = vec!["HSET", "{ks}h"];
        let mut sadd = vec!["SADD", "{ks}s"];
        let mut zadd = vec!["ZADD", "{ks}z"];
        for m in chunk {
            hset.extend([m.as_str(), "v"]);
            sadd.push(m);
            zadd.extend(["1", m.as_str()]);
        }
        assert_eq!(c.cmd(&hset), Resp::Int(100));
        assert_eq!(c.cmd(&sadd), Resp::Int(100));
        assert_eq!(c.cmd(&zadd), Resp::Int(100));
    }
    // The key's shard: the replicas that answer for it (the others redirect).
    let replicas: Vec<&common::Redis> = cluster
        .replicas()
        .into_iter()
        .filter(|r| {
            let mut rc = r.client();
            assert_eq!(rc.cmd(&["READONLY"]), ok());
            !matches!(rc.cmd(&["ZCARD", "{ks}z"]), Resp::Error(_))
        })
        .collect();
    assert_eq!(replicas.len(), 2, "the key's shard has two replicas");
    for r in &replicas {
        wait_until(Duration::from_secs(10), "replication of the key", || {
            let mut rc = r.client();
            rc.cmd(&["READONLY"]);
            rc.cmd(&["ZCARD", "{ks}z"]) == Resp::Int(1000)
        });
    }
    let mut wrong = Vec::new();
    for prefix in [
        &["SSCAN", "{ks}s"][..],
        &["HSCAN", "{ks}h"],
        &["ZSCAN", "{ks}z"],
    ] {
        let stat = prefix[0].to_ascii_lowercase();
        for round in 0..3 {
            let before: Vec<u64> = replicas.iter().map(|r| r.calls(&stat)).collect();
            let (got, calls) = common::full_scan(&mut c, prefix);
            let (missed, repeated) = common::misses_and_repeats(&members, &got);
            let served: Vec<u64> = replicas
                .iter()
                .zip(&before)
                .map(|(r, b)| r.calls(&stat) - b)
                .collect();
            eprintln!(
                "{} round {round}: {calls} calls, {missed} of 1000 missed, {repeated} repeated, calls per replica {served:?}",
                prefix[0]
            );
            if (missed, repeated) != (0, 0) || served.iter().filter(|&&n| n > 0).count() != 1 {
                wrong.push(format!("{} round {round}", prefix[0]));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "walks that missed, repeated or moved: {wrong:?}"
    );
}

/// Result of a load loop: errors seen (time, text) and the last value written per key.
#[derive(Default)]
struct Load {
    errors: Vec<(Instant, String)>,
    successes: Vec<Instant>,
    last: HashMap<String, u64>,
    /// Reads that returned an older value than the write just acknowledged (possible only
    /// when reads go to replicas, which replicate asynchronously).
    stale: usize,
    reads: usize,
}

/// Writes and reads back `keys` through the proxy until `stop`. With `replica_reads`, a read
/// older than the write before it is counted as stale rather than as an error.
fn load(
    addr: String,
    keys: Vec<String>,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Load>>,
    replica_reads: bool,
) {
    let mut c = Client::connect(&addr);
    let mut i: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = &keys[(i as usize) % keys.len()];
        let value = i.to_string();
        let set = c.cmd(&["SET", key, &value]);
        let now = Instant::now();
        let mut res = out.lock().expect("lock");
        if set == ok() {
            res.last.insert(key.clone(), i);
            res.successes.push(now);
            drop(res);
            let got = c.cmd(&["GET", key]);
            let mut res = out.lock().expect("lock");
            res.reads += 1;
            if got != bulk(&value) {
                if replica_reads && !matches!(got, Resp::Error(_)) {
                    res.stale += 1;
                } else {
                    res.errors.push((
                        Instant::now(),
                        format!("GET {key}: {got:?}, wanted {value}"),
                    ));
                }
            }
        } else {
            res.errors.push((now, format!("SET {key}: {set:?}")));
        }
        i += 1;
    }
}

fn resharding_under_load_shows_no_errors_and_loses_nothing() {
    reshard_under_load("master", "");
}

/// Issue 10 item 5: with reads on replicas, a reshard fails no read (a slot just fixed by a
/// MOVED keeps its new shard's replicas). Prints the figures (read errors, stale reads).
#[test]
fn resharding_with_replica_reads_fails_no_read() {
    reshard_under_load("replica", "max_replica_lag = \"1000\"\n");
}

/// Moves 1000 slots with `redis-cli --cluster reshard` under a write-then-read loop through
/// a pool with this `read_from`, then checks that no client saw an error and no key was lost.
fn reshard_under_load(read_from: &str, extra: &str) {
    const LOADERS: usize = 2;
    let cluster = Cluster::start(3, 1);
    let proxy = proxy(&cluster, &format!("read_from = \"{read_from}\"\n{extra}"));
    wait_ready(&proxy);
    let replica_reads = read_from != "master";
    let keys: Vec<String> = (0..2000).map(|i| format!("rs:{i}")).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let result = Arc::new(Mutex::new(Load::default()));
    let loaders: Vec<_> = (0..LOADERS)
        .map(|n| {
            let (addr, stop, result) = (proxy.addr(), stop.clone(), result.clone());
            let keys: Vec<String> = keys.iter().skip(n).step_by(LOADERS).cloned().collect();
            std::thread::spawn(move || load(addr, keys, stop, result, replica_reads))
        })
        .collect();
    wait_until(
        Duration::from_secs(30),
        "the load to write every key",
        || result.lock().expect("lock").last.len() == keys.len(),
    );
    let from = &cluster.nodes[0];
    let to = &cluster.nodes[1];
    let (from_id, to_id) = (Cluster::id(from), Cluster::id(to));
    let started = Instant::now();
    cluster.cli(
        from,
        &[
            "reshard",
            "--cluster-from",
            &from_id,
            "--cluster-to",
            &to_id,
            "--cluster-slots",
            "1000",
            "--cluster-yes",
        ],
    );
    eprintln!("reshard of 1000 slots took {:?}", started.elapsed());
    // The proxy's map follows (not only redirects): the target now serves 1000 more slots.
    wait_until(Duration::from_secs(10), "the proxy's map to follow", || {
        let t = topology(&proxy);
        t["shards"].as_array().is_some_and(|shards| {
            shards.iter().any(|s| {
                let count: u64 = s["slots"]
                    .as_array()
                    .map(|r| {
                        r.iter()
                            .map(|r| r[1].as_u64().unwrap_or(0) + 1 - r[0].as_u64().unwrap_or(0))
                            .sum()
                    })
                    .unwrap_or(0);
                s["master"]["addr"] == serde_json::json!(to.addr()) && count >= 6400
            })
        })
    });
    let writes_before = result.lock().expect("lock").successes.len();
    wait_until(
        Duration::from_secs(10),
        "more writes after the reshard",
        || result.lock().expect("lock").successes.len() > writes_before + 200,
    );
    stop.store(true, Ordering::Relaxed);
    for l in loaders {
        l.join().expect("loader");
    }
    let result = result.lock().expect("lock");
    eprintln!(
        "reshard, read_from = {read_from}: {} errors ({} on reads) of {} writes and {} reads, {} stale reads",
        result.errors.len(),
        result.errors.iter().filter(|e| e.1.starts_with("GET")).count(),
        result.successes.len(),
        result.reads,
        result.stale
    );
    assert!(
        result.errors.is_empty(),
        "{} client-visible errors, first: {:?}",
        result.errors.len(),
        result.errors.first().map(|e| &e.1)
    );
    let mut c = proxy.client();
    for (key, value) in &result.last {
        assert_eq!(c.cmd(&["GET", key]), bulk(&value.to_string()), "{key} lost");
    }
    // The load did meet redirects (and the client never saw them).
    let (_, metrics) = proxy.http_get("/metrics");
    let retries: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("sluice_retries_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    eprintln!("redirects and retries followed inside the proxy: {retries}");
    // (Reads waiting for a replica also refresh the map, which can then follow the reshard
    // before any request meets a redirect.)
    assert!(
        replica_reads || retries > 0.0,
        "no redirect was met during the reshard"
    );
}

/// A load loop over one key through `action`: (errors, time from first to last error, the
/// longest time without a successful write once the action started).
fn errors_during(
    proxy: &Sluice,
    key: &str,
    action: impl FnOnce() -> Instant,
    settled: impl Fn() -> bool,
) -> (usize, Option<Duration>, Option<Duration>) {
    let stop = Arc::new(AtomicBool::new(false));
    let result = Arc::new(Mutex::new(Load::default()));
    let loader = {
        let (addr, stop, result) = (proxy.addr(), stop.clone(), result.clone());
        let keys = vec![key.to_string()];
        std::thread::spawn(move || load(addr, keys, stop, result, false))
    };
    wait_until(Duration::from_secs(10), "the load to start", || {
        result.lock().expect("lock").successes.len() > 50
    });
    let t0 = action();
    wait_until(Duration::from_secs(30), "the cluster to settle", &settled);
    // Then some successful writes, so the end of the outage is visible.
    let n = result.lock().expect("lock").successes.len();
    wait_until(Duration::from_secs(20), "writes to succeed again", || {
        result.lock().expect("lock").successes.len() > n + 100
    });
    stop.store(true, Ordering::Relaxed);
    loader.join().expect("loader");
    let r = result.lock().expect("lock");
    let errors: Vec<&(Instant, String)> = r.errors.iter().filter(|(t, _)| *t >= t0).collect();
    for e in errors.iter().take(3) {
        eprintln!("error at +{:?}: {}", e.0 - t0, e.1);
    }
    let window = match (errors.first(), errors.last()) {
        (Some(a), Some(b)) => Some(b.0 - a.0),
        _ => None,
    };
    // The outage: the longest time without a successful write around and after t0 (a
    // request the proxy holds through a failover is an outage too, just not an error).
    let outage = r
        .successes
        .windows(2)
        .filter(|w| w[1] > t0)
        .map(|w| w[1] - w[0])
        .max();
    (errors.len(), window, outage)
}

/// True when the node at `addr` reports itself master.
fn cluster_ref_promoted(addr: &str) -> bool {
    let mut c = Client::connect(addr);
    matches!(c.cmd(&["INFO", "replication"]), Resp::Bulk(b) if String::from_utf8_lossy(&b).contains("role:master"))
}

fn failovers_interrupt_briefly() {
    let cluster = Cluster::start(3, 1);
    // The only seed is the replica that is promoted and then killed: the proxy must keep
    // following the cluster through the nodes it learned. Writes to a failed master are held
    // (not failed) until its replica takes over.
    let replica = cluster.replicas()[0];
    let proxy = proxy_seeded(
        &format!("\"{}\"", replica.addr()),
        "read_from = \"master\"\nmaster_wait = \"8s\"\n",
    );
    wait_ready(&proxy);

    // A manual failover: the replica takes over with the master's cooperation.
    let old_master_port = replica
        .info("replication")
        .lines()
        .find_map(|l| l.strip_prefix("master_port:"))
        .and_then(|p| p.trim().parse::<u16>().ok())
        .expect("master_port");
    let key = key_on(cluster.node(old_master_port), "fo:");
    let (errors, window, back) = errors_during(
        &proxy,
        &key,
        || {
            let t0 = Instant::now();
            assert_eq!(replica.client().cmd(&["CLUSTER", "FAILOVER"]), ok());
            t0
        },
        || replica.info("replication").contains("role:master"),
    );
    eprintln!("CLUSTER FAILOVER: {errors} errors over {window:?}, longest stall {back:?}");
    assert!(
        window.unwrap_or_default() <= Duration::from_secs(1),
        "errors for {window:?}"
    );

    // kill -9 of a master: its replica is promoted after the node timeout.
    let victim_port = replica.port;
    let key = key_on(cluster.node(victim_port), "kill:");
    // The old master, now the victim's replica, is the heir.
    let heir = old_master_port;
    let heir = cluster.node(heir).addr();
    let promoted_at = Mutex::new(None);
    let killed_at = Mutex::new(None);
    let mut cluster = cluster;
    let (errors, window, back) = errors_during(
        &proxy,
        &key,
        || {
            let t0 = Instant::now();
            *killed_at.lock().expect("lock") = Some(t0);
            cluster
                .nodes
                .iter_mut()
                .find(|n| n.port == victim_port)
                .expect("victim")
                .kill();
            t0
        },
        || {
            let promoted = cluster_ref_promoted(&heir);
            if promoted && promoted_at.lock().expect("lock").is_none() {
                *promoted_at.lock().expect("lock") = Some(Instant::now());
            }
            promoted
        },
    );
    if let (Some(p), Some(k)) = (
        *promoted_at.lock().expect("lock"),
        *killed_at.lock().expect("lock"),
    ) {
        eprintln!(
            "the cluster promoted the replica {:?} after the kill",
            p - k
        );
    }
    eprintln!("kill -9 of a master: {errors} errors over {window:?}, longest stall {back:?}");
    // Redis itself needs the node timeout plus an election (500-1000 ms, more on a loaded
    // machine) to promote the replica; the proxy must add little on top of that.
    let promoted = promoted_at
        .lock()
        .expect("lock")
        .zip(*killed_at.lock().expect("lock"))
        .map(|(p, k)| p - k)
        .expect("promotion seen");
    let limit = (Duration::from_millis(NODE_TIMEOUT_MS) + Duration::from_secs(2))
        .max(promoted + Duration::from_secs(1));
    assert!(
        back.is_some_and(|b| b <= limit),
        "writes stalled or failed for {back:?} (limit {limit:?})"
    );
}

fn ask_and_moved_redirects_are_followed_inside() {
    let cluster = Cluster::start(3, 0);
    let proxy = proxy(
        &cluster,
        "read_from = \"master\"\nrequest_timeout = \"500ms\"\n",
    );
    wait_ready_with(&proxy, 0);
    let (src, dst) = (&cluster.nodes[0], &cluster.nodes[1]);
    let key = key_on(src, "ask:");
    let Resp::Int(slot) = src.client().cmd(&["CLUSTER", "KEYSLOT", &key]) else {
        panic!("KEYSLOT");
    };
    let slot = slot.to_string();
    Cluster::start_migration(&slot, src, dst);
    let mut c = proxy.client();
    // The key is not on the source: it answers ASK, and the write lands on the target.
    assert_eq!(c.cmd(&["SET", &key, "here"]), ok());
    assert_eq!(
        dst.client().cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot]),
        Resp::Int(1)
    );
    assert_eq!(
        src.client().cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot]),
        Resp::Int(0)
    );
    assert_eq!(c.cmd(&["GET", &key]), bulk("here"));
    // Blocking commands follow ASK too: the list is not on the source, so it blocks (and
    // times out) on the target instead of showing the client a redirect.
    let list = format!("{{{key}}}:list");
    assert_eq!(c.cmd(&["BLPOP", &list, "0.1"]), Resp::Nil);
    // The migration ends: the source now answers MOVED, which the proxy follows and learns.
    cluster.finish_migration(&slot, src, dst);
    // A script longer than `request_timeout` is answered, whether it is sent again after a
    // MOVED (the proxy has not learnt the move yet) or not: it has no reply deadline.
    let script = "local t = redis.call('TIME') \
                  local start = t[1] * 1000000 + t[2] \
                  while true do \
                    local n = redis.call('TIME') \
                    if n[1] * 1000000 + n[2] - start > 1200000 then break end \
                  end \
                  return redis.call('GET', KEYS[1])";
    assert_eq!(c.cmd(&["EVAL", script, "1", &key]), bulk("here"));
    assert_eq!(c.cmd(&["GET", &key]), bulk("here"));
    assert_eq!(c.cmd(&["APPEND", &key, "!"]), Resp::Int(5));
    assert_eq!(c.cmd(&["GET", &key]), bulk("here!"));
    let slot: u64 = slot.parse().expect("slot");
    wait_until(
        Duration::from_secs(10),
        "the proxy's map to move the slot",
        || {
            let t = topology(&proxy);
            t["shards"].as_array().is_some_and(|shards| {
                shards.iter().any(|s| {
                    s["master"]["addr"] == serde_json::json!(dst.addr())
                        && s["slots"].as_array().is_some_and(|r| {
                            r.iter().any(|r| {
                                r[0].as_u64().is_some_and(|a| a <= slot)
                                    && r[1].as_u64().is_some_and(|b| slot <= b)
                            })
                        })
                })
            })
        },
    );
}

on_both_backends! {
    both: [
        routes_splits_merges_and_answers_like_one_redis,
        failovers_interrupt_briefly,
        ask_and_moved_redirects_are_followed_inside,
        resharding_under_load_shows_no_errors_and_loses_nothing,
    ],
    redis_only: [masters_get_no_readonly_connections, wait_counts_the_replicas_of_the_last_writes_shard],
}

/// The flags of every client a node lists (`CLIENT LIST`), one string per client.
fn client_flags(node: &common::Redis) -> Vec<String> {
    let Resp::Bulk(list) = node.client().cmd(&["CLIENT", "LIST"]) else {
        panic!("CLIENT LIST did not answer a bulk string");
    };
    String::from_utf8_lossy(&list)
        .lines()
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("flags=")))
        .map(str::to_string)
        .collect()
}

/// The proxy's connections to a master never send READONLY (a master demoted behind the
/// proxy's back then answers MOVED instead of serving a read from its replica data), and
/// its connections to replicas do (so that they serve reads).
fn masters_get_no_readonly_connections() {
    let cluster = Cluster::start(3, 1);
    let proxy = proxy(&cluster, "read_from = \"replica\"\n");
    wait_ready(&proxy);
    let mut c = proxy.client();
    for i in 0..30 {
        let key = format!("ro:{i}");
        assert_eq!(c.cmd(&["SET", &key, "1"]), ok());
        let _ = c.cmd(&["GET", &key]);
    }
    for master in cluster.masters() {
        let flags = client_flags(master);
        assert!(
            flags.iter().all(|f| !f.contains('r')),
            "a master lists a READONLY client: {flags:?}"
        );
    }
    for replica in cluster.replicas() {
        let flags = client_flags(replica);
        assert!(
            flags.iter().any(|f| f.contains('r')),
            "a replica lists no READONLY client of the proxy: {flags:?}"
        );
    }
}

/// GET on the key's master (inside a transaction, which runs there): in a pool that reads from
/// replicas, a plain GET right after a write may find a replica that does not have it yet.
fn get_on_master(c: &mut common::Client, key: &str) -> Resp {
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["GET", key]), Resp::Simple("QUEUED".into()));
    match c.cmd(&["EXEC"]) {
        Resp::Array(mut v) if v.len() == 1 => v.remove(0),
        other => panic!("EXEC of one GET answered {other:?}"),
    }
}

/// WAIT in a cluster pool counts the replicas of the shard of the client's last keyed write.
fn wait_counts_the_replicas_of_the_last_writes_shard() {
    let cluster = Cluster::start(3, 1);
    let proxy = proxy(&cluster, "");
    wait_ready(&proxy);
    let mut c = proxy.client();
    for master in cluster.masters() {
        let key = key_on(master, "waited:");
        assert_eq!(c.cmd(&["SET", &key, "1"]), ok());
        assert_eq!(
            c.cmd(&["WAIT", "1", "10000"]),
            Resp::Int(1),
            "WAIT after {key}"
        );
        // The shard's replica has it: the count was about this write's shard.
        let replica = cluster.replicas().into_iter().find(|r| {
            let mut rc = r.client();
            let _ = rc.cmd(&["READONLY"]);
            rc.cmd(&["GET", &key]) == bulk("1")
        });
        assert!(
            replica.is_some(),
            "no replica has {key} after WAIT answered 1"
        );
    }
    // More replicas than the shard has: the count at the timeout, as Redis answers.
    let started = Instant::now();
    assert_eq!(c.cmd(&["WAIT", "2", "200"]), Resp::Int(1));
    assert!(started.elapsed() >= Duration::from_millis(190));
}
