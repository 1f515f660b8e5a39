//! Transparency (issue 13): commands a client library or Redis's own test suite relies on are
//! answered through the proxy as Redis answers them on a direct connection.

mod common;

use common::{encode, standalone_config, Redis, Resp, Sluice};

fn proxy(master: &Redis, extra: &str) -> Sluice {
    Sluice::start(&standalone_config(master, &[], "master", extra))
}

/// Sends `script` (one pipelined batch) to a direct connection and through the proxy, and
/// returns both raw reply streams (each `n` replies long).
fn both_raw(master: &Redis, proxy: &Sluice, script: &[&[&str]], n: usize) -> (Vec<u8>, Vec<u8>) {
    let run = |mut c: common::Client| {
        let batch: Vec<u8> = script.iter().flat_map(|a| encode(a)).collect();
        c.send_raw(&batch);
        (0..n).flat_map(|_| c.read_raw_reply()).collect::<Vec<u8>>()
    };
    (run(master.client()), run(proxy.client()))
}

fn nested_multi_is_refused_and_exec_still_runs() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let script: &[&[&str]] = &[
        &["MULTI"],
        &["SET", "nested", "1"],
        &["MULTI"],
        &["WATCH", "nested"],
        &["INCR", "nested"],
        &["EXEC"],
        &["GET", "nested"],
    ];
    let (direct, proxied) = both_raw(&master, &p, script, script.len());
    assert_eq!(
        String::from_utf8_lossy(&proxied),
        String::from_utf8_lossy(&direct)
    );
    assert!(
        String::from_utf8_lossy(&proxied).contains("-ERR MULTI calls can not be nested\r\n"),
        "{}",
        String::from_utf8_lossy(&proxied)
    );
    let mut c = p.client();
    assert_eq!(c.cmd(&["GET", "nested"]), Resp::Bulk(b"2".to_vec()));
}

fn client_reply_off_on_skip_drop_exactly_the_replies_redis_drops() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let script: &[&[&str]] = &[
        &["CLIENT", "REPLY", "OFF"],
        &["SET", "r1", "1"],
        &["GET", "r1"],
        &["PING"],
        &["MULTI"],
        &["INCR", "r1"],
        &["EXEC"],
        &["CLIENT", "REPLY", "ON"],
        &["CLIENT", "REPLY", "SKIP"],
        &["INCR", "r1"],
        &["GET", "r1"],
        &["CLIENT", "REPLY", "SKIP"],
        &["BLPOP", "nolist", "0.01"],
        &["ECHO", "last"],
    ];
    // +OK (ON), $1 3 (GET), $4 last (ECHO): every other reply is dropped.
    let (direct, proxied) = both_raw(&master, &p, script, 3);
    // (`sluice node` itself still answers a skipped blocking command: compare with Redis.)
    if common::Backend::current() == common::Backend::Redis {
        assert_eq!(
            String::from_utf8_lossy(&proxied),
            String::from_utf8_lossy(&direct)
        );
    }
    assert_eq!(proxied, b"+OK\r\n$1\r\n3\r\n$4\r\nlast\r\n".to_vec());
    // Nothing more arrives: the dropped replies are not just late.
    let mut c = p.client();
    c.send_raw(&encode(&["CLIENT", "REPLY", "OFF"]));
    c.send_raw(&encode(&["SET", "r2", "x"]));
    c.send_raw(&encode(&["CLIENT", "REPLY", "ON"]));
    assert_eq!(c.read(), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["GET", "r2"]), Resp::Bulk(b"x".to_vec()));
}

fn subscribe_confirmations_and_messages_reach_a_client_with_replies_off() {
    let master = Redis::start();
    let p = proxy(&master, "");
    // (`sluice node` itself does not send pub/sub confirmations with replies off yet: the
    // direct check runs against redis-server only.)
    let direct = (common::Backend::current() == common::Backend::Redis).then(|| master.addr());
    for addr in direct.into_iter().chain([p.addr()]) {
        let mut sub = common::Client::connect(&addr);
        sub.send_raw(&encode(&["CLIENT", "REPLY", "OFF"]));
        let confirm = sub.cmd(&["SUBSCRIBE", "quiet"]);
        assert_eq!(
            confirm,
            Resp::Array(vec![
                Resp::Bulk(b"subscribe".to_vec()),
                Resp::Bulk(b"quiet".to_vec()),
                Resp::Int(1)
            ]),
            "{addr}"
        );
        let mut publisher = p.client();
        common::wait_until(std::time::Duration::from_secs(5), "a receiver", || {
            publisher.cmd(&["PUBLISH", "quiet", "m"]) == Resp::Int(1)
        });
        match sub.read() {
            Resp::Array(items) => assert_eq!(items[2], Resp::Bulk(b"m".to_vec()), "{addr}"),
            other => panic!("{addr}: {other:?}"),
        }
    }
}

/// The `key=` names of a CLIENT LIST line, in order.
fn field_names(line: &str) -> Vec<String> {
    line.split_whitespace()
        .map(|kv| kv.split('=').next().unwrap_or("").to_string())
        .collect()
}

fn client_id(c: &mut common::Client) -> i64 {
    match c.cmd(&["CLIENT", "ID"]) {
        Resp::Int(id) => id,
        other => panic!("CLIENT ID: {other:?}"),
    }
}

fn client_list_covers_the_pool_and_client_kill_closes_the_chosen_ones() {
    let master = Redis::start();
    // A second pool on the same node: its clients are never listed or killed from the first.
    let other_pool =
        "[[pools]]\nname = \"other\"\nlisten = \"127.0.0.1:0\"\nmode = \"standalone\"\n";
    let cfg = standalone_config(&master, &[], "master", "");
    let cfg = format!("{cfg}\n{other_pool}master = \"{}\"\n", master.addr());
    let p = Sluice::start(&cfg);
    let mut outsider = common::Client::connect(&p.pools[1].to_string());
    let outsider_id = client_id(&mut outsider);
    let mut a = p.client();
    let mut b = p.client();
    let mut blocked = p.client();
    let mut sub = p.client();
    assert_eq!(
        b.cmd(&["CLIENT", "SETNAME", "victim"]),
        Resp::Simple("OK".into())
    );
    let (ida, idb) = (client_id(&mut a), client_id(&mut b));
    let idsub = client_id(&mut sub);
    assert!(matches!(sub.cmd(&["SUBSCRIBE", "news"]), Resp::Array(_)));
    let idblocked = client_id(&mut blocked);
    blocked.send(&["BLPOP", "never", "0"]);
    common::wait_until(
        std::time::Duration::from_secs(5),
        "b and blpop listed",
        || {
            let list = a.cmd(&["CLIENT", "LIST"]).text();
            list.contains(&format!("id={idb} ")) && list.contains("cmd=blpop")
        },
    );
    let list = a.cmd(&["CLIENT", "LIST"]).text();
    assert!(!list.contains(&format!("id={outsider_id} ")), "{list}");
    let line_b = list
        .lines()
        .find(|l| l.starts_with(&format!("id={idb} ")))
        .expect("b");
    assert!(
        line_b.contains(" name=victim ") && line_b.contains(" cmd=client|id "),
        "{line_b}"
    );
    let own = list
        .lines()
        .find(|l| l.starts_with(&format!("id={ida} ")))
        .expect("a");
    assert!(own.contains(" cmd=client|list "), "{own}");
    // Redis 7.0's fields, in Redis's order.
    let direct = master.client().cmd(&["CLIENT", "INFO"]).text();
    assert_eq!(field_names(line_b), field_names(&direct));
    let pubsub = a.cmd(&["CLIENT", "LIST", "TYPE", "pubsub"]).text();
    assert_eq!(pubsub.lines().count(), 1, "{pubsub}");
    assert!(
        pubsub.starts_with(&format!("id={idsub} ")) && pubsub.contains(" flags=P "),
        "{pubsub}"
    );
    // Refusals word for word as Redis's (`sluice node` differs on some: compare with Redis).
    let mut direct = master.client();
    let redis = common::Backend::current() == common::Backend::Redis;
    for bad in [
        &["CLIENT", "KILL", "ID", "0"][..],
        &["CLIENT", "KILL", "ID", "x"],
        &["CLIENT", "KILL", "TYPE", "wrong_type"],
        &["CLIENT", "KILL", "USER", "wrong_user"],
        &["CLIENT", "KILL", "SKIPME", "maybe"],
        &["CLIENT", "KILL", "ID", "10", "wrong_arg"],
        &["CLIENT", "KILL", "1.2.3.4:5"],
        &["CLIENT", "LIST", "TYPE", "foo"],
        &["CLIENT", "LIST", "ID", "-1", "x"],
        &["CLIENT", "LIST", "ID", "-1"],
    ] {
        let proxied = a.cmd(bad);
        assert!(
            matches!(proxied, Resp::Error(_)) || bad.get(3) == Some(&"-1"),
            "{bad:?}"
        );
        if redis {
            assert_eq!(proxied, direct.cmd(bad), "{bad:?}");
        }
    }
    // Not in this pool: nothing to kill.
    assert_eq!(
        a.cmd(&["CLIENT", "KILL", "ID", &outsider_id.to_string()]),
        Resp::Int(0)
    );
    assert_eq!(outsider.cmd(&["PING"]), Resp::Simple("PONG".into()));
    // New style by id, a blocked client, old style by address, and SKIPME.
    assert_eq!(
        a.cmd(&["CLIENT", "KILL", "ID", &idb.to_string()]),
        Resp::Int(1)
    );
    assert!(b.is_closed());
    assert_eq!(
        a.cmd(&["CLIENT", "KILL", "ID", &idblocked.to_string()]),
        Resp::Int(1)
    );
    assert!(blocked.is_closed());
    let sub_addr = pubsub
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("addr="))
        .expect("addr")
        .to_string();
    assert_eq!(
        a.cmd(&["CLIENT", "KILL", &sub_addr]),
        Resp::Simple("OK".into())
    );
    assert!(sub.is_closed());
    let mut c = p.client();
    assert_eq!(c.cmd(&["CLIENT", "KILL", "TYPE", "normal"]), Resp::Int(1));
    assert!(a.is_closed());
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
    assert_eq!(
        c.cmd(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "no"]),
        Resp::Int(1)
    );
    assert!(c.is_closed());
    assert_eq!(outsider.cmd(&["PING"]), Resp::Simple("PONG".into()));
}

fn blocked_clients(master: &Redis) -> u64 {
    master
        .info("clients")
        .lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn client_unblock_releases_a_client_blocked_through_the_proxy() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let mut blocked = p.client();
    let mut admin = p.client();
    let id = client_id(&mut blocked).to_string();
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &id]), Resp::Int(0));
    for (mode, expected) in [
        ("TIMEOUT", Resp::Nil),
        (
            "ERROR",
            Resp::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into()),
        ),
    ] {
        blocked.send(&["BLPOP", "ublist", "0"]);
        common::wait_until(
            std::time::Duration::from_secs(5),
            "blocked on the node",
            || blocked_clients(&master) == 1,
        );
        assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &id, mode]), Resp::Int(1));
        assert_eq!(blocked.read(), expected, "{mode}");
    }
    // The connection stays usable, and a later push is not swallowed by the old block.
    assert_eq!(admin.cmd(&["RPUSH", "ublist", "x"]), Resp::Int(1));
    assert_eq!(
        blocked.cmd(&["BLPOP", "ublist", "0"]),
        Resp::Array(vec![
            Resp::Bulk(b"ublist".to_vec()),
            Resp::Bulk(b"x".to_vec())
        ])
    );
    assert_eq!(
        admin.cmd(&["CLIENT", "UNBLOCK", &id, "maybe"]),
        master.client().cmd(&["CLIENT", "UNBLOCK", "1", "maybe"])
    );
}

fn client_pause_write_holds_writes_until_unpause_and_all_holds_everything() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let mut a = p.client();
    let mut b = p.client();
    assert_eq!(
        a.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]),
        Resp::Simple("OK".into())
    );
    assert_eq!(b.cmd(&["GET", "paused"]), Resp::Nil);
    b.send(&["SET", "paused", "1"]);
    // Held: no reply while the pause is on (a reply now would be the bug).
    b.set_timeout(std::time::Duration::from_millis(300));
    assert!(
        b.try_read().is_err(),
        "a write was answered during CLIENT PAUSE WRITE"
    );
    b.set_timeout(std::time::Duration::from_secs(10));
    assert_eq!(master.client().cmd(&["EXISTS", "paused"]), Resp::Int(0));
    // Redis counts a paused client as blocked (its test suite waits on that figure).
    let info = a.cmd(&["INFO"]).text();
    assert!(info.contains("blocked_clients:1\r\n"), "{info}");
    assert_eq!(a.cmd(&["CLIENT", "UNPAUSE"]), Resp::Simple("OK".into()));
    assert_eq!(b.read(), Resp::Simple("OK".into()));
    // ALL with a timeout: even PING waits for the end of the pause.
    let started = std::time::Instant::now();
    assert_eq!(
        a.cmd(&["CLIENT", "PAUSE", "300", "ALL"]),
        Resp::Simple("OK".into())
    );
    assert_eq!(b.cmd(&["PING"]), Resp::Simple("PONG".into()));
    assert!(started.elapsed() >= std::time::Duration::from_millis(250));
    assert_eq!(
        a.cmd(&["CLIENT", "PAUSE", "x"]),
        Resp::Error("ERR timeout is not an integer or out of range".into())
    );
}

/// Reads a monitor's lines until one contains `needle`; returns the part after `]`.
fn monitored(m: &mut common::Client, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Resp::Simple(line) = m.read() {
            if line.contains(needle) {
                return line
                    .split_once("] ")
                    .map(|(_, r)| r.to_string())
                    .unwrap_or(line);
            }
        }
    }
    panic!("no monitor line with {needle}");
}

fn monitor_streams_every_pool_clients_commands_in_redis_format() {
    let master = Redis::start();
    let p = proxy(
        &master,
        "client_output_soft_limit = \"1MiB\"\nclient_output_hard_limit = \"1MiB\"",
    );
    let mut direct_mon = master.client();
    assert_eq!(direct_mon.cmd(&["MONITOR"]), Resp::Simple("OK".into()));
    let mut mon = p.client();
    assert_eq!(mon.cmd(&["MONITOR"]), Resp::Simple("OK".into()));
    let mut a = p.client();
    let odd = "a b\"\\\n\r\t\u{1}z";
    assert_eq!(a.cmd(&["SET", "monkey", odd]), Resp::Simple("OK".into()));
    let through_proxy = monitored(&mut mon, "\"monkey\"");
    let on_redis = monitored(&mut direct_mon, "\"monkey\"");
    assert_eq!(through_proxy, on_redis);
    // The header: `+<seconds>.<micros> [<db> <client addr>]`, the client being a's.
    let mut b = p.client();
    assert_eq!(b.cmd(&["SELECT", "3"]), Resp::Simple("OK".into()));
    assert_eq!(b.cmd(&["GET", "in3"]), Resp::Nil);
    let b_addr = b
        .cmd(&["CLIENT", "INFO"])
        .text()
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("addr=").map(String::from))
        .expect("addr");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let header = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "GET in3 not monitored"
        );
        if let Resp::Simple(line) = mon.read() {
            if line.ends_with("\"GET\" \"in3\"") {
                break line;
            }
        }
    };
    let (stamp, rest) = header.split_once(' ').expect("stamp");
    let (secs, micros) = stamp.split_once('.').expect("secs.micros");
    assert!(secs.parse::<u64>().is_ok() && micros.len() == 6, "{header}");
    assert!(rest.starts_with(&format!("[3 {b_addr}] ")), "{header}");
    // A monitor that does not read is disconnected past the output limit.
    mon.send(&["QUIT"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while mon.read() != Resp::Simple("OK".into()) {
        assert!(std::time::Instant::now() < deadline, "QUIT not answered");
    }
    assert!(mon.is_closed());
    let mut lazy = p.client();
    assert_eq!(lazy.cmd(&["MONITOR"]), Resp::Simple("OK".into()));
    let monitors = |c: &mut common::Client| {
        let list = c.cmd(&["CLIENT", "LIST"]).text();
        list.lines().filter(|l| l.contains(" flags=O ")).count()
    };
    assert_eq!(monitors(&mut a), 1);
    let big = "x".repeat(256 * 1024);
    let mut gone = false;
    for _ in 0..200 {
        assert_eq!(a.cmd(&["SET", "big", &big]), Resp::Simple("OK".into()));
        if monitors(&mut a) == 0 {
            gone = true;
            break;
        }
    }
    assert!(gone, "a monitor that never reads was not disconnected");
    drop(lazy);
}

fn wait_counts_the_replicas_that_acknowledged_the_clients_writes() {
    let master = Redis::start();
    let replica = Redis::replica_of(&master);
    replica.wait_synced();
    let p = Sluice::start(&standalone_config(&master, &[&replica], "master", ""));
    let mut c = p.client();
    assert_eq!(c.cmd(&["SET", "waited", "1"]), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["WAIT", "1", "10000"]), Resp::Int(1));
    assert_eq!(
        replica.client().cmd(&["GET", "waited"]),
        Resp::Bulk(b"1".to_vec())
    );
    // Two wanted, one exists: the count at the timeout, as Redis answers.
    let started = std::time::Instant::now();
    assert_eq!(c.cmd(&["WAIT", "2", "200"]), Resp::Int(1));
    assert!(started.elapsed() >= std::time::Duration::from_millis(190));
    // Nothing wanted: answered at once (the count may trail by the acknowledgement of the
    // master's last GETACK, so only its range is certain).
    assert!(matches!(c.cmd(&["WAIT", "0", "0"]), Resp::Int(0 | 1)));
    // Inside a transaction it is queued, and EXEC answers it at once with a count, as
    // Redis does (it runs on the transaction's own connection to the master).
    assert_eq!(c.cmd(&["MULTI"]), Resp::Simple("OK".into()));
    assert_eq!(
        c.cmd(&["SET", "waited", "2"]),
        Resp::Simple("QUEUED".into())
    );
    assert_eq!(c.cmd(&["WAIT", "1", "0"]), Resp::Simple("QUEUED".into()));
    match c.cmd(&["EXEC"]) {
        Resp::Array(r) => {
            assert_eq!(r[0], Resp::Simple("OK".into()));
            assert!(matches!(r[1], Resp::Int(0 | 1)), "{:?}", r[1]);
        }
        other => panic!("EXEC with a queued WAIT: {other:?}"),
    }
    let mut direct = master.client();
    for bad in [
        &["WAIT", "1", "-1"][..],
        &["WAIT", "x", "1"],
        &["WAIT", "1"],
    ] {
        assert_eq!(c.cmd(bad), direct.cmd(bad), "{bad:?}");
    }
}

/// WAIT where Redis runs it besides a plain connection: from a RESP3 client in subscribed
/// mode (a message published while it waits reaches the subscriber at once, before WAIT's
/// answer) and with a WATCH open. The same bytes through the proxy as on a direct
/// connection; a RESP2 subscriber gets Redis's refusal.
fn wait_while_subscribed_or_watching_answers_as_redis() {
    let master = Redis::start();
    let replica = Redis::replica_of(&master);
    replica.wait_synced();
    let p = Sluice::start(&standalone_config(&master, &[&replica], "master", ""));
    let mut publisher = master.client();
    let mut run = |mut c: common::Client, side: &str| {
        c.cmd_raw(&["HELLO", "3"]);
        let mut out = c.cmd_raw(&["SUBSCRIBE", "ch"]);
        out.extend(c.cmd_raw(&["SET", "waited", "1"]));
        out.extend(c.cmd_raw(&["WAIT", "1", "10000"]));
        // Two wanted, one exists: it waits its whole timeout, and a message comes meanwhile.
        c.send(&["WAIT", "2", "2000"]);
        let started = std::time::Instant::now();
        assert!(matches!(publisher.cmd(&["PUBLISH", "ch", "hello"]), Resp::Int(n) if n >= 1));
        out.extend(c.read_raw_reply());
        let message_after = started.elapsed();
        out.extend(c.read_raw_reply());
        assert!(
            message_after < std::time::Duration::from_millis(1500),
            "the message waited for WAIT's answer: {message_after:?} ({side})"
        );
        assert!(started.elapsed() >= std::time::Duration::from_millis(1900));
        for bad in [
            &["WAIT", "1", "-1"][..],
            &["WAIT", "x", "1"],
            &["WAIT", "1"],
        ] {
            out.extend(c.cmd_raw(bad));
        }
        out.extend(c.cmd_raw(&["UNSUBSCRIBE", "ch"]));
        out.extend(c.cmd_raw(&["WATCH", "waited"]));
        out.extend(c.cmd_raw(&["SET", "waited", "2"]));
        out.extend(c.cmd_raw(&["WAIT", "1", "10000"]));
        out.extend(c.cmd_raw(&["UNWATCH"]));
        // RESP2: refused in subscribed mode, by Redis's own words.
        out.extend(c.cmd_raw(&["HELLO", "2"]).get(..1).unwrap_or_default());
        out.extend(c.cmd_raw(&["SUBSCRIBE", "ch"]));
        out.extend(c.cmd_raw(&["WAIT", "0", "0"]));
        out
    };
    let direct = run(master.client(), "direct");
    let proxied = run(p.client(), "proxy");
    assert_eq!(
        String::from_utf8_lossy(&proxied),
        String::from_utf8_lossy(&direct)
    );
}

fn a_node_refusing_the_handshake_is_named_counted_and_shown_in_topology() {
    let master = Redis::start();
    let p = Sluice::start(&standalone_config(&master, &[], "master", ""));
    let mut c = p.client();
    assert_eq!(c.cmd(&["SET", "before", "1"]), Resp::Simple("OK".into()));
    let mut admin = master.client();
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "requirepass", "s3cret"]),
        Resp::Simple("OK".into())
    );
    // A transaction needs a new node connection: its handshake is refused.
    match c.cmd(&["MULTI"]) {
        Resp::Error(e) => assert!(
            e.contains(&master.addr()) && e.contains("NOAUTH") && e.contains("handshake"),
            "{e}"
        ),
        other => panic!("MULTI through a refusing node: {other:?}"),
    }
    // The client is inside its (doomed) MULTI, as the proxy keeps it: DISCARD ends it.
    assert_eq!(c.cmd(&["DISCARD"]), Resp::Simple("OK".into()));
    let refused = |p: &Sluice| {
        let (_, body) = p.http_get("/topology");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        v["pools"]["main"]["handshake_refused"][master.addr()]
            .as_str()
            .map(String::from)
    };
    assert!(
        refused(&p).is_some_and(|r| r.contains("NOAUTH")),
        "{:?}",
        refused(&p)
    );
    let (_, metrics) = p.http_get("/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sluice_backend_handshake_refusals_total")
                && l.contains(&master.addr())),
        "{metrics}"
    );
    // The password is taken back: the next handshake succeeds and the state clears.
    assert_eq!(admin.cmd(&["AUTH", "s3cret"]), Resp::Simple("OK".into()));
    assert_eq!(
        admin.cmd(&["CONFIG", "SET", "requirepass", ""]),
        Resp::Simple("OK".into())
    );
    assert_eq!(c.cmd(&["MULTI"]), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["DISCARD"]), Resp::Simple("OK".into()));
    assert_eq!(refused(&p), None);
}

/// Redis's own Tcl suite (unit/multi): SHUTDOWN and SAVE are refused inside MULTI with
/// Redis's words (not the proxy's deny list) and EXEC aborts.
fn no_multi_commands_are_refused_inside_multi_as_redis_refuses_them() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let script: &[&[&str]] = &[
        &["MULTI"],
        &["SET", "nomulti", "1"],
        &["SHUTDOWN"],
        &["EXEC"],
        &["GET", "nomulti"],
    ];
    let (direct, proxied) = both_raw(&master, &p, script, script.len());
    let proxied = String::from_utf8_lossy(&proxied).to_string();
    assert_eq!(proxied, String::from_utf8_lossy(&direct));
    assert!(
        proxied.contains("-ERR Command not allowed inside a transaction\r\n"),
        "{proxied}"
    );
}

/// Redis's own Tcl suite (unit/introspection): a client's own CLIENT INFO / CLIENT LIST line
/// counts the running command in `qbuf`, as Redis's query buffer still holds it.
fn own_client_line_counts_the_running_command_in_qbuf() {
    let master = Redis::start();
    let p = proxy(&master, "");
    // The caller's own line (CLIENT LIST on a node also lists the proxy's connections).
    let field = |list: String| {
        let own = list
            .lines()
            .find(|l| l.contains(" cmd=client|"))
            .expect("own line")
            .to_string();
        own.split_whitespace()
            .find_map(|kv| kv.strip_prefix("qbuf=").map(String::from))
            .expect("qbuf")
    };
    for cmd in [&["CLIENT", "INFO"][..], &["CLIENT", "LIST"][..]] {
        let direct = field(master.client().cmd(cmd).text());
        let proxied = field(p.client().cmd(cmd).text());
        assert_eq!(proxied, direct, "{cmd:?}");
        assert_eq!(proxied, encode(cmd).len().to_string(), "{cmd:?}");
    }
}

/// The lines a monitor gets (after `] `) up to the one containing `last`.
fn monitor_lines_until(m: &mut common::Client, last: &str) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut lines = Vec::new();
    while std::time::Instant::now() < deadline {
        if let Resp::Simple(line) = m.read() {
            let body = line
                .split_once("] ")
                .map_or(line.clone(), |(_, r)| r.to_string());
            let end = body.contains(last);
            lines.push(body);
            if end {
                return lines;
            }
        }
    }
    panic!("no monitor line with {last}: {lines:?}");
}

/// Redis's own Tcl suite (unit/introspection): MONITOR shows a script, then the commands it
/// ran inside the node (`[0 lua]`), and not commands refused before running.
fn monitor_shows_scripts_and_their_commands_but_not_refused_ones() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let mut mon = p.client();
    assert_eq!(mon.cmd(&["MONITOR"]), Resp::Simple("OK".into()));
    let mut a = p.client();
    let script = "redis.call('set',KEYS[1],ARGV[1])";
    assert_eq!(a.cmd(&["EVAL", script, "1", "foo", "bar"]), Resp::Nil);
    assert!(matches!(a.cmd(&["NOSUCHCOMMAND", "x"]), Resp::Error(_)));
    assert!(matches!(a.cmd(&["GET"]), Resp::Error(_)));
    assert_eq!(a.cmd(&["GET", "after"]), Resp::Nil);
    let lines = monitor_lines_until(&mut mon, "\"after\"");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(
        lines[0],
        format!("\"EVAL\" \"{script}\" \"1\" \"foo\" \"bar\"")
    );
    assert_eq!(lines[1], "\"set\" \"foo\" \"bar\"");
    assert_eq!(lines[2], "\"GET\" \"after\"");
}

/// A script longer than `request_timeout` is answered: the node runs it, alive, and the
/// shared connection it runs on is not declared stuck (Redis's unit/latency-monitor runs a
/// script of a million SADDs).
fn a_script_longer_than_the_request_timeout_is_answered() {
    let master = Redis::start();
    let p = proxy(&master, "request_timeout = \"300ms\"");
    let mut c = p.client();
    let script = "local t = redis.call('TIME') \
                  local start = t[1] * 1000000 + t[2] \
                  while true do \
                    local n = redis.call('TIME') \
                    if n[1] * 1000000 + n[2] - start > 900000 then return 1 end \
                  end";
    c.send(&["EVAL", script, "0"]);
    let mut other = p.client();
    // A request behind the script on the same connection is answered after it, too.
    other.send(&["SET", "behind", "1"]);
    assert_eq!(c.read(), Resp::Int(1));
    assert_eq!(other.read(), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["GET", "behind"]), Resp::Bulk(b"1".to_vec()));
}

/// Whether `CLIENT PAUSE WRITE` holds `cmd` at `addr` (after `setup` on the same client):
/// no reply within 300 ms while paused.
fn held_by_write_pause(addr: &str, setup: &[&[&str]], cmd: &[&str]) -> bool {
    let mut admin = common::Client::connect(addr);
    let mut c = common::Client::connect(addr);
    for s in setup {
        assert!(!matches!(c.cmd(s), Resp::Error(_)), "{s:?}");
    }
    assert_eq!(
        admin.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]),
        Resp::Simple("OK".into())
    );
    c.send(cmd);
    c.set_timeout(std::time::Duration::from_millis(300));
    let held = c.try_read().is_err();
    c.set_timeout(std::time::Duration::from_secs(10));
    assert_eq!(admin.cmd(&["CLIENT", "UNPAUSE"]), Resp::Simple("OK".into()));
    if held {
        let _ = c.read();
    }
    held
}

/// Commands sent first on the client, the command sent during the pause, whether it waits.
type PauseCase<'a> = (&'a [&'a [&'a str]], &'a [&'a str], bool);

/// Redis's own Tcl suite (unit/pause): what a WRITE pause holds through the proxy is what
/// Redis holds, including the commands whose `may-replicate` flag COMMAND INFO hides, EVAL
/// judged by its shebang, EXEC by what was queued, and not a command with the wrong
/// number of arguments.
fn client_pause_write_holds_what_redis_holds() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let multi_set: &[&[&str]] = &[&["MULTI"], &["SET", "k", "1"]];
    let multi_get: &[&[&str]] = &[&["MULTI"], &["GET", "k"]];
    let cases: &[PauseCase] = &[
        (&[], &["PFCOUNT", "hll"], true),
        (&[], &["PUBLISH", "ch", "m"], true),
        (&[], &["EVAL", "return 1", "0"], true),
        (&[], &["EVAL", "#!lua\nreturn 1", "0"], true),
        (
            &[],
            &["EVAL", "#!lua flags=no-writes\nreturn 1", "0"],
            false,
        ),
        (&[], &["EVAL_RO", "return 1", "0"], false),
        (multi_set, &["EXEC"], true),
        (multi_get, &["EXEC"], false),
        (&[], &["SET", "k"], false),
        (&[], &["GET", "k"], false),
    ];
    for (setup, cmd, want) in cases {
        // The expectation is checked on a direct connection first.
        assert_eq!(
            held_by_write_pause(&master.addr(), setup, cmd),
            *want,
            "direct {cmd:?}"
        );
        assert_eq!(
            held_by_write_pause(&p.addr(), setup, cmd),
            *want,
            "proxy {cmd:?}"
        );
    }
}

/// Redis's Tcl suite (unit/pause, "client pause starts at the end of a transaction"): a
/// CLIENT PAUSE queued in MULTI is answered in EXEC's reply, as on a direct connection, and
/// the pause starts only when EXEC ends (the writes queued after it in the transaction run);
/// the node is never paused; DISCARD and a wrong number of arguments start no pause.
fn client_pause_queued_in_multi_starts_when_exec_ends() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let script: &[&[&str]] = &[
        &["MULTI"],
        &["SET", "foo1", "bar"],
        &["CLIENT", "PAUSE", "100000", "WRITE"],
        &["SET", "foo2", "bar"],
        &["CLIENT", "PAUSE", "x"],
        &["EXEC"],
        &["CLIENT", "UNPAUSE"],
    ];
    let (direct, proxied) = both_raw(&master, &p, script, script.len());
    assert_eq!(
        String::from_utf8_lossy(&proxied),
        String::from_utf8_lossy(&direct)
    );
    let mut c = p.client();
    c.cmd(&["FLUSHALL"]);
    for cmd in [
        &["MULTI"][..],
        &["SET", "foo1", "bar"],
        &["CLIENT", "PAUSE", "100000", "WRITE"],
        &["SET", "foo2", "bar"],
    ] {
        assert!(!matches!(c.cmd(cmd), Resp::Error(_)), "{cmd:?}");
    }
    match c.cmd(&["EXEC"]) {
        Resp::Array(items) => assert_eq!(items[1], Resp::Simple("OK".into())),
        other => panic!("EXEC answered {other:?}"),
    }
    let mut other = p.client();
    other.send(&["SET", "foo3", "bar"]);
    other.set_timeout(std::time::Duration::from_millis(300));
    assert!(
        other.try_read().is_err(),
        "a write ran after the queued pause"
    );
    other.set_timeout(std::time::Duration::from_secs(10));
    let mut direct = master.client();
    let bar = Resp::Bulk(b"bar".to_vec());
    assert_eq!(
        direct.cmd(&["MGET", "foo1", "foo2", "foo3"]),
        Resp::Array(vec![bar.clone(), bar, Resp::Nil])
    );
    // The node was not paused: a direct client writes.
    assert_eq!(
        direct.cmd(&["SET", "direct", "1"]),
        Resp::Simple("OK".into())
    );
    assert_eq!(c.cmd(&["CLIENT", "UNPAUSE"]), Resp::Simple("OK".into()));
    assert_eq!(other.read(), Resp::Simple("OK".into()));
    // DISCARD: the queued pause never starts.
    c.cmd(&["MULTI"]);
    c.cmd(&["CLIENT", "PAUSE", "100000", "ALL"]);
    assert_eq!(c.cmd(&["DISCARD"]), Resp::Simple("OK".into()));
    assert_eq!(
        other.cmd(&["SET", "foo4", "bar"]),
        Resp::Simple("OK".into())
    );
    // A wrong number of arguments is refused when queued, and EXEC aborts.
    c.cmd(&["MULTI"]);
    assert!(matches!(c.cmd(&["CLIENT", "PAUSE"]), Resp::Error(_)));
    assert!(matches!(c.cmd(&["EXEC"]), Resp::Error(e) if e.starts_with("EXECABORT")));
}

/// Redis's Tcl suite (unit/introspection, "CLIENT KILL SKIPME YES/NO"): INFO's
/// `connected_clients` is the pool's client count, as CLIENT LIST lists the pool's clients
/// (the node's figure counts the proxy's own connections), in every INFO form.
fn info_connected_clients_counts_the_pools_clients() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let mut a = p.client();
    let field = |text: &str| -> usize {
        text.lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no connected_clients in {text}"))
    };
    let listed = |c: &mut common::Client| c.cmd(&["CLIENT", "LIST"]).text().lines().count();
    let _b = p.client();
    let _c = p.client();
    assert_eq!(listed(&mut a), 3);
    for args in [&["INFO"][..], &["INFO", "clients"], &["INFO", "all"]] {
        assert_eq!(field(&a.cmd(args).text()), 3, "{args:?}");
    }
    drop(_c);
    common::wait_until(
        std::time::Duration::from_secs(10),
        "the closed client leaves",
        || listed(&mut a) == 2,
    );
    assert_eq!(field(&a.cmd(&["INFO", "clients"]).text()), 2);
}

on_both_backends! {
    both: [
        nested_multi_is_refused_and_exec_still_runs,
        client_reply_off_on_skip_drop_exactly_the_replies_redis_drops,
        subscribe_confirmations_and_messages_reach_a_client_with_replies_off,
        client_list_covers_the_pool_and_client_kill_closes_the_chosen_ones,
        monitor_streams_every_pool_clients_commands_in_redis_format,
        a_node_refusing_the_handshake_is_named_counted_and_shown_in_topology,
        client_pause_write_holds_writes_until_unpause_and_all_holds_everything,
        own_client_line_counts_the_running_command_in_qbuf,
        monitor_shows_scripts_and_their_commands_but_not_refused_ones,
        a_script_longer_than_the_request_timeout_is_answered,
        info_connected_clients_counts_the_pools_clients,
    ],
    // `sluice node` has no CLIENT UNBLOCK of its own yet (the proxy issues it on the node).
    // (WAIT: `sluice node` replication is covered by tests/node_replication.rs; WAIT's answer
    // here depends on the master's `slaveN:` acknowledgement lines, which redis-server gives.)
    // `sluice node` runs SHUTDOWN inside MULTI (the comparison's direct side).
    // (`sluice node` judges may-replicate by its own table.)
    // (The pause in MULTI is compared with redis-server's own answers.)
    redis_only: [
        client_pause_queued_in_multi_starts_when_exec_ends,
        client_pause_write_holds_what_redis_holds,
        no_multi_commands_are_refused_inside_multi_as_redis_refuses_them,
        client_unblock_releases_a_client_blocked_through_the_proxy,
        wait_counts_the_replicas_that_acknowledged_the_clients_writes,
        wait_while_subscribed_or_watching_answers_as_redis,
    ],
}
