//! Scripts and functions on `sluice node`: replicated as their effects, kept in the AOF,
//! and a long script answered with BUSY until SCRIPT KILL.

mod common;

use std::time::Duration;

use common::node::Node;
use common::{wait_until, Resp};

const T: Duration = Duration::from_secs(10);

const LIB: &str = "#!lua name=lib\nredis.register_function('bump', function(keys, args) return redis.call('incrby', keys[1], args[1]) end)";

/// Random values and several writes in one script: the replica must end up with the
/// master's values (effects, not the script, are replicated), functions loaded on the
/// master reach replicas attached before and after, and FCALL's writes follow.
#[test]
fn scripts_and_functions_replicate_as_effects() {
    let master = Node::start();
    let early = Node::replica_of(&master);
    let mut c = master.client();
    let script = "for i = 1, 5 do redis.call('rpush', KEYS[1], math.random(1000000)) end \
                  redis.call('set', KEYS[2], redis.call('llen', KEYS[1])) return 1";
    for _ in 0..3 {
        assert_eq!(c.cmd(&["EVAL", script, "2", "rand", "len"]), Resp::Int(1));
    }
    assert_eq!(
        c.cmd(&["FUNCTION", "LOAD", LIB]),
        Resp::Bulk(b"lib".to_vec())
    );
    assert_eq!(c.cmd(&["FCALL", "bump", "1", "n", "5"]), Resp::Int(5));
    // A read-only script writes nothing and replicates nothing.
    assert_eq!(
        c.cmd(&["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "len"]),
        Resp::Bulk(b"15".to_vec())
    );
    let late = Node::replica_of(&master);
    let want = c.cmd(&["LRANGE", "rand", "0", "-1"]);
    for r in [&early, &late] {
        wait_until(T, "replica has n", || r.get("n").as_deref() == Some("5"));
        r.wait_synced_with(&master);
        let mut rc = r.client();
        assert_eq!(rc.cmd(&["LRANGE", "rand", "0", "-1"]), want);
        assert_eq!(r.get("len").as_deref(), Some("15"));
        let ro = rc.cmd(&["FCALL_RO", "bump", "1", "n", "1"]);
        assert!(
            format!("{ro:?}").contains("READONLY Can not run script with write flag"),
            "{ro:?}"
        );
        let list = rc.cmd(&["FUNCTION", "LIST"]);
        assert!(words(&list).contains(&"bump".to_string()), "{list:?}");
        // A write script is refused on a replica, as Redis refuses it.
        let refused = rc.cmd(&["EVAL", "return redis.call('set', 'x', 1)", "0"]);
        assert!(format!("{refused:?}").contains("READONLY"), "{refused:?}");
    }
    assert_eq!(
        c.cmd(&["FUNCTION", "DELETE", "lib"]),
        Resp::Simple("OK".into())
    );
    wait_until(T, "FUNCTION DELETE reached the replica", || {
        early.client().cmd(&["FUNCTION", "LIST"]) == Resp::Array(vec![])
    });
}

/// Every bulk string in a reply, depth first.
fn words(r: &Resp) -> Vec<String> {
    match r {
        Resp::Bulk(b) => vec![String::from_utf8_lossy(b).into_owned()],
        Resp::Array(items) => items.iter().flat_map(words).collect(),
        _ => vec![],
    }
}

fn fsynced(node: &Node) -> bool {
    node.info_field("persistence", "aof_fsynced_size")
        == node.info_field("persistence", "aof_current_size")
}

/// Script effects and function libraries survive a restart from the AOF, and a rewrite.
#[test]
fn aof_keeps_script_effects_and_functions() {
    let mut node = Node::start_with(&["--appendonly", "yes"]);
    let mut c = node.client();
    c.cmd(&[
        "EVAL",
        "redis.call('set', KEYS[1], math.random(1000)) redis.call('incr', KEYS[2]) return 1",
        "2",
        "r",
        "n",
    ]);
    assert_eq!(
        c.cmd(&["FUNCTION", "LOAD", LIB]),
        Resp::Bulk(b"lib".to_vec())
    );
    assert_eq!(c.cmd(&["FCALL", "bump", "1", "n", "10"]), Resp::Int(11));
    let r = node.get("r");
    wait_until(T, "fsynced", || fsynced(&node));
    node.restart();
    assert_eq!(node.get("r"), r);
    assert_eq!(node.get("n").as_deref(), Some("11"));
    let mut c = node.client();
    assert_eq!(c.cmd(&["FCALL", "bump", "1", "n", "1"]), Resp::Int(12));
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]),
        Resp::Simple("Background append only file rewriting started".into())
    );
    wait_until(T, "rewrite fsynced", || fsynced(&node));
    node.restart();
    let mut c = node.client();
    assert_eq!(c.cmd(&["FCALL", "bump", "1", "n", "1"]), Resp::Int(13));
}

/// A script past `busy-reply-threshold` makes other clients (new ones too) get BUSY; SCRIPT
/// KILL stops it, its caller gets the kill error, and the node serves again.
#[test]
fn a_busy_script_answers_busy_until_script_kill() {
    let node = Node::start();
    let mut c = node.client();
    c.cmd(&["CONFIG", "SET", "busy-reply-threshold", "50"]);
    let mut runner = node.client();
    runner.send(&["EVAL", "local i = 0 while true do i = i + 1 end", "0"]);
    wait_until(T, "BUSY", || {
        format!("{:?}", node.client().cmd(&["PING"])).contains("BUSY")
    });
    assert!(format!("{:?}", c.cmd(&["GET", "k"])).contains("BUSY Redis is busy running a script"));
    assert!(format!("{:?}", c.cmd(&["FUNCTION", "KILL"])).contains("BUSY"));
    assert_eq!(c.cmd(&["SCRIPT", "KILL"]), Resp::Simple("OK".into()));
    let reply = runner.read();
    assert!(
        format!("{reply:?}").contains("Script killed by user"),
        "{reply:?}"
    );
    wait_until(T, "PONG", || {
        c.cmd(&["PING"]) == Resp::Simple("PONG".into())
    });
    // A script that wrote cannot be killed; it ends on its own here.
    runner.send(&[
        "EVAL",
        "redis.call('set', 'w', 1) local t = 0 for i = 1, 30000000 do t = t + i end return 1",
        "0",
    ]);
    wait_until(T, "BUSY again", || {
        format!("{:?}", c.cmd(&["PING"])).contains("BUSY")
    });
    assert!(format!("{:?}", c.cmd(&["SCRIPT", "KILL"])).contains("UNKILLABLE"));
    assert_eq!(runner.read(), Resp::Int(1));
    assert_eq!(node.get("w").as_deref(), Some("1"));
}

/// `used_memory_lua` after `SCRIPT FLUSH` and `rounds` batches of 10,000 pipelined EVALs
/// (Redis's unit/scripting "EVAL does not leak in the Lua stack").
fn lua_memory_after_evals(addr: &str, rounds: usize) -> Vec<u64> {
    let mut c = common::Client::connect(addr);
    c.cmd(&["SCRIPT", "FLUSH"]);
    c.cmd(&["SET", "x", "0"]);
    let eval = common::encode(&["EVAL", "return redis.call('incr',KEYS[1])", "1", "x"]);
    let mut seen = Vec::new();
    for round in 1..=rounds {
        c.send_raw(&eval.repeat(10_000));
        for _ in 0..10_000 {
            assert!(matches!(c.read(), Resp::Int(_)));
        }
        assert_eq!(
            c.cmd(&["GET", "x"]),
            Resp::Bulk((round * 10_000).to_string().into())
        );
        let info = match c.cmd(&["INFO", "memory"]) {
            Resp::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            other => panic!("INFO returned {other:?}"),
        };
        let used = info
            .lines()
            .find_map(|l| l.strip_prefix("used_memory_lua:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("used_memory_lua");
        seen.push(used);
    }
    seen
}

/// The Lua VM's memory after many EVALs is its live size, the same after each batch and
/// under Redis's 100 KB bound, on the node as on redis-server: garbage is collected by
/// Redis's step (50 KB of work every 50 scripts), so the figure does not depend on where
/// Lua's own collection cycle happens to be.
#[test]
fn used_memory_lua_is_the_live_size_after_many_evals() {
    let redis = common::Redis::start();
    let node = Node::start();
    for addr in [redis.addr(), node.addr()] {
        let seen = lua_memory_after_evals(&addr, 3);
        assert!(seen.iter().all(|&m| m < 100 * 1024), "{addr}: {seen:?}");
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{addr}: {seen:?}");
    }
}
