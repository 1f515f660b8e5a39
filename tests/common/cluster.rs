//! A real Redis Cluster for tests: `masters` masters with `replicas` replicas each, made with
//! `redis-cli --cluster create`, waited on until every node agrees the cluster is ok and every
//! replica has synced. Nodes are killed when the `Cluster` is dropped.

use std::process::Command;
use std::time::Duration;

use super::{candidate_port, wait_until, Redis, Resp};

/// Cluster node timeout used by the tests (ms): failover detection takes about this long.
pub const NODE_TIMEOUT_MS: u64 = 1500;

/// A running cluster.
pub struct Cluster {
    /// Every node, masters first as created (roles change with failovers: ask the nodes).
    pub nodes: Vec<Redis>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts and forms a cluster of `masters` masters, each with `replicas` replicas.
    pub fn start(masters: usize, replicas: usize) -> Cluster {
        Cluster::start_with(masters, replicas, &[])
    }

    /// [`Cluster::start`] with extra redis-server arguments for every node (kept across
    /// restarts), e.g. `--appendonly yes`; each node has its own AOF directory.
    pub fn start_with(masters: usize, replicas: usize, extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let total = masters * (1 + replicas);
        let nodes: Vec<Redis> = (0..total).map(|i| start_node(&dir, i, extra)).collect();
        let addrs: Vec<String> = nodes.iter().map(Redis::addr).collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli must be installed");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Cluster { nodes, _dir: dir };
        cluster.wait_healthy(masters, replicas);
        cluster
    }

    /// Waits until every node reports `cluster_state:ok` and knows `masters` masters with
    /// `replicas` online replicas each, and every replica's link is up.
    pub fn wait_healthy(&self, masters: usize, replicas: usize) {
        wait_until(
            Duration::from_secs(60),
            "the cluster to become healthy",
            || {
                self.nodes.iter().all(|n| {
                let info = n.client().cmd(&["CLUSTER", "INFO"]);
                let ok = matches!(&info, Resp::Bulk(b) if String::from_utf8_lossy(b).contains("cluster_state:ok"));
                let repl = n.info("replication");
                let synced = !repl.contains("role:slave")
                    || (repl.contains("master_link_status:up")
                        && repl.contains("master_sync_in_progress:0"));
                ok && synced && shard_shape(n) == Some((masters, replicas))
            })
            },
        );
    }

    /// Starts one more cluster-enabled node, not yet part of the cluster (for
    /// `redis-cli --cluster add-node`); returns its port.
    pub fn spawn_node(&mut self) -> u16 {
        let node = start_node(&self._dir, self.nodes.len(), &[]);
        let port = node.port;
        self.nodes.push(node);
        port
    }

    /// Address of the node on `port`.
    pub fn node(&self, port: u16) -> &Redis {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .expect("node of the cluster")
    }

    /// Nodes that are masters now.
    pub fn masters(&self) -> Vec<&Redis> {
        self.nodes.iter().filter(|n| is_master(n)).collect()
    }

    /// Nodes that are replicas now.
    pub fn replicas(&self) -> Vec<&Redis> {
        self.nodes.iter().filter(|n| !is_master(n)).collect()
    }

    /// `"a","b",...` of the nodes, for a config's `seeds`.
    pub fn seeds(&self) -> String {
        self.nodes
            .iter()
            .take(3)
            .map(|n| format!("\"{}\"", n.addr()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The id of a node (`CLUSTER MYID`).
    pub fn id(node: &Redis) -> String {
        node.client().cmd(&["CLUSTER", "MYID"]).text()
    }

    /// A sluice with one cluster pool `c` in front of this cluster (and an admin server),
    /// returned once it knows `masters` shards. `extra` adds pool settings; the map is
    /// refreshed every 200 ms unless `extra` sets `health_check_interval`.
    pub fn proxy(&self, masters: usize, extra: &str) -> super::Sluice {
        let interval = if extra.contains("health_check_interval") {
            ""
        } else {
            "health_check_interval = \"200ms\"\n"
        };
        let proxy = super::Sluice::start(&format!(
            "[admin]\nlisten = \"127.0.0.1:0\"\n\n[[pools]]\nname = \"c\"\nlisten = \"127.0.0.1:0\"\n\
             mode = \"cluster\"\nseeds = [{}]\n{interval}{extra}\n",
            self.seeds()
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

    /// True when `node` serves `slot`, by its own `CLUSTER SLOTS`.
    pub fn serves(node: &Redis, slot: i64) -> bool {
        let Resp::Array(ranges) = node.client().cmd(&["CLUSTER", "SLOTS"]) else {
            return false;
        };
        let port = i64::from(node.port);
        ranges.iter().any(|r| {
            let Resp::Array(items) = r else { return false };
            matches!((items.first(), items.get(1), items.get(2)),
                (Some(Resp::Int(a)), Some(Resp::Int(b)), Some(Resp::Array(m)))
                    if *a <= slot && slot <= *b && m.get(1) == Some(&Resp::Int(port)))
        })
    }

    /// Starts moving `slot` from `src` to `dst` (IMPORTING on `dst`, MIGRATING on `src`):
    /// from now on `src` answers ASK for keys it no longer has.
    pub fn start_migration(slot: &str, src: &Redis, dst: &Redis) {
        let (src_id, dst_id) = (Cluster::id(src), Cluster::id(dst));
        let ok = Resp::Simple("OK".into());
        let importing = ["CLUSTER", "SETSLOT", slot, "IMPORTING", &src_id];
        assert_eq!(dst.client().cmd(&importing), ok, "{importing:?}");
        let migrating = ["CLUSTER", "SETSLOT", slot, "MIGRATING", &dst_id];
        assert_eq!(src.client().cmd(&migrating), ok, "{migrating:?}");
    }

    /// Moves `slot` with its `keys` from `src` to `dst` the way Redis's own resharding does:
    /// [`Cluster::start_migration`], MIGRATE, then [`Cluster::finish_migration`].
    pub fn move_slot(&self, slot: &str, src: &Redis, dst: &Redis, keys: &[&str]) {
        Cluster::start_migration(slot, src, dst);
        let ok = Resp::Simple("OK".into());
        if !keys.is_empty() {
            let port = dst.port.to_string();
            let mut migrate = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            migrate.extend_from_slice(keys);
            assert_eq!(src.client().cmd(&migrate), ok, "{migrate:?}");
        }
        self.finish_migration(slot, src, dst);
    }

    /// Ends a migration of `slot` from `src` to `dst`: SETSLOT NODE on the target, the
    /// source, then every other master.
    pub fn finish_migration(&self, slot: &str, src: &Redis, dst: &Redis) {
        let ok = Resp::Simple("OK".into());
        let dst_id = Cluster::id(dst);
        let others = self
            .masters()
            .into_iter()
            .filter(|m| m.port != src.port && m.port != dst.port);
        for node in [dst, src].into_iter().chain(others) {
            let set = ["CLUSTER", "SETSLOT", slot, "NODE", &dst_id];
            assert_eq!(node.client().cmd(&set), ok, "{set:?} on {}", node.addr());
        }
    }

    /// Runs `redis-cli --cluster <args>` against `via`; panics on failure.
    pub fn cli(&self, via: &Redis, args: &[&str]) -> String {
        match Cluster::try_cli(via, args) {
            Ok(text) => text,
            Err(text) => panic!("redis-cli --cluster {args:?} failed: {text}"),
        }
    }

    /// Runs `redis-cli --cluster <args>` against `via`: its output, as `Err` if it failed.
    pub fn try_cli(via: &Redis, args: &[&str]) -> Result<String, String> {
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg(args[0])
            .arg(via.addr())
            .args(&args[1..])
            .output()
            .expect("redis-cli");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// Waits until `redis-cli --cluster check` passes (the nodes learn a change by gossip,
    /// so right after one they may not agree yet) and returns its output.
    pub fn wait_check(via: &Redis) -> String {
        let mut last = Err(String::new());
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            last = Cluster::try_cli(via, &["check"]);
            if last.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        last.unwrap_or_else(|text| panic!("redis-cli --cluster check kept failing: {text}"))
    }
}

fn is_master(n: &Redis) -> bool {
    n.info("replication").contains("role:master")
}

/// (masters with slots, minimum online replicas per such master) as `CLUSTER SHARDS` says.
fn shard_shape(n: &Redis) -> Option<(usize, usize)> {
    let Resp::Array(shards) = n.client().cmd(&["CLUSTER", "SHARDS"]) else {
        return None;
    };
    let mut masters = 0;
    let mut min_replicas = usize::MAX;
    for shard in shards {
        let Resp::Array(fields) = shard else {
            return None;
        };
        let get = |key: &str| {
            fields
                .chunks(2)
                .find(|c| c[0].text() == key)
                .map(|c| c[1].clone())
        };
        let Some(Resp::Array(slots)) = get("slots") else {
            return None;
        };
        if slots.is_empty() {
            continue;
        }
        let Some(Resp::Array(nodes)) = get("nodes") else {
            return None;
        };
        let mut online_replicas = 0;
        for node in nodes {
            let Resp::Array(f) = node else { return None };
            let field = |key: &str| {
                f.chunks(2)
                    .find(|c| c[0].text() == key)
                    .map(|c| c[1].text())
            };
            if field("health").as_deref() != Some("online") {
                return None;
            }
            if field("role").as_deref() == Some("replica") {
                online_replicas += 1;
            }
        }
        masters += 1;
        min_replicas = min_replicas.min(online_replicas);
    }
    Some((masters, if masters == 0 { 0 } else { min_replicas }))
}

/// Data and bus ports taken by this process's cluster nodes: tests run in parallel, and a
/// new node whose port another node already holds would see that node answer its PING.
static USED: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// One cluster-enabled redis-server; its bus port is fixed below the ephemeral range.
fn start_node(dir: &tempfile::TempDir, i: usize, more: &[&str]) -> Redis {
    for _ in 0..50 {
        let port = candidate_port();
        let bus_port = port - 10000;
        {
            let mut used = USED.lock().unwrap_or_else(|e| e.into_inner());
            if used.contains(&port) || used.contains(&bus_port) {
                continue;
            }
            used.extend([port, bus_port]);
        }
        let bus = bus_port.to_string();
        let conf = dir
            .path()
            .join(format!("nodes-{i}-{port}.conf"))
            .to_string_lossy()
            .into_owned();
        let timeout = NODE_TIMEOUT_MS.to_string();
        // Replicas write the RDB of their full sync to disk: keep it in this cluster's own
        // directory, so no later server on the same port loads it.
        let dbfile = format!("dump-{i}-{port}.rdb");
        let dbdir = dir.path().to_string_lossy().into_owned();
        // The nodes share a directory: each keeps its AOF (if it has one) in its own folder.
        let aofdir = format!("aof-{i}-{port}");
        let mut extra = vec![
            "--dir",
            dbdir.as_str(),
            "--dbfilename",
            dbfile.as_str(),
            "--appenddirname",
            aofdir.as_str(),
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            conf.as_str(),
            "--cluster-node-timeout",
            timeout.as_str(),
            "--cluster-port",
            bus.as_str(),
        ];
        extra.extend_from_slice(more);
        if let Some(r) = Redis::try_start(port, &extra) {
            // A fresh node knows only itself; anything else is some other server's port.
            let fresh = matches!(r.client().cmd(&["CLUSTER", "INFO"]),
                Resp::Bulk(b) if String::from_utf8_lossy(&b).contains("cluster_known_nodes:1\r\n"));
            if fresh && r.client().cmd(&["DBSIZE"]) == Resp::Int(0) {
                return r;
            }
        }
    }
    panic!("could not start a cluster node on any port");
}
