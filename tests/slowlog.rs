//! SLOWLOG through the proxy (issue 13): the proxy answers from its own log of the requests
//! that went through it, in Redis's format, following CONFIG SET of its two settings.

mod common;

use common::{standalone_config, Redis, Resp, Sluice};

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

fn entries(reply: Resp) -> Vec<Vec<Resp>> {
    match reply {
        Resp::Array(es) => es
            .into_iter()
            .map(|e| match e {
                Resp::Array(fields) => fields,
                other => panic!("entry {other:?}"),
            })
            .collect(),
        other => panic!("SLOWLOG GET returned {other:?}"),
    }
}

fn args(entry: &[Resp]) -> Vec<String> {
    match &entry[3] {
        Resp::Array(a) => a.iter().map(Resp::text).collect(),
        other => panic!("args {other:?}"),
    }
}

#[test]
fn slowlog_logs_the_proxys_requests_as_redis_does() {
    let master = Redis::start_with(&["--enable-debug-command", "yes"]);
    let p = Sluice::start(&standalone_config(
        &master,
        &[],
        "master",
        "allow_commands = [\"CONFIG\", \"DEBUG\"]",
    ));
    let mut c = p.client();
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]),
        ok()
    );
    assert_eq!(c.cmd(&["CONFIG", "SET", "slowlog-max-len", "10"]), ok());
    // PING is answered by the proxy itself, and logged all the same.
    for _ in 0..20 {
        assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
    }
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), Resp::Int(10));
    let got = entries(c.cmd(&["SLOWLOG", "GET", "3"]));
    assert_eq!(got.len(), 3);
    assert_eq!(args(&got[0]), vec!["SLOWLOG", "LEN"]);
    assert_eq!(args(&got[1]), vec!["PING"]);
    assert_eq!(
        c.cmd(&["SLOWLOG", "GET", "-2"]),
        Resp::Error("ERR count should be greater than or equal to -1".into())
    );
    // A slow forwarded request, with the client's name and the trimming of long arguments.
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "slowpoke"]), ok());
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "20000"]),
        ok()
    );
    assert_eq!(c.cmd(&["SLOWLOG", "RESET"]), ok());
    assert_eq!(c.cmd(&["SET", "fast", &"A".repeat(200)]), ok());
    assert_eq!(c.cmd(&["DEBUG", "SLEEP", "0.05"]), ok());
    let got = entries(c.cmd(&["SLOWLOG", "GET"]));
    assert_eq!(got.len(), 1, "only the slow one: {got:?}");
    assert_eq!(args(&got[0]), vec!["DEBUG", "SLEEP", "0.05"]);
    let Resp::Int(micros) = got[0][2] else {
        panic!("duration {:?}", got[0][2]);
    };
    assert!(micros >= 20_000, "{micros}");
    assert_eq!(got[0][5], Resp::Bulk(b"slowpoke".to_vec()));
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]),
        ok()
    );
    assert_eq!(c.cmd(&["SLOWLOG", "RESET"]), ok());
    assert_eq!(c.cmd(&["SET", "long", &"A".repeat(200)]), ok());
    let got = entries(c.cmd(&["SLOWLOG", "GET"]));
    assert_eq!(
        args(&got[0])[2],
        format!("{}... (72 more bytes)", "A".repeat(128))
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]),
        ok()
    );
    assert_eq!(c.cmd(&["SLOWLOG", "RESET"]), ok());
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
    assert_eq!(c.cmd(&["SLOWLOG", "LEN"]), Resp::Int(0));
}

#[test]
fn latency_histogram_includes_commands_the_proxy_answers() {
    latency_histogram_of_proxy_answers("");
}

/// The same in a passthrough pool (unit/latency-monitor), where CLIENT LIST of a client that
/// has not authenticated is first checked with the master's `ACL DRYRUN` for the `default`
/// user, then answered by the proxy.
#[test]
fn latency_histogram_includes_commands_the_proxy_answers_in_passthrough_pools() {
    latency_histogram_of_proxy_answers("auth = \"passthrough\"");
}

fn latency_histogram_of_proxy_answers(extra: &str) {
    let master = Redis::start();
    let extra = format!("allow_commands = [\"CONFIG\"]\n{extra}");
    let p = Sluice::start(&standalone_config(&master, &[], "master", &extra));
    let mut c = p.client();
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), ok());
    assert!(matches!(c.cmd(&["CLIENT", "ID"]), Resp::Int(_)));
    assert!(matches!(c.cmd(&["CLIENT", "LIST"]), Resp::Bulk(_)));
    assert_eq!(c.cmd(&["SET", "h", "1"]), ok());
    assert!(matches!(c.cmd(&["HELLO", "3"]), Resp::Map(_)));
    let Resp::Map(all) = c.cmd(&["LATENCY", "HISTOGRAM", "client", "set"]) else {
        panic!("LATENCY HISTOGRAM is a map");
    };
    let names: Vec<String> = all.iter().map(|(k, _)| k.text()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for want in ["client|id", "client|list", "set"] {
        let (_, entry) = all
            .iter()
            .find(|(k, _)| k.text() == want)
            .unwrap_or_else(|| panic!("{want} missing from {names:?}"));
        let Resp::Map(fields) = entry else {
            panic!("{entry:?}");
        };
        assert_eq!(fields[0], (Resp::Bulk(b"calls".to_vec()), Resp::Int(1)));
    }
}

/// Redis's own Tcl suite (unit/slowlog): a blocked BLPOP is logged when it is served, after
/// a SLOWLOG RESET queued in the MULTI that served it. The same steps on a direct connection
/// and through the proxy leave the same newest entry.
#[test]
fn blocked_commands_are_logged_after_a_reset_queued_in_multi() {
    let newest = |addr: &str, blocked_on: &Redis| {
        let mut c = common::Client::connect(addr);
        assert_eq!(
            c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]),
            ok()
        );
        let mut rd = common::Client::connect(addr);
        rd.send(&["blpop", "l", "0"]);
        common::wait_until(std::time::Duration::from_secs(10), "BLPOP blocked", || {
            blocked_on.info("clients").contains("blocked_clients:1\r\n")
        });
        assert_eq!(c.cmd(&["MULTI"]), ok());
        assert_eq!(c.cmd(&["LPUSH", "l", "foo"]), Resp::Simple("QUEUED".into()));
        assert_eq!(c.cmd(&["SLOWLOG", "RESET"]), Resp::Simple("QUEUED".into()));
        assert!(matches!(c.cmd(&["EXEC"]), Resp::Array(_)));
        assert!(matches!(rd.read(), Resp::Array(_)));
        let got = entries(c.cmd(&["SLOWLOG", "GET"]));
        args(&got[0])
    };
    let direct = Redis::start();
    let want = newest(&direct.addr(), &direct);
    assert_eq!(want, vec!["blpop", "l", "0"]);
    let master = Redis::start();
    let p = Sluice::start(&standalone_config(
        &master,
        &[],
        "master",
        "allow_commands = [\"CONFIG\"]",
    ));
    assert_eq!(newest(&p.addr(), &master), want);
}
