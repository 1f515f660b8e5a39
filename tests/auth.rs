//! Client users (`auth = "users"`): logging in, access levels and key patterns with Redis's
//! own refusal texts (compared with redis-server's ACL), metrics, reloads that change users
//! under connected clients, and the config checks.

mod common;

use std::path::Path;
use std::time::Duration;

use common::cluster::Cluster;
use common::{Client, Redis, Resp, Sluice};

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
const NOPERM_KEYS: &str =
    "NOPERM this user has no permissions to access one of the keys used as arguments";

/// config/users.toml (the README's example) pointed at `master`, on free ports.
fn users_example(master: &Redis) -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/users.toml"))
        .expect("config/users.toml")
        .replace("127.0.0.1:6379", &master.addr())
        .replace("127.0.0.1:6380", "127.0.0.1:0")
        .replace("127.0.0.1:9121", "127.0.0.1:0")
}

fn err(text: &str) -> Resp {
    Resp::Error(text.to_string())
}

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

fn noperm(cmd: &str) -> Resp {
    err(&format!(
        "NOPERM this user has no permissions to run the '{cmd}' command"
    ))
}

fn login(addr: &str, user: &str, pass: &str) -> Client {
    let mut c = Client::connect(addr);
    assert_eq!(c.cmd(&["AUTH", user, pass]), ok(), "AUTH {user}");
    c
}

/// The value of the metric line starting with `series` (0 when absent).
fn metric(proxy: &Sluice, series: &str) -> f64 {
    let (_, body) = proxy.http_get("/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn users_log_in_and_are_held_to_their_access_and_keys() {
    let master = Redis::start();
    let proxy = Sluice::start(&users_example(&master));
    let addr = proxy.addr();

    let mut c = Client::connect(&addr);
    assert_eq!(
        c.cmd(&["GET", "app:1"]),
        err("NOAUTH Authentication required.")
    );
    assert_eq!(c.cmd(&["AUTH", "app", "wrong"]), err(WRONGPASS));
    assert_eq!(c.cmd(&["AUTH", "nobody", "app-secret"]), err(WRONGPASS));
    // No user named "default" in this pool.
    assert_eq!(c.cmd(&["AUTH", "app-secret"]), err(WRONGPASS));
    assert_eq!(c.cmd(&["AUTH", "app", "app-secret"]), ok());
    assert_eq!(c.cmd(&["SET", "app:1", "v"]), ok());
    assert_eq!(c.cmd(&["SET", "other", "v"]), err(NOPERM_KEYS));
    assert_eq!(c.cmd(&["MGET", "app:1", "other"]), err(NOPERM_KEYS));
    assert_eq!(
        c.cmd(&["MGET", "app:1", "session:1"]),
        Resp::Array(vec![Resp::Bulk(b"v".to_vec()), Resp::Nil])
    );
    assert_eq!(c.cmd(&["CLIENT", "LIST"]), noperm("client|list"));
    // Every key of the keyspace at once: not for a user held to some keys.
    assert_eq!(c.cmd(&["FLUSHALL"]), noperm("flushall"));
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), Resp::Bulk(b"app".to_vec()));
    assert_eq!(master.client().cmd(&["EXISTS", "other"]), Resp::Int(0));

    // HELLO 3 AUTH, a read-only user.
    let mut r = Client::connect(&addr);
    match r.cmd(&["HELLO", "3", "AUTH", "reports", "reports-secret"]) {
        Resp::Map(_) => {}
        other => panic!("HELLO 3 AUTH: {other:?}"),
    }
    assert_eq!(r.cmd(&["GET", "app:1"]), Resp::Bulk(b"v".to_vec()));
    assert_eq!(r.cmd(&["SET", "app:1", "w"]), noperm("set"));
    assert_eq!(r.cmd(&["EVAL", "return 1", "0"]), noperm("eval"));
    assert_eq!(r.cmd(&["MONITOR"]), noperm("monitor"));
    assert_eq!(
        r.cmd(&["CONFIG", "GET", "maxclients"]),
        noperm("config|get")
    );
    assert_eq!(
        Client::connect(&addr).cmd(&["HELLO", "3", "AUTH", "reports", "x"]),
        err(WRONGPASS)
    );

    // The admin sees everyone, with their users.
    let mut ops = login(&addr, "ops", "ops-secret");
    let Resp::Bulk(list) = ops.cmd(&["CLIENT", "LIST"]) else {
        panic!("CLIENT LIST")
    };
    let list = String::from_utf8_lossy(&list).to_string();
    for user in ["app", "reports", "ops"] {
        assert!(list.contains(&format!(" user={user} ")), "{list}");
    }
    assert_eq!(
        ops.cmd(&["CLIENT", "KILL", "USER", "reports"]),
        Resp::Int(1)
    );
    assert!(r.is_closed(), "CLIENT KILL USER left the client connected");
    assert_eq!(
        ops.cmd(&["CLIENT", "KILL", "USER", "nobody"]),
        err("ERR No such user 'nobody'")
    );
    assert_eq!(ops.cmd(&["FLUSHALL"]), ok());

    for (reason, at_least) in [
        ("wrongpass", 4.0),
        ("noperm_key", 2.0),
        ("noperm_command", 6.0),
    ] {
        let series = format!("sluice_auth_failures_total{{pool=\"app\",reason=\"{reason}\"}}");
        let seen = metric(&proxy, &series);
        assert!(seen >= at_least, "{series} = {seen}");
    }
}

/// The same refusals through the proxy and from redis-server with equivalent ACL users,
/// byte for byte (RESP2), including a refusal inside MULTI (EXEC then aborts).
#[test]
fn refusals_are_byte_identical_to_redis_acl() {
    let redis = Redis::start();
    let mut admin = redis.client();
    for rule in [
        vec![
            "ACL",
            "SETUSER",
            "app",
            "on",
            ">app-secret",
            "~app:*",
            "~session:*",
            "+@all",
            "-@admin",
        ],
        vec![
            "ACL",
            "SETUSER",
            "reports",
            "on",
            ">reports-secret",
            "~*",
            "+@all",
            "-@write",
            "-@admin",
        ],
    ] {
        assert_eq!(admin.cmd(&rule), ok());
    }
    let master = Redis::start();
    let proxy = Sluice::start(&users_example(&master));
    let script: &[(&str, &str, &[&str])] = &[
        ("app", "wrong", &["AUTH", "app", "wrong"]),
        ("app", "app-secret", &["SET", "other", "1"]),
        ("app", "app-secret", &["MGET", "app:1", "session:1", "x"]),
        ("app", "app-secret", &["CLIENT", "LIST"]),
        ("app", "app-secret", &["CONFIG", "GET", "maxclients"]),
        ("reports", "reports-secret", &["SET", "app:1", "1"]),
        ("reports", "reports-secret", &["DEL", "app:1"]),
        ("reports", "reports-secret", &["GET", "anything"]),
        ("reports", "x", &["HELLO", "3", "AUTH", "reports", "x"]),
    ];
    for (user, pass, cmd) in script {
        let run = |addr: &str| {
            let mut c = Client::connect(addr);
            c.cmd(&["AUTH", user, pass]);
            c.cmd_raw(cmd)
        };
        let (direct, proxied) = (run(&redis.addr()), run(&proxy.addr()));
        assert_eq!(
            String::from_utf8_lossy(&proxied),
            String::from_utf8_lossy(&direct),
            "{user}: {cmd:?}"
        );
    }
    let multi = |addr: &str| {
        let mut c = login(addr, "app", "app-secret");
        let mut out = Vec::new();
        for cmd in [
            &["MULTI"][..],
            &["SET", "app:1", "x"],
            &["SET", "other", "y"],
            &["EXEC"],
            &["GET", "app:1"],
        ] {
            out.push(String::from_utf8_lossy(&c.cmd_raw(cmd)).to_string());
        }
        out
    };
    assert_eq!(multi(&proxy.addr()), multi(&redis.addr()));
}

#[test]
fn a_reload_changes_users_under_connected_clients() {
    let master = Redis::start();
    let text = users_example(&master);
    let proxy = Sluice::start(&text);
    let addr = proxy.addr();
    let mut app = login(&addr, "app", "app-secret");
    let mut reports = login(&addr, "reports", "reports-secret");
    let mut ops = login(&addr, "ops", "ops-secret");
    assert_eq!(app.cmd(&["SET", "app:1", "v"]), ok());

    // app becomes read-only, reports is removed, ops gets a new password, and a user is added.
    let new = text
        .replace(
            "access = \"read-write\"\nkeys = [\"app:*\", \"session:*\"]",
            "access = \"read\"\nkeys = [\"app:*\", \"session:*\"]",
        )
        .replace(
            "[[pools.users]]\nname = \"reports\"\npassword = \"reports-secret\"\naccess = \"read\"\n",
            "",
        )
        .replace("ops-secret", "ops-secret-2")
        + "\n[[pools.users]]\nname = \"late\"\npassword = \"late-secret\"\naccess = \"read-write\"\n";
    assert!(!new.contains("reports"), "{new}");
    std::fs::write(proxy.config_path(), &new).expect("rewrite config");
    let (status, body) = proxy.http("POST", "/reload", &[]);
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            "reloaded: pool app users changed (2 clients of removed users or changed passwords \
             disconnected)\n"
        )
    );
    // The same connection, new rights, on its next command.
    assert_eq!(app.cmd(&["SET", "app:1", "w"]), noperm("set"));
    assert_eq!(app.cmd(&["GET", "app:1"]), Resp::Bulk(b"v".to_vec()));
    // Removed user, changed password: disconnected by the reload.
    assert!(
        reports.is_closed(),
        "a removed user's client stays connected"
    );
    assert!(
        ops.is_closed(),
        "a client of a changed password stays connected"
    );
    assert_eq!(
        Client::connect(&addr).cmd(&["AUTH", "reports", "reports-secret"]),
        err(WRONGPASS)
    );
    login(&addr, "ops", "ops-secret-2");
    let mut late = login(&addr, "late", "late-secret");
    assert_eq!(late.cmd(&["SET", "anything", "1"]), ok());
}

fn config_error(text: &str) -> String {
    match sluice::config::Config::parse(text, Path::new("sluice.toml")) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn check_config_rejects_mixed_or_incomplete_auth() {
    let pool =
        "[[pools]]\nname = \"p\"\nlisten = \"127.0.0.1:6380\"\nmaster = \"127.0.0.1:6379\"\n";
    let user = "[[pools.users]]\nname = \"u\"\npassword = \"p\"\naccess = \"read\"\n";
    let cases = [
        (
            format!("{pool}auth = \"users\"\npassword = \"x\"\n{user}"),
            "sluice.toml: pools[0].password: not allowed with auth = \"users\" (clients log in \
             as the users of [[pools.users]], each with its own password); remove it",
        ),
        (
            format!("{pool}auth = \"passthrough\"\npassword = \"x\"\n"),
            "sluice.toml: pools[0].password: not allowed with auth = \"passthrough\" (clients \
             log in as the master's own ACL users); remove it",
        ),
        (
            format!("{pool}auth = \"users\"\n"),
            "sluice.toml: pools[0].users: auth = \"users\" needs at least one [[pools.users]] entry",
        ),
        (
            format!("{pool}password = \"x\"\n{user}"),
            "sluice.toml: pools[0].users: [[pools.users]] is used only with auth = \"users\", \
             not \"password\"",
        ),
        (
            format!("{pool}auth = \"users\"\n{user}{user}"),
            "sluice.toml: pools[0].users[1].name: \"u\" is already defined by pools[0].users[0]",
        ),
        (
            format!("{pool}auth = \"users\"\n[[pools.users]]\nname = \"u\"\naccess = \"read\"\n"),
            "sluice.toml: pools[0].users[0].password: required: password or password_sha256",
        ),
        (
            format!(
                "{pool}auth = \"users\"\n[[pools.users]]\nname = \"u\"\npassword_sha256 = \"abc\"\naccess = \"read\"\n"
            ),
            "sluice.toml: pools[0].users[0].password_sha256: expected 64 hexadecimal digits \
             (e.g. the output of `printf %s PASSWORD | sha256sum`)",
        ),
        (
            format!("{pool}auth = \"users\"\n[[pools.users]]\nname = \"u\"\npassword = \"p\"\naccess = \"write\"\n"),
            "sluice.toml: pools[0].users[0].access: unknown value \"write\", expected one of \
             read, read-write, admin",
        ),
        (
            format!("{pool}auth = \"passthrough\"\npassthrough_idle_timeout = \"5s\"\n"),
            "sluice.toml: pools[0].passthrough_idle_timeout: 5s is below twice request_timeout \
             (10s)",
        ),
        (
            format!("{pool}passthrough_idle_timeout = \"1m\"\n"),
            "sluice.toml: pools[0].passthrough_idle_timeout: is used only with auth = \
             \"passthrough\"",
        ),
        (
            format!("{pool}auth_failure_delay = \"2m\"\n"),
            "sluice.toml: pools[0].auth_failure_delay: must be at most 60s",
        ),
        (
            format!("{pool}auth = \"everyone\"\n"),
            "sluice.toml: pools[0].auth: unknown value \"everyone\", expected one of password, \
             users, passthrough",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(config_error(&text), expected, "{text}");
    }
}

/// config/passthrough.toml (the README's example) pointed at `master` and `replica`.
fn passthrough_example(master: &Redis, replica: &Redis) -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/passthrough.toml"
    ))
    .expect("config/passthrough.toml")
    .replace("127.0.0.1:6379", &master.addr())
    .replace("127.0.0.1:6381", &replica.addr())
    .replace("127.0.0.1:6380", "127.0.0.1:0")
        + "[admin]\nlisten = \"127.0.0.1:0\"\n"
}

/// The node's CLIENT LIST.
fn node_clients(node: &Redis) -> String {
    match node.client().cmd(&["CLIENT", "LIST"]) {
        Resp::Bulk(b) => String::from_utf8_lossy(&b).to_string(),
        other => panic!("CLIENT LIST: {other:?}"),
    }
}

#[test]
fn passthrough_clients_run_as_their_own_redis_users() {
    let master = Redis::start();
    let replica = Redis::replica_of(&master);
    replica.wait_streaming(&master);
    // ACL users are not replicated: every node gets them.
    for node in [&master, &replica] {
        let mut c = node.client();
        let app = [
            "ACL", "SETUSER", "app", "on", ">app-pw", "~app:*", "+@all", "-@admin",
        ];
        let boss = [
            "ACL", "SETUSER", "boss", "on", ">boss-pw", "~*", "&*", "+@all",
        ];
        assert_eq!(c.cmd(&app), ok());
        assert_eq!(c.cmd(&boss), ok());
    }
    let config = passthrough_example(&master, &replica).replace(
        "\nauth = \"passthrough\"\n",
        "\nauth = \"passthrough\"\nallow_commands = [\"CLIENT NO-EVICT\"]\n",
    );
    let proxy = Sluice::start(&config);
    let addr = proxy.addr();

    let mut c = Client::connect(&addr);
    // Before AUTH, a client is `default`, as on Redis, while that user needs no password.
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), Resp::Bulk(b"default".to_vec()));
    // CLIENT KILL USER knows the master's users, as Redis does.
    let kill_nobody = ["CLIENT", "KILL", "USER", "nobody-here"];
    assert_eq!(c.cmd(&kill_nobody), master.client().cmd(&kill_nobody));
    assert_eq!(c.cmd(&kill_nobody), err("ERR No such user 'nobody-here'"));
    assert_eq!(c.cmd(&["CLIENT", "KILL", "USER", "app"]), Resp::Int(0));
    // Redis's arity refusal comes before any permission check.
    let kill_nothing = ["CLIENT", "KILL"];
    assert_eq!(c.cmd(&kill_nothing), master.client().cmd(&kill_nothing));
    assert_eq!(c.cmd(&["AUTH", "app", "wrong"]), err(WRONGPASS));
    assert_eq!(c.cmd(&["AUTH", "app", "app-pw"]), ok());
    // Redis's ACL decides, with its own words.
    assert_eq!(c.cmd(&["SET", "other", "1"]), err(NOPERM_KEYS));
    assert_eq!(c.cmd(&["SET", "app:1", "v"]), ok());
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), Resp::Bulk(b"app".to_vec()));
    assert!(node_clients(&master).contains(" user=app "));
    // Reads go to the replica (read_from = "replica"), as the user too.
    common::wait_until(Duration::from_secs(10), "read from the replica", || {
        c.cmd(&["GET", "app:1"]) == Resp::Bulk(b"v".to_vec())
    });
    assert!(replica.calls("get") > 0);
    assert!(node_clients(&replica).contains(" user=app "));
    // Dedicated connections run as the user too: a transaction, a blocking command.
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["SET", "app:2", "1"]), Resp::Simple("QUEUED".into()));
    assert_eq!(c.cmd(&["SET", "other", "1"]), err(NOPERM_KEYS));
    assert_eq!(
        c.cmd(&["EXEC"]),
        err("EXECABORT Transaction discarded because of previous errors.")
    );
    assert_eq!(c.cmd(&["BLPOP", "other", "0.1"]), err(NOPERM_KEYS));
    // Redis's own ACL LOG names the real user.
    let Resp::Array(log) = master.client().cmd(&["ACL", "LOG", "1"]) else {
        panic!("ACL LOG")
    };
    assert!(
        format!("{log:?}").contains("Bulk([97, 112, 112])"),
        "{log:?}"
    );
    // ACL commands go to Redis under the client's user, not to the proxy's deny list.
    assert_eq!(c.cmd(&["ACL", "SETUSER", "temp"]), noperm("acl|setuser"));
    // What the proxy answers about other clients needs the user's permission in Redis.
    assert_eq!(c.cmd(&["CLIENT", "LIST"]), noperm("client|list"));
    assert_eq!(c.cmd(&["MONITOR"]), noperm("monitor"));
    assert_eq!(c.cmd(&["CLIENT", "KILL", "ID", "1"]), noperm("client|kill"));
    let mut boss = Client::connect(&addr);
    match boss.cmd(&["HELLO", "3", "AUTH", "boss", "boss-pw"]) {
        Resp::Map(_) => {}
        other => panic!("HELLO 3 AUTH boss: {other:?}"),
    }
    match boss.cmd(&["CLIENT", "LIST"]) {
        Resp::Verbatim(list) => assert!(list.contains(" user=app "), "{list}"),
        other => panic!("CLIENT LIST as boss: {other:?}"),
    }
    assert_eq!(boss.cmd(&["ACL", "SETUSER", "temp", "on", ">t"]), ok());
    // An admin CLIENT subcommand the proxy does not answer itself reaches the node.
    assert_eq!(boss.cmd(&["CLIENT", "NO-EVICT", "ON"]), ok());
    assert_eq!(
        c.cmd(&["CLIENT", "NO-EVICT", "ON"]),
        noperm("client|no-evict")
    );
    assert_ne!(
        master.client().cmd(&["ACL", "GETUSER", "temp"]),
        Resp::Nil,
        "ACL SETUSER through the proxy did not reach the master"
    );
    let wrongpass = metric(
        &proxy,
        "sluice_auth_failures_total{pool=\"acl\",reason=\"wrongpass\"}",
    );
    assert!(wrongpass >= 1.0, "wrongpass = {wrongpass}");
    // A client's wrong password is not the node refusing the proxy.
    assert_eq!(
        metric(&proxy, "sluice_backend_handshake_refusals_total"),
        0.0
    );

    // The user's node connections close with its last client.
    drop(c);
    common::wait_until(
        Duration::from_secs(10),
        "app's node connections closed",
        || {
            !node_clients(&master).contains(" user=app ")
                && !node_clients(&replica).contains(" user=app ")
        },
    );
    assert!(node_clients(&master).contains(" user=boss "));
}

/// config/passthrough-cluster.toml (the README's example) pointed at `cluster`, on free
/// ports, with `extra` lines added to the pool; returned once the proxy knows `masters`
/// shards.
fn passthrough_cluster(cluster: &Cluster, masters: usize, extra: &str) -> Sluice {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/passthrough-cluster.toml"
    ))
    .expect("config/passthrough-cluster.toml");
    let seeds = "[\"127.0.0.1:7000\", \"127.0.0.1:7001\", \"127.0.0.1:7002\"]";
    assert!(text.contains(seeds), "the example's seeds changed");
    let text = text
        .replace(seeds, &format!("[{}]", cluster.seeds()))
        .replace("127.0.0.1:7380", "127.0.0.1:0")
        + "health_check_interval = \"200ms\"\n"
        + extra
        + "\n[admin]\nlisten = \"127.0.0.1:0\"\n";
    let proxy = Sluice::start(&text);
    common::wait_until(
        Duration::from_secs(30),
        "the proxy to learn the cluster",
        || {
            let (_, body) = proxy.http_get("/topology");
            let t = serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default();
            t["pools"]["acl-cluster"]["shards"]
                .as_array()
                .is_some_and(|s| s.len() == masters)
        },
    );
    proxy
}

/// ACL users `app` (keys `app:*`, no admin commands) and `boss` (everything) on `node`.
fn acl_users(node: &Redis) {
    let mut c = node.client();
    let app = [
        "ACL", "SETUSER", "app", "on", ">app-pw", "~app:*", "+@all", "-@admin",
    ];
    let boss = [
        "ACL", "SETUSER", "boss", "on", ">boss-pw", "~*", "&*", "+@all",
    ];
    assert_eq!(c.cmd(&app), ok());
    assert_eq!(c.cmd(&boss), ok());
}

/// The slot of `key` (asked of a node).
fn key_slot(node: &Redis, key: &str) -> i64 {
    match node.client().cmd(&["CLUSTER", "KEYSLOT", key]) {
        Resp::Int(n) => n,
        other => panic!("CLUSTER KEYSLOT {key}: {other:?}"),
    }
}

#[test]
fn passthrough_in_a_cluster_pool_runs_as_each_user_on_every_shard() {
    let cluster = Cluster::start(3, 1);
    for node in &cluster.nodes {
        acl_users(node);
    }
    let proxy = passthrough_cluster(&cluster, 3, "");
    let addr = proxy.addr();
    let mut c = Client::connect(&addr);
    // Before AUTH, a client is `default`, as on Redis, while that user needs no password.
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), Resp::Bulk(b"default".to_vec()));
    assert_eq!(c.cmd(&["AUTH", "app", "wrong"]), err(WRONGPASS));
    assert_eq!(c.cmd(&["AUTH", "app", "app-pw"]), ok());

    // Keys on every shard: each master enforces the user's key patterns itself.
    let keys: Vec<String> = (0..30).map(|i| format!("app:{i}")).collect();
    for k in &keys {
        assert_eq!(c.cmd(&["SET", k, k]), ok(), "SET {k}");
    }
    for i in 0..30 {
        let other = format!("other:{i}");
        assert_eq!(
            c.cmd(&["SET", &other, "x"]),
            err(NOPERM_KEYS),
            "SET {other}"
        );
    }
    // Split across slots, and fan-out to every master, as the user.
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    let Resp::Array(values) = c.cmd(&mget) else {
        panic!("MGET")
    };
    assert_eq!(values.len(), keys.len());
    assert_eq!(c.cmd(&["MGET", "app:1", "other:1"]), err(NOPERM_KEYS));
    assert_eq!(c.cmd(&["DBSIZE"]), Resp::Int(30));
    let masters = cluster.masters();
    assert_eq!(masters.len(), 3);
    for m in &masters {
        assert!(
            node_clients(m).contains(" user=app "),
            "{} has no connection of app",
            m.addr()
        );
        let Resp::Array(log) = m.client().cmd(&["ACL", "LOG", "1"]) else {
            panic!("ACL LOG")
        };
        assert!(
            format!("{log:?}").contains("Bulk([97, 112, 112])"),
            "{}: {log:?}",
            m.addr()
        );
    }
    // Reads go to the replicas (read_from = "replica"), as the user (replication is
    // asynchronous: a replica may not have a key yet).
    for k in &keys {
        common::wait_until(Duration::from_secs(10), "a replica read", || {
            c.cmd(&["GET", k]) == Resp::Bulk(k.clone().into_bytes())
        });
    }
    for r in cluster.replicas() {
        assert!(r.calls("get") > 0, "{} served no read", r.addr());
        assert!(node_clients(r).contains(" user=app "), "{}", r.addr());
    }
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), Resp::Bulk(b"app".to_vec()));

    // MOVED: a slot changes owner behind the proxy; the user's request follows it.
    let moved = "app:0";
    let slot = key_slot(masters[0], moved);
    let src = *masters
        .iter()
        .find(|m| Cluster::serves(m, slot))
        .expect("owner");
    let dst = *masters.iter().find(|m| m.port != src.port).expect("other");
    let slot_text = slot.to_string();
    cluster.move_slot(&slot_text, src, dst, &[moved]);
    assert_eq!(c.cmd(&["SET", moved, "moved"]), ok());
    assert_eq!(
        dst.client().cmd(&["GET", moved]),
        Resp::Bulk(b"moved".to_vec())
    );
    // ASK: a slot half migrated; the key is already on the target.
    let asked = "app:1";
    let slot = key_slot(masters[0], asked);
    let src = *masters
        .iter()
        .find(|m| Cluster::serves(m, slot))
        .expect("owner");
    let dst = *masters.iter().find(|m| m.port != src.port).expect("other");
    let slot_text = slot.to_string();
    Cluster::start_migration(&slot_text, src, dst);
    let port = dst.port.to_string();
    let migrate = [
        "MIGRATE",
        "127.0.0.1",
        &port,
        "",
        "0",
        "5000",
        "KEYS",
        asked,
    ];
    assert_eq!(src.client().cmd(&migrate), ok());
    assert_eq!(c.cmd(&["SET", asked, "asked"]), ok());
    let mut on_dst = dst.client();
    assert_eq!(on_dst.cmd(&["ASKING"]), ok());
    assert_eq!(on_dst.cmd(&["GET", asked]), Resp::Bulk(b"asked".to_vec()));
    cluster.finish_migration(&slot_text, src, dst);

    // Dedicated connections as the user: a transaction, a blocking command.
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["SET", "app:2", "1"]), Resp::Simple("QUEUED".into()));
    assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![ok()]));
    assert_eq!(c.cmd(&["BLPOP", "other", "0.1"]), err(NOPERM_KEYS));
    // Another user on the same proxy runs with its own rights.
    let mut boss = login(&addr, "boss", "boss-pw");
    assert_eq!(boss.cmd(&["SET", "other:1", "x"]), ok());
    assert_eq!(boss.cmd(&["ACL", "WHOAMI"]), Resp::Bulk(b"boss".to_vec()));

    // The user's node connections close with its last client.
    drop(c);
    common::wait_until(
        Duration::from_secs(10),
        "app's node connections closed",
        || {
            cluster
                .nodes
                .iter()
                .all(|n| !node_clients(n).contains(" user=app "))
        },
    );
}

#[test]
fn passthrough_user_connections_close_when_idle_and_count_under_the_cap() {
    let master = Redis::start();
    acl_users(&master);
    let cfg = passthrough_example(&master, &master)
        .replace("\nreplicas = [", "\n# replicas = [")
        .replace("\nread_from = \"replica\"", "\nread_from = \"master\"")
        .replace(
            "\nauth = \"passthrough\"",
            "\nauth = \"passthrough\"\nrequest_timeout = \"500ms\"\n\
             passthrough_idle_timeout = \"1s\"\nmax_dedicated_connections = 1\n\
             connect_timeout = \"300ms\"",
        );
    let proxy = Sluice::start(&cfg);
    let addr = proxy.addr();
    let mut app = login(&addr, "app", "app-pw");
    assert_eq!(app.cmd(&["SET", "app:1", "v"]), ok());
    assert!(node_clients(&master).contains(" user=app "));
    // app's shared connection holds the node's one place: boss's login (a connection of its
    // own, as boss) waits for it and gives up.
    let mut boss = Client::connect(&addr);
    match boss.cmd(&["AUTH", "boss", "boss-pw"]) {
        Resp::Error(e) => assert!(e.contains("too many dedicated connections"), "{e}"),
        other => panic!("AUTH boss at the cap: {other:?}"),
    }
    // Idle, app's connection closes although its client stays; its place is free again.
    common::wait_until(
        Duration::from_secs(10),
        "app's idle connection closed",
        || !node_clients(&master).contains(" user=app "),
    );
    assert_eq!(boss.cmd(&["AUTH", "boss", "boss-pw"]), ok());
    // app's next request opens a connection again (once boss's is idle and closed too).
    common::wait_until(Duration::from_secs(10), "app's request served", || {
        app.cmd(&["GET", "app:1"]) == Resp::Bulk(b"v".to_vec())
    });
}

#[test]
fn repeated_failed_logins_from_an_address_are_spaced_without_holding_others() {
    let master = Redis::start();
    let cfg = users_example(&master).replace(
        "auth = \"users\"\n",
        "auth = \"users\"\nauth_failure_delay = \"1s\"\n",
    );
    let proxy = Sluice::start(&cfg);
    let addr = proxy.addr();
    let delayed = || metric(&proxy, "sluice_auth_delayed_total{pool=\"app\"}");
    let mut app = login(&addr, "app", "app-secret");
    // The first failures are answered at once.
    let mut guess = Client::connect(&addr);
    for _ in 0..3 {
        assert_eq!(guess.cmd(&["AUTH", "app", "guess"]), err(WRONGPASS));
    }
    assert_eq!(delayed(), 0.0);
    // From now on one attempt per second from this address, on any connection: two
    // attempts started together are answered a second apart, the second two seconds on.
    let started = std::time::Instant::now();
    let attempts: Vec<_> = (0..2)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let reply = Client::connect(&addr).cmd(&["AUTH", "app", "guess"]);
                (reply, started.elapsed())
            })
        })
        .collect();
    // Meanwhile other clients are served.
    common::wait_until(Duration::from_secs(5), "both attempts held", || {
        delayed() >= 2.0
    });
    assert_eq!(app.cmd(&["SET", "app:1", "v"]), ok());
    assert!(
        attempts.iter().all(|a| !a.is_finished()),
        "an attempt was answered before its turn"
    );
    let mut took: Vec<Duration> = attempts
        .into_iter()
        .map(|a| {
            let (reply, took) = a.join().expect("attempt");
            assert_eq!(reply, err(WRONGPASS));
            took
        })
        .collect();
    took.sort();
    assert!(took[0] >= Duration::from_millis(900), "{took:?}");
    assert!(took[1] >= Duration::from_millis(1900), "{took:?}");
    // The right password still logs in (after its turn) and forgets the failures.
    assert_eq!(guess.cmd(&["AUTH", "app", "app-secret"]), ok());
    let before = delayed();
    assert_eq!(guess.cmd(&["AUTH", "app", "guess"]), err(WRONGPASS));
    assert_eq!(delayed(), before);
    let wrongpass = metric(
        &proxy,
        "sluice_auth_failures_total{pool=\"app\",reason=\"wrongpass\"}",
    );
    assert!(wrongpass >= 6.0, "wrongpass = {wrongpass}");
}

/// The keys of the invalidation pushes `c` receives until one names `until` (flushes, which
/// name no key, are skipped).
fn invalidations_until(c: &mut Client, until: &str) -> Vec<String> {
    c.set_timeout(Duration::from_secs(10));
    let mut seen = Vec::new();
    while !seen.iter().any(|k| k == until) {
        match c.read() {
            Resp::Push(items) if items.len() == 2 && items[0].text() == "invalidate" => {
                if let Resp::Array(keys) = &items[1] {
                    seen.extend(keys.iter().map(Resp::text));
                }
            }
            other => panic!("expected an invalidate push, got {other:?}"),
        }
    }
    seen
}

#[test]
fn passthrough_tracking_tells_a_user_only_of_keys_it_may_read() {
    let master = Redis::start();
    acl_users(&master);
    let cfg = passthrough_example(&master, &master)
        .replace("\nreplicas = [", "\n# replicas = [")
        .replace("\nread_from = \"replica\"", "\nread_from = \"master\"");
    let proxy = Sluice::start(&cfg);
    let addr = proxy.addr();
    let hello =
        |c: &mut Client, user: &str, pass: &str| match c.cmd(&["HELLO", "3", "AUTH", user, pass]) {
            Resp::Map(_) => {}
            other => panic!("HELLO 3 AUTH {user}: {other:?}"),
        };
    // BCAST over every key, and over a prefix the user may not read at all.
    let mut bcast = Client::connect(&addr);
    hello(&mut bcast, "app", "app-pw");
    assert_eq!(bcast.cmd(&["CLIENT", "TRACKING", "on", "BCAST"]), ok());
    let mut prefixed = Client::connect(&addr);
    hello(&mut prefixed, "app", "app-pw");
    let on_prefixes = [
        "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "secret:", "PREFIX", "app:",
    ];
    assert_eq!(prefixed.cmd(&on_prefixes), ok());
    // Default mode: a read Redis refuses registers nothing.
    let mut reader = Client::connect(&addr);
    hello(&mut reader, "app", "app-pw");
    assert_eq!(reader.cmd(&["CLIENT", "TRACKING", "on"]), ok());
    assert_eq!(reader.cmd(&["GET", "app:1"]), Resp::Nil);
    assert_eq!(reader.cmd(&["GET", "secret:1"]), err(NOPERM_KEYS));
    // A user who may read everything hears of everything.
    let mut boss = Client::connect(&addr);
    hello(&mut boss, "boss", "boss-pw");
    assert_eq!(boss.cmd(&["CLIENT", "TRACKING", "on", "BCAST"]), ok());

    let mut writer = login(&addr, "boss", "boss-pw");
    assert_eq!(writer.cmd(&["SET", "secret:1", "x"]), ok());
    assert_eq!(writer.cmd(&["SET", "app:1", "y"]), ok());
    // Each write's invalidation comes in order: the secret one would come first.
    for c in [&mut bcast, &mut prefixed, &mut reader] {
        let keys = invalidations_until(c, "app:1");
        assert!(
            !keys.iter().any(|k| k.starts_with("secret:")),
            "a user held to app:* learnt {keys:?}"
        );
    }
    let keys = invalidations_until(&mut boss, "app:1");
    assert!(keys.iter().any(|k| k == "secret:1"), "{keys:?}");
}

/// A passthrough pool in front of `master` alone, with the proxy's own connections logging
/// in with `backend` (`extra` config lines).
fn passthrough_pool(master: &Redis, extra: &str) -> String {
    common::standalone_config(
        master,
        &[],
        "master",
        &format!("auth = \"passthrough\"\n{extra}"),
    )
}

/// A client that has not authenticated is `default` while that user needs no password, and
/// gets NOAUTH once `requirepass` is set. `AUTH password` without a user name is not `AUTH
/// default password` on Redis: with a passwordless `default` user it is refused (redis-py's
/// own test_auth checks this), with `requirepass` it checks that password. Through a
/// passthrough pool the client gets the master's answers, byte for byte.
#[test]
fn passthrough_login_and_auth_without_a_user_name_answer_as_redis() {
    let master = Redis::start();
    let proxy = Sluice::start(&passthrough_pool(&master, ""));
    let mut direct = Client::connect(&master.addr());
    // Without AUTH a client is `default` (no password needed), as on Redis.
    let mut c = Client::connect(&proxy.addr());
    // RESP3 clients connect with a bare HELLO 3.
    match c.cmd(&["HELLO", "3"]) {
        Resp::Map(_) => {}
        other => panic!("HELLO 3 before AUTH: {other:?}"),
    }
    assert_eq!(c.cmd(&["SET", "k", "v0"]), ok());
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), Resp::Bulk(b"default".to_vec()));
    let mut c = login(&proxy.addr(), "default", "anything");
    let expected = direct.cmd_raw(&["AUTH", "some_password"]);
    assert!(expected.starts_with(b"-ERR AUTH <password> called without"));
    assert_eq!(
        String::from_utf8_lossy(&c.cmd_raw(&["AUTH", "some_password"])),
        String::from_utf8_lossy(&expected)
    );
    // The refusal leaves the client logged in as before.
    assert_eq!(c.cmd(&["SET", "k", "v"]), ok());

    assert_eq!(direct.cmd(&["CONFIG", "SET", "requirepass", "pw"]), ok());
    let proxy = Sluice::start(&passthrough_pool(&master, "backend_password = \"pw\""));
    let mut direct = Client::connect(&master.addr());
    let mut c = Client::connect(&proxy.addr());
    // Without AUTH, `default` now needs the password: NOAUTH, as from Redis.
    for cmd in [&["HELLO", "3"][..], &["GET", "k"]] {
        assert_eq!(
            String::from_utf8_lossy(&c.cmd_raw(cmd)),
            String::from_utf8_lossy(&direct.cmd_raw(cmd)),
            "{cmd:?}"
        );
    }
    for pass in ["wrong", "pw"] {
        assert_eq!(
            String::from_utf8_lossy(&c.cmd_raw(&["AUTH", pass])),
            String::from_utf8_lossy(&direct.cmd_raw(&["AUTH", pass])),
            "AUTH {pass}"
        );
    }
    assert_eq!(c.cmd(&["GET", "k"]), Resp::Bulk(b"v".to_vec()));
    assert_eq!(direct.cmd(&["CONFIG", "SET", "requirepass", ""]), ok());
}
