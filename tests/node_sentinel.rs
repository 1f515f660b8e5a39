//! `sluice sentinel`: the sentinel role on its own, against real clients and next to Redis's
//! own sentinel. (The proxy's sentinel tests also run on sluice sentinels: tests/sentinel.rs.)

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{full_group, wait_until, Backend, Redis, Resp, Sentinel, SentinelKind};

/// The field names of a SENTINEL MASTER / REPLICAS entry.
fn field_names(entry: &Resp) -> BTreeSet<String> {
    let Resp::Array(items) = entry else {
        panic!("not a field list: {entry:?}")
    };
    items.chunks(2).map(|kv| kv[0].text()).collect()
}

fn field(entry: &Resp, name: &str) -> String {
    let Resp::Array(items) = entry else {
        panic!("not a field list: {entry:?}")
    };
    items
        .chunks(2)
        .find(|kv| kv[0].text() == name)
        .map(|kv| kv[1].text())
        .unwrap_or_else(|| panic!("no field {name} in {entry:?}"))
}

fn first(reply: Resp) -> Resp {
    match reply {
        Resp::Array(mut v) if !v.is_empty() => v.remove(0),
        other => panic!("expected a non-empty array: {other:?}"),
    }
}

#[test]
fn a_bad_config_line_is_refused_with_file_line_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("bad.conf");
    std::fs::write(
        &conf,
        "port 0\nsentinel monitor m 127.0.0.1 6379 2\nsentinel down-after-milliseconds other 1000\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["sentinel", "--config"])
        .arg(&conf)
        .output()
        .expect("run sluice sentinel");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:3: no such master \"other\"", conf.display())),
        "{err}"
    );
}

/// Field names and commands match Redis's sentinel, watching the same master side by side.
#[test]
fn replies_have_the_fields_of_redis_sentinel() {
    Backend::Node.run(|| {
        let master = Redis::start();
        let replica = Redis::replica_of(&master);
        replica.wait_streaming(&master);
        let redis_sentinel = Sentinel::start(&master, "grp");
        SentinelKind::Sluice.select();
        let ours = Sentinel::start(&master, "grp");
        for s in [&redis_sentinel, &ours] {
            wait_until(Duration::from_secs(20), "replica discovery", || {
                matches!(s.client().cmd(&["SENTINEL", "replicas", "grp"]), Resp::Array(r) if r.len() == 1)
            });
        }
        let (mut theirs, mut mine) = (redis_sentinel.client(), ours.client());
        for cmd in [&["SENTINEL", "master", "grp"][..], &["SENTINEL", "replicas", "grp"]] {
            let a = theirs.cmd(cmd);
            let b = mine.cmd(cmd);
            let (a, b) = if cmd[1] == "master" { (a, b) } else { (first(a), first(b)) };
            let missing: Vec<_> = field_names(&a).difference(&field_names(&b)).cloned().collect();
            assert!(missing.is_empty(), "{cmd:?}: sluice lacks {missing:?}");
        }
        let m = mine.cmd(&["SENTINEL", "master", "grp"]);
        assert_eq!(field(&m, "port"), master.port.to_string());
        assert_eq!(field(&m, "flags"), "master");
        assert_eq!(field(&m, "num-slaves"), "1");
        // The same answers as Redis for the rest.
        for cmd in [
            &["SENTINEL", "get-master-addr-by-name", "grp"][..],
            &["SENTINEL", "get-master-addr-by-name", "nope"],
            &["SENTINEL", "master", "nope"],
            &["SENTINEL", "is-master-down-by-addr", "127.0.0.1", &master.port.to_string(), "0", "*"],
            &["ROLE"],
        ] {
            assert_eq!(mine.cmd(cmd), theirs.cmd(cmd), "{cmd:?}");
        }
        let id = mine.cmd(&["SENTINEL", "myid"]).text();
        assert!(id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        let info = mine.cmd(&["INFO", "sentinel"]).text();
        assert!(
            info.contains(&format!(
                "master0:name=grp,status=ok,address=127.0.0.1:{},slaves=1,sentinels=1",
                master.port
            )),
            "{info}"
        );
        // MONITOR, SET and REMOVE, with their events.
        let mut events = ours.client();
        events.send(&["PSUBSCRIBE", "*"]);
        assert!(matches!(events.read(), Resp::Array(_)));
        let port = replica.port.to_string();
        assert_eq!(
            mine.cmd(&["SENTINEL", "MONITOR", "other", "127.0.0.1", &port, "1"]),
            Resp::Simple("OK".into())
        );
        assert_eq!(
            mine.cmd(&["SENTINEL", "MONITOR", "other", "127.0.0.1", &port, "1"]),
            theirs.cmd(&["SENTINEL", "MONITOR", "grp", "127.0.0.1", &port, "1"]),
            "a duplicate name is refused as Redis does"
        );
        let ev = events.read();
        assert_eq!(
            ev,
            Resp::Array(vec![
                Resp::Bulk(b"pmessage".to_vec()),
                Resp::Bulk(b"*".to_vec()),
                Resp::Bulk(b"+monitor".to_vec()),
                Resp::Bulk(format!("master other 127.0.0.1 {port} #quorum 1").into_bytes()),
            ])
        );
        assert_eq!(
            mine.cmd(&["SENTINEL", "SET", "other", "down-after-milliseconds", "2000"]),
            Resp::Simple("OK".into())
        );
        assert_eq!(
            field(&mine.cmd(&["SENTINEL", "master", "other"]), "down-after-milliseconds"),
            "2000"
        );
        assert!(matches!(
            mine.cmd(&["SENTINEL", "SET", "other", "down-after-milliseconds", "soon"]),
            Resp::Error(e) if e.starts_with("ERR Invalid argument")
        ));
        assert_eq!(mine.cmd(&["SENTINEL", "REMOVE", "other"]), Resp::Simple("OK".into()));
        assert_eq!(
            mine.cmd(&["SENTINEL", "master", "other"]),
            theirs.cmd(&["SENTINEL", "master", "other"])
        );
        assert!(matches!(
            mine.cmd(&["SENTINEL", "CKQUORUM", "grp"]),
            Resp::Simple(s) if s == "OK 1 usable Sentinels. Quorum and failover authorization can be reached"
        ));
        // RESET forgets the replicas; the master's INFO brings them back.
        assert_eq!(mine.cmd(&["SENTINEL", "RESET", "g*"]), Resp::Int(1));
        wait_until(Duration::from_secs(20), "replicas found again after RESET", || {
            matches!(mine.cmd(&["SENTINEL", "replicas", "grp"]), Resp::Array(r) if r.len() == 1)
        });
        assert!(matches!(mine.cmd(&["NOSUCHCOMMAND", "x"]), Resp::Error(e) if e.starts_with("ERR unknown command 'NOSUCHCOMMAND'")));
    });
}

/// The `redis` crate's sentinel client finds the master through sluice sentinels and, after
/// the master dies and the sentinels fail over, the new one.
#[test]
fn the_redis_crate_sentinel_client_follows_a_failover_by_sluice_sentinels() {
    SentinelKind::Sluice.run(Backend::Node, || {
        use redis::sentinel::{SentinelClient, SentinelServerType};
        let (mut master, replicas, sentinels) = full_group("crate");
        let urls: Vec<String> = sentinels
            .iter()
            .map(|s| format!("redis://{}", s.addr()))
            .collect();
        let mut client =
            SentinelClient::build(urls, "crate".into(), None, SentinelServerType::Master)
                .expect("sentinel client");
        let mut conn = client.get_connection().expect("a connection to the master");
        let _: () = redis::cmd("SET")
            .arg("k")
            .arg("v1")
            .query(&mut conn)
            .expect("SET");
        assert_eq!(
            master.client().cmd(&["GET", "k"]),
            Resp::Bulk(b"v1".to_vec())
        );
        for r in &replicas {
            wait_until(Duration::from_secs(10), "replication", || {
                r.client().cmd(&["GET", "k"]) == Resp::Bulk(b"v1".to_vec())
            });
        }
        master.kill();
        let mut written = false;
        wait_until(
            Duration::from_secs(30),
            "the client to reach a new master",
            || {
                let Ok(mut conn) = client.get_connection() else {
                    return false;
                };
                written = redis::cmd("SET")
                    .arg("k")
                    .arg("v2")
                    .query::<()>(&mut conn)
                    .is_ok();
                written
            },
        );
        // Once every sentinel names it, the failover is over (no more REPLICAOF orders
        // with their CLIENT KILL): it must be the replica that took the write.
        let mut named = String::new();
        wait_until(
            Duration::from_secs(20),
            "every sentinel to name the new master",
            || {
                let answers: BTreeSet<String> = sentinels
                    .iter()
                    .map(|s| {
                        match s
                            .client()
                            .cmd(&["SENTINEL", "get-master-addr-by-name", "crate"])
                        {
                            Resp::Array(p) => format!("127.0.0.1:{}", p[1].text()),
                            other => format!("{other:?}"),
                        }
                    })
                    .collect();
                named = answers.iter().next().cloned().unwrap_or_default();
                answers.len() == 1 && named != master.addr()
            },
        );
        let promoted = replicas
            .iter()
            .find(|r| r.addr() == named)
            .unwrap_or_else(|| panic!("{named} is not one of the replicas"));
        assert_eq!(
            promoted.client().cmd(&["GET", "k"]),
            Resp::Bulk(b"v2".to_vec())
        );
        assert!(promoted.info("replication").contains("role:master"));
    });
}

/// The sentinel writes its state into its config file, as Redis does, and a restart from
/// that file keeps its id, its replicas and the other sentinels.
#[test]
fn the_config_file_keeps_id_replicas_and_peers_across_a_restart() {
    SentinelKind::Sluice.run(Backend::Node, || {
        let (_master, replicas, mut sentinels) = full_group("kept");
        let s = &mut sentinels[0];
        let id = s.client().cmd(&["SENTINEL", "MYID"]).text();
        assert_eq!(
            s.client().cmd(&["SENTINEL", "FLUSHCONFIG"]),
            Resp::Simple("OK".into())
        );
        let text = std::fs::read_to_string(s.conf()).expect("read the config");
        assert!(text.contains(&format!("sentinel myid {id}")), "{text}");
        for r in &replicas {
            assert!(
                text.contains(&format!("sentinel known-replica kept 127.0.0.1 {}", r.port)),
                "{text}"
            );
        }
        assert_eq!(
            text.matches("sentinel known-sentinel kept ").count(),
            2,
            "{text}"
        );
        s.restart();
        let mut c = s.client();
        assert_eq!(c.cmd(&["SENTINEL", "MYID"]).text(), id);
        // Known from the file at once, before any INFO or hello.
        assert!(
            matches!(c.cmd(&["SENTINEL", "sentinels", "kept"]), Resp::Array(p) if p.len() == 2)
        );
        assert!(matches!(c.cmd(&["SENTINEL", "replicas", "kept"]), Resp::Array(r) if r.len() == 2));
    });
}

/// A redis-sentinel and two sluice sentinels watch one group together: they find each other
/// through the same hello messages, agree the master is down, and all name one new master.
#[test]
fn sluice_and_redis_sentinels_fail_over_together() {
    Backend::Redis.run(|| {
        let mut master = Redis::start();
        let replicas: Vec<Redis> = (0..2).map(|_| Redis::replica_of(&master)).collect();
        for r in &replicas {
            r.wait_streaming(&master);
        }
        SentinelKind::Redis.select();
        let mut sentinels = vec![Sentinel::start_quorum(&master, "mixed", 2)];
        SentinelKind::Sluice.select();
        sentinels.push(Sentinel::start_quorum(&master, "mixed", 2));
        sentinels.push(Sentinel::start_quorum(&master, "mixed", 2));
        for s in &sentinels {
            wait_until(Duration::from_secs(30), "the sentinels to know each other", || {
                let mut c = s.client();
                matches!(c.cmd(&["SENTINEL", "sentinels", "mixed"]), Resp::Array(p) if p.len() == 2)
                    && matches!(c.cmd(&["SENTINEL", "replicas", "mixed"]), Resp::Array(r) if r.len() == 2)
            });
        }
        master.kill();
        let addrs: Vec<String> = replicas.iter().map(Redis::addr).collect();
        let mut agreed = String::new();
        wait_until(Duration::from_secs(40), "all three to name the same replica", || {
            let named: BTreeSet<String> = sentinels
                .iter()
                .map(|s| match s.client().cmd(&["SENTINEL", "get-master-addr-by-name", "mixed"]) {
                    Resp::Array(p) => format!("127.0.0.1:{}", p[1].text()),
                    other => format!("{other:?}"),
                })
                .collect();
            agreed = named.iter().next().cloned().unwrap_or_default();
            named.len() == 1 && addrs.contains(&agreed)
        });
        let promoted = replicas.iter().find(|r| r.addr() == agreed).expect("named replica");
        wait_until(Duration::from_secs(10), "the named replica to be master", || {
            promoted.info("replication").contains("role:master")
        });
    });
}
