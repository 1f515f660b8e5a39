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

/// A script that is fast unless its argument is `slow`: then it writes and runs for about
/// `ARGV[2]` ms (by the server's clock), ending by itself.
const SLOW_FOR: &str = "if ARGV[1] == 'slow' then \
      redis.call('set', KEYS[1], 'written') \
      local t = redis.call('time') \
      local stop = t[1] * 1000000 + t[2] + ARGV[2] * 1000 \
      repeat t = redis.call('time') until t[1] * 1000000 + t[2] >= stop \
    end return ARGV[1]";

/// With two worker threads, a client whose request reaches the store while another
/// worker's batch holds it, just before that batch starts an (inline) script, gets BUSY
/// once the script passes `busy-reply-threshold`, as with Redis, rather than waiting on
/// the lock until the script ends. The batch sleeps first (DEBUG SLEEP) so that the other
/// client is certainly waiting for the store when the script starts.
#[test]
fn a_client_waiting_for_the_store_when_a_script_starts_gets_busy() {
    let node = Node::start_with(&["--threads", "2"]);
    let mut admin = node.client();
    admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "200"]);
    let mut runner = node.client();
    for _ in 0..3 {
        let fast = runner.cmd(&["EVAL", SLOW_FOR, "1", "k", "fast", "0"]);
        assert_eq!(fast, Resp::Bulk(b"fast".to_vec()));
    }
    let script_ms = 4000;
    let mut batch = common::encode(&["DEBUG", "SLEEP", "0.5"]);
    batch.extend(common::encode(&[
        "EVAL",
        SLOW_FOR,
        "1",
        "k",
        "slow",
        &script_ms.to_string(),
    ]));
    let mut other = node.client();
    runner.send_raw(&batch);
    // PING until the node answers something else than PONG (a PING that reached the node
    // before the batch took the store is answered at once).
    let started = std::time::Instant::now();
    let (reply, waited) = loop {
        let sent = std::time::Instant::now();
        let reply = raw(&mut other, &["PING"]);
        if reply != "+PONG\r\n" || started.elapsed() > Duration::from_millis(script_ms) {
            break (reply, sent.elapsed());
        }
    };
    assert!(reply.starts_with("-BUSY"), "{reply:?} after {waited:?}");
    assert!(
        waited < Duration::from_millis(script_ms / 2),
        "BUSY came only after {waited:?}"
    );
    assert_eq!(runner.read(), Resp::Simple("OK".into()));
    assert_eq!(runner.read(), Resp::Bulk(b"slow".to_vec()));
    assert_eq!(raw(&mut other, &["GET", "k"]), "$7\r\nwritten\r\n");
}

/// Writes `before`, starts a script that writes `k` and loops, and stops the server with
/// SHUTDOWN NOSAVE once it is busy. `restart` waits for the process to end, starts it again
/// on the same files and returns its address; returns what `before` and `k` then hold.
fn shutdown_mid_script(addr: &str, restart: impl FnOnce() -> String) -> Vec<Resp> {
    let mut admin = Client::connect(addr);
    assert_eq!(
        admin.cmd(&["SET", "before", "1"]),
        Resp::Simple("OK".into())
    );
    admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "100"]);
    let mut runner = Client::connect(addr);
    runner.send(&[
        "EVAL",
        "redis.call('set', KEYS[1], 'partial') while true do end",
        "1",
        "k",
    ]);
    wait_until(T, "BUSY", || {
        raw(&mut Client::connect(addr), &["PING"]).starts_with("-BUSY")
    });
    admin.send(&["SHUTDOWN", "NOSAVE"]);
    wait_until(T, "the server to stop", || {
        TcpStream::connect(addr).is_err()
    });
    let addr = restart();
    let mut c = Client::connect(&addr);
    vec![c.cmd(&["GET", "before"]), c.cmd(&["GET", "k"])]
}

/// SHUTDOWN NOSAVE during a script that wrote: Redis propagates a script's effects when
/// it ends (`propagatePendingCommands` after the top-level call) and exits inside it, so
/// the append-only file holds nothing of it; the node's must not hold its partial writes.
#[test]
fn shutdown_nosave_mid_script_leaves_none_of_it_in_the_aof() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dir_arg = dir.path().to_string_lossy().into_owned();
    let mut redis = Redis::start_with(&["--appendonly", "yes", "--dir", &dir_arg]);
    let want = shutdown_mid_script(&redis.addr(), || {
        redis.restart();
        redis.addr()
    });
    assert_eq!(want, vec![Resp::Bulk(b"1".to_vec()), Resp::Nil]);
    let mut node = Node::start_with(&["--appendonly", "yes"]);
    let got = shutdown_mid_script(&node.addr(), || {
        assert!(node.wait_exit(T), "the node did not exit");
        node.restart();
        node.addr()
    });
    assert_eq!(got, want);
}
