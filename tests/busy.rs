//! A node busy in a script is visible through the proxy (issue 13): PING answers BUSY as
//! the node does, and SCRIPT KILL reaches the node past the busy connection.

mod common;

use std::time::Duration;

use common::{standalone_config, wait_until, Redis, Resp, Sluice};

#[test]
fn ping_shows_a_busy_script_until_it_is_killed() {
    let master = Redis::start_with(&["--busy-reply-threshold", "50"]);
    let p = Sluice::start(&standalone_config(&master, &[], "master", ""));
    let mut looping = p.client();
    looping.send(&["EVAL", "while true do end", "0"]);
    let mut b = p.client();
    wait_until(
        Duration::from_secs(10),
        "PING to answer BUSY",
        || matches!(b.cmd(&["PING"]), Resp::Error(e) if e.starts_with("BUSY")),
    );
    assert_eq!(b.cmd(&["SCRIPT", "KILL"]), Resp::Simple("OK".into()));
    let Resp::Error(e) = looping.read() else {
        panic!("the killed script's client gets an error");
    };
    assert!(e.contains("killed"), "{e}");
    assert_eq!(b.cmd(&["PING"]), Resp::Simple("PONG".into()));
    assert_eq!(looping.cmd(&["PING"]), Resp::Simple("PONG".into()));
}

/// MULTI, a queued command, then a script that runs past the threshold: a command queued
/// meanwhile is refused with BUSY and EXEC, still during the script, is refused with the
/// node's own reason. Returns the replies to the queued command and to EXEC, after killing
/// the script.
fn exec_during_a_busy_script(addr: &str) -> Vec<Resp> {
    let mut c = common::Client::connect(addr);
    let mut looping = common::Client::connect(addr);
    assert_eq!(c.cmd(&["SET", "xx", "1"]), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["MULTI"]), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["INCR", "xx"]), Resp::Simple("QUEUED".into()));
    looping.send(&["EVAL", "while true do end", "0"]);
    let mut other = common::Client::connect(addr);
    wait_until(
        Duration::from_secs(10),
        "the script to be busy",
        || matches!(other.cmd(&["PING"]), Resp::Error(e) if e.starts_with("BUSY")),
    );
    let replies = vec![c.cmd(&["INCR", "xx"]), c.cmd(&["EXEC"])];
    assert_eq!(other.cmd(&["SCRIPT", "KILL"]), Resp::Simple("OK".into()));
    let _ = looping.read();
    // The transaction is over, nothing of it ran.
    assert_eq!(c.cmd(&["PING", "x"]), Resp::Bulk(b"x".to_vec()));
    assert_eq!(c.cmd(&["GET", "xx"]), Resp::Bulk(b"1".to_vec()));
    replies
}

#[test]
fn exec_during_a_busy_script_gets_the_nodes_execabort() {
    let direct = Redis::start_with(&["--busy-reply-threshold", "50"]);
    let want = exec_during_a_busy_script(&direct.addr());
    assert!(
        matches!(&want[1], Resp::Error(e) if e.starts_with("EXECABORT") && e.contains("BUSY")),
        "{want:?}"
    );
    let master = Redis::start_with(&["--busy-reply-threshold", "50"]);
    let p = Sluice::start(&standalone_config(&master, &[], "master", ""));
    assert_eq!(exec_during_a_busy_script(&p.addr()), want);
}

/// Redis's Tcl suite (unit/functions, "test function kill"): FUNCTION STATS, which Redis
/// answers during a busy script, is answered through the proxy too, also in a passthrough
/// pool, where clients that have not authenticated all share the `default` user's node
/// connection (the busy script's).
#[test]
fn function_stats_is_answered_during_a_busy_function() {
    let master = Redis::start_with(&["--busy-reply-threshold", "50"]);
    let extra = "auth = \"passthrough\"";
    let p = Sluice::start(&standalone_config(&master, &[], "master", extra));
    let mut b = p.client();
    let lib = "#!lua name=spin\nredis.register_function('spin', function() while true do end end)";
    assert_eq!(
        b.cmd(&["FUNCTION", "LOAD", lib]),
        Resp::Bulk(b"spin".to_vec())
    );
    let mut looping = p.client();
    looping.send(&["FCALL", "spin", "0"]);
    wait_until(
        Duration::from_secs(10),
        "PING to answer BUSY",
        || matches!(b.cmd(&["PING"]), Resp::Error(e) if e.starts_with("BUSY")),
    );
    let Resp::Array(stats) = b.cmd(&["FUNCTION", "STATS"]) else {
        panic!("FUNCTION STATS answers an array");
    };
    assert_eq!(stats[0], Resp::Bulk(b"running_script".to_vec()));
    assert!(matches!(&stats[1], Resp::Array(s) if s.contains(&Resp::Bulk(b"spin".to_vec()))));
    assert_eq!(b.cmd(&["FUNCTION", "KILL"]), Resp::Simple("OK".into()));
    assert!(matches!(looping.read(), Resp::Error(e) if e.contains("killed")));
    assert_eq!(b.cmd(&["PING"]), Resp::Simple("PONG".into()));
}
