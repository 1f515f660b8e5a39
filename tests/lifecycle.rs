//! The proxy's lifecycle: draining on SIGTERM (`drain_timeout`, `/ready` 503, a second SIGTERM
//! exits at once) and hot reload (SIGHUP, `POST /reload` with its access rules), against real
//! redis-server processes.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::{wait_until, Client, Redis, Resp, Sluice};

/// A config with an admin server and one pool per `(name, master, read_from)`.
fn config(top: &str, admin_extra: &str, pools: &[(&str, &Redis, &str)]) -> String {
    let mut text = format!("{top}\n[admin]\nlisten = \"127.0.0.1:0\"\n{admin_extra}\n");
    for (name, master, read_from) in pools {
        text.push_str(&format!(
            "\n[[pools]]\nname = \"{name}\"\nlisten = \"127.0.0.1:0\"\nmode = \"standalone\"\n\
             master = \"{}\"\nread_from = \"{read_from}\"\nhealth_check_interval = \"100ms\"\n",
            master.addr()
        ));
    }
    text
}

/// The value of the metric line starting with `series` (0 when absent).
fn metric(proxy: &Sluice, series: &str) -> f64 {
    let (_, body) = proxy.http_get("/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The listen address of `pool` as `/topology` reports it.
fn listen_of(proxy: &Sluice, pool: &str) -> Option<String> {
    let (_, body) = proxy.http_get("/topology");
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    json["pools"][pool]["listen"].as_str().map(str::to_string)
}

fn refuses_connections(addr: &str) -> bool {
    TcpStream::connect(addr).is_err()
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let master = Redis::start();
    let mut proxy = Sluice::start(&config(
        "drain_timeout = \"30s\"",
        "",
        &[("main", &master, "master")],
    ));
    wait_until(Duration::from_secs(10), "ready", || {
        proxy.http_get("/ready").0 == 200
    });
    let mut blocked = proxy.client();
    blocked.set_timeout(Duration::from_secs(20));
    blocked.send(&["BLPOP", "drain:q", "0"]);
    // The BLPOP has reached the master before the drain starts.
    wait_until(
        Duration::from_secs(10),
        "BLPOP blocked on the master",
        || master.info("clients").contains("blocked_clients:1"),
    );
    proxy.signal("TERM");
    wait_until(Duration::from_secs(5), "/ready 503 while draining", || {
        proxy.http_get("/ready") == (503, "draining\n".to_string())
    });
    let addr = proxy.addr();
    wait_until(Duration::from_secs(5), "listener closed", || {
        refuses_connections(&addr)
    });
    assert!(
        proxy.wait_exit(Duration::from_millis(300)).is_none(),
        "exited with a request in flight"
    );
    // The in-flight request completes during the drain.
    assert_eq!(
        master.client().cmd(&["LPUSH", "drain:q", "x"]),
        Resp::Int(1)
    );
    assert_eq!(
        blocked.read(),
        Resp::Array(vec![
            Resp::Bulk(b"drain:q".to_vec()),
            Resp::Bulk(b"x".to_vec())
        ])
    );
    // The last client leaves: the drain is over well before drain_timeout.
    drop(blocked);
    let status = proxy
        .wait_exit(Duration::from_secs(15))
        .expect("proxy still running after its last client left");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn drain_ends_at_drain_timeout_and_a_second_sigterm_exits_at_once() {
    let master = Redis::start();
    let text = config("drain_timeout = \"1s\"", "", &[("main", &master, "master")]);
    let mut proxy = Sluice::start(&text);
    let mut idle = proxy.client();
    assert_eq!(idle.cmd(&["PING"]), Resp::Simple("PONG".into()));
    proxy.signal("TERM");
    let status = proxy
        .wait_exit(Duration::from_secs(15))
        .expect("drain_timeout did not end the drain");
    assert!(status.success(), "exit status {status:?}");
    assert!(idle.is_closed(), "client left open after exit");

    let mut proxy = Sluice::start(&text.replace("\"1s\"", "\"1h\""));
    let mut idle = proxy.client();
    assert_eq!(idle.cmd(&["PING"]), Resp::Simple("PONG".into()));
    proxy.signal("TERM");
    wait_until(Duration::from_secs(5), "draining", || {
        proxy.http_get("/ready").0 == 503
    });
    proxy.signal("TERM");
    let status = proxy
        .wait_exit(Duration::from_secs(10))
        .expect("a second SIGTERM did not stop the drain");
    assert!(status.success(), "exit status {status:?}");
}

/// A request still in flight when `drain_timeout` runs out does not hold the exit: the drain
/// closes every pool's listener at once, lasts at least `drain_timeout` (not less: the request
/// could still have finished), then the process exits 0 and the waiting client sees its
/// connection closed.
#[test]
fn drain_timeout_cuts_a_request_still_in_flight() {
    let master = Redis::start();
    let other = Redis::start();
    let mut proxy = Sluice::start(&config(
        "drain_timeout = \"1s\"",
        "",
        &[("main", &master, "master"), ("other", &other, "master")],
    ));
    let second = listen_of(&proxy, "other").expect("second pool listens");
    let mut blocked = proxy.client();
    blocked.set_timeout(Duration::from_secs(20));
    blocked.send(&["BLPOP", "drain:never", "0"]);
    wait_until(
        Duration::from_secs(10),
        "BLPOP blocked on the master",
        || master.info("clients").contains("blocked_clients:1"),
    );
    let signalled = std::time::Instant::now();
    proxy.signal("TERM");
    let first = proxy.addr();
    wait_until(Duration::from_secs(5), "both listeners closed", || {
        refuses_connections(&first) && refuses_connections(&second)
    });
    let status = proxy
        .wait_exit(Duration::from_secs(15))
        .expect("drain_timeout did not end a drain with a request in flight");
    assert!(
        signalled.elapsed() >= Duration::from_secs(1),
        "exited {:?} after SIGTERM, before drain_timeout",
        signalled.elapsed()
    );
    assert!(status.success(), "exit status {status:?}");
    assert!(blocked.is_closed(), "the waiting client was left open");
}

#[test]
fn sighup_reloads_pools_without_dropping_clients() {
    let (m1, m2) = (Redis::start(), Redis::start());
    m1.client().cmd(&["SET", "where", "m1"]);
    m2.client().cmd(&["SET", "where", "m2"]);
    let proxy = Sluice::start(&config(
        "",
        "",
        &[("a", &m1, "master"), ("b", &m1, "master")],
    ));
    let (a_addr, b_addr) = (proxy.pools[0].to_string(), proxy.pools[1].to_string());
    let mut a = Client::connect(&a_addr);
    let mut b = Client::connect(&b_addr);
    assert_eq!(a.cmd(&["GET", "where"]), Resp::Bulk(b"m1".to_vec()));
    assert_eq!(b.cmd(&["GET", "where"]), Resp::Bulk(b"m1".to_vec()));

    // a unchanged, b moved to m2, c added.
    let next = config(
        "",
        "",
        &[
            ("a", &m1, "master"),
            ("b", &m2, "master"),
            ("c", &m2, "master"),
        ],
    );
    std::fs::write(proxy.config_path(), next).expect("rewrite config");
    proxy.signal("HUP");
    let ok = "sluice_config_reloads_total{result=\"ok\"}";
    wait_until(Duration::from_secs(10), "reload counted", || {
        metric(&proxy, ok) == 1.0
    });
    // Nobody was dropped: a is untouched, b's client keeps the pool it connected to.
    assert_eq!(a.cmd(&["GET", "where"]), Resp::Bulk(b"m1".to_vec()));
    assert_eq!(b.cmd(&["GET", "where"]), Resp::Bulk(b"m1".to_vec()));
    // New clients of b get the new master, on the same listener; c listens.
    assert_eq!(
        Client::connect(&b_addr).cmd(&["GET", "where"]),
        Resp::Bulk(b"m2".to_vec())
    );
    let c_addr = listen_of(&proxy, "c").expect("pool c in /topology");
    assert_eq!(
        Client::connect(&c_addr).cmd(&["GET", "where"]),
        Resp::Bulk(b"m2".to_vec())
    );

    // An invalid file is rejected with its reason; the old config stays in force.
    std::fs::write(
        proxy.config_path(),
        "[[pools]]\nname = \"a\"\nread_from = \"bogus\"\n",
    )
    .expect("rewrite config");
    let (status, body) = proxy.http("POST", "/reload", &[]);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("reload rejected") && body.contains("pools[0]"),
        "{body}"
    );
    assert_eq!(
        metric(&proxy, "sluice_config_reloads_total{result=\"error\"}"),
        1.0
    );
    assert_eq!(a.cmd(&["GET", "where"]), Resp::Bulk(b"m1".to_vec()));
    assert_eq!(
        Client::connect(&c_addr).cmd(&["GET", "where"]),
        Resp::Bulk(b"m2".to_vec())
    );

    // c removed: its listener closes; a and b go on.
    let last = config("", "", &[("a", &m1, "master"), ("b", &m2, "master")]);
    std::fs::write(proxy.config_path(), last).expect("rewrite config");
    let (status, body) = proxy.http("POST", "/reload", &[]);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("pool c removed"), "{body}");
    wait_until(Duration::from_secs(5), "c's listener closed", || {
        refuses_connections(&c_addr)
    });
    assert_eq!(a.cmd(&["GET", "where"]), Resp::Bulk(b"m1".to_vec()));
    assert_eq!(b.cmd(&["GET", "where"]), Resp::Bulk(b"m1".to_vec()));
}

#[test]
fn post_reload_needs_post_and_the_token() {
    let master = Redis::start();
    let text = config(
        "",
        "reload_token = \"s3cret\"",
        &[("main", &master, "master")],
    );
    let proxy = Sluice::start(&text);
    assert_eq!(proxy.http("GET", "/reload", &[]).0, 405);
    assert_eq!(proxy.http("POST", "/reload", &[]).0, 401);
    let wrong = proxy.http("POST", "/reload", &["Authorization: Bearer nope"]);
    assert_eq!(wrong.0, 401);
    let (status, body) = proxy.http("POST", "/reload", &["Authorization: Bearer s3cret"]);
    assert_eq!(
        (status, body.as_str()),
        (200, "reloaded: no pool changed\n")
    );
    assert_eq!(
        metric(&proxy, "sluice_config_reloads_total{result=\"ok\"}"),
        1.0
    );
    // The read-only endpoints need nothing.
    assert_eq!(proxy.http_get("/healthz").0, 200);
}

/// config/reload.toml (the README's example), pointed at a test master: its token opens
/// `POST /reload`, and a changed `read_from` applies to new clients.
#[test]
fn the_reload_example_config_runs_and_reloads() {
    let master = Redis::start();
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/reload.toml"))
            .expect("config/reload.toml");
    let text = example
        .replace("127.0.0.1:6379", &master.addr())
        .replace("127.0.0.1:6380", "127.0.0.1:0")
        .replace("127.0.0.1:9121", "127.0.0.1:0");
    let proxy = Sluice::start(&text);
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Resp::Simple("OK".into()));
    std::fs::write(
        proxy.config_path(),
        text.replace("read_from = \"master\"", "read_from = \"prefer-replica\""),
    )
    .expect("rewrite config");
    let auth = "Authorization: Bearer change-me";
    let (status, body) = proxy.http("POST", "/reload", &[auth]);
    assert_eq!(
        (status, body.as_str()),
        (200, "reloaded: pool main changed\n")
    );
    let (_, topology) = proxy.http_get("/topology");
    assert!(
        topology.contains("\"read_from\": \"prefer-replica\""),
        "{topology}"
    );
    assert_eq!(c.cmd(&["GET", "k"]), Resp::Bulk(b"v".to_vec()));
    assert_eq!(proxy.client().cmd(&["GET", "k"]), Resp::Bulk(b"v".to_vec()));
}
