//! A script or function that has written and then runs past `busy-reply-threshold`,
//! differential against redis-server (both started here): other clients get BUSY, SCRIPT
//! KILL / FUNCTION KILL answer UNKILLABLE (or the refusal for the other kind), and
//! `SHUTDOWN NOSAVE` stops the server anyway. Both when the script is slow from its first
//! run and when it was fast before (the node then runs it inline, on its event loop, and
//! has to move the event loop to another thread once it turns slow after writing).

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::node::Node;
use common::{wait_until, Client, Redis, Resp};

const T: Duration = Duration::from_secs(20);

/// A library whose function writes, then loops until the server stops.
const LIBRARY: &str = "#!lua name=stuck\n\
    redis.register_function('stuck', function(keys, args)\n\
      redis.call('set', keys[1], 'written')\n\
      while true do end\n\
    end)";

/// A script that is fast unless its argument is `loop`: then it writes and loops.
const MAYBE: &str = "if ARGV[1] == 'loop' then \
      redis.call('set', KEYS[1], 'written') while true do end \
    end return ARGV[1]";

/// The same as a library (`maybe`).
const MAYBE_LIBRARY: &str = "#!lua name=maybe\n\
    redis.register_function('maybe', function(keys, args)\n\
      if args[1] == 'loop' then\n\
        redis.call('set', keys[1], 'written')\n\
        while true do end\n\
      end\n\
      return args[1]\n\
    end)";

/// How the stuck script gets going.
#[derive(Clone, Copy, Debug)]
enum Start {
    /// It writes and loops on its first run.
    Cold,
    /// The same script ran fast a few times first (a sluice node then runs it inline).
    Warm,
}

/// Raw bytes of one reply as text.
fn raw(c: &mut Client, cmd: &[&str]) -> String {
    String::from_utf8_lossy(&c.cmd_raw(cmd)).into_owned()
}

/// Starts the stuck script (`fcall` false: an EVAL) on `addr`, then records what other
/// clients are told, in order, ending with SHUTDOWN NOSAVE; asserts the server stopped.
fn scenario(addr: &str, fcall: bool, start: Start) -> Vec<String> {
    let mut admin = Client::connect(addr);
    admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "100"]);
    let mut runner = Client::connect(addr);
    match (fcall, start) {
        (true, Start::Cold) => {
            admin.cmd(&["FUNCTION", "LOAD", LIBRARY]);
            runner.send(&["FCALL", "stuck", "1", "k"]);
        }
        (false, Start::Cold) => runner.send(&[
            "EVAL",
            "redis.call('set', KEYS[1], 'written') while true do end",
            "1",
            "k",
        ]),
        (true, Start::Warm) => {
            admin.cmd(&["FUNCTION", "LOAD", MAYBE_LIBRARY]);
            for _ in 0..3 {
                let fast = runner.cmd(&["FCALL", "maybe", "1", "k", "fast"]);
                assert_eq!(fast, Resp::Bulk(b"fast".to_vec()));
            }
            runner.send(&["FCALL", "maybe", "1", "k", "loop"]);
        }
        (false, Start::Warm) => {
            for _ in 0..3 {
                let fast = runner.cmd(&["EVAL", MAYBE, "1", "k", "fast"]);
                assert_eq!(fast, Resp::Bulk(b"fast".to_vec()));
            }
            runner.send(&["EVAL", MAYBE, "1", "k", "loop"]);
        }
    }
    wait_until(T, "BUSY", || {
        raw(&mut Client::connect(addr), &["PING"]).starts_with("-BUSY")
    });
    let mut seen = Vec::new();
    let mut other = Client::connect(addr);
    for cmd in [
        &["GET", "k"][..],
        &["SET", "k", "v"],
        &["SCRIPT", "KILL"],
        &["FUNCTION", "KILL"],
        &["PING"],
    ] {
        seen.push(raw(&mut other, cmd));
    }
    other.send(&["SHUTDOWN", "NOSAVE"]);
    wait_until(T, "the server to stop", || {
        TcpStream::connect(addr).is_err()
    });
    // The script's caller hears nothing more: its connection closes.
    assert!(runner.try_read().is_err(), "{addr}: the runner got a reply");
    seen
}

#[test]
fn a_script_that_wrote_is_unkillable_and_shutdown_nosave_stops_the_node() {
    for start in [Start::Cold, Start::Warm] {
        for fcall in [false, true] {
            let (redis, node) = (Redis::start(), Node::start());
            let want = scenario(&redis.addr(), fcall, start);
            let got = scenario(&node.addr(), fcall, start);
            assert_eq!(got, want, "fcall {fcall}, {start:?}");
            let kill = if fcall { &want[3] } else { &want[2] };
            assert!(
                kill.starts_with("-UNKILLABLE Sorry the script already executed write commands"),
                "{kill}"
            );
        }
    }
}
