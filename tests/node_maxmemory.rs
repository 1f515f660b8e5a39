//! `maxmemory` with `noeviction` on a `sluice node`, against a real redis-server: the same
//! commands get the same replies (`-OOM` refusals for writes, MULTI, EXEC and scripts that
//! may write; reads, deletions and `allow-oom` scripts pass), and the refusals are counted
//! alike in INFO's errorstats and commandstats.

mod common;

use common::node::Node;
use common::{Client, Redis, Resp};

/// The INFO lines of `section` that start with one of `prefixes`, sorted.
fn info_lines(c: &mut Client, section: &str, prefixes: &[&str]) -> Vec<String> {
    let text = c.cmd(&["INFO", section]).text();
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| prefixes.iter().any(|p| l.starts_with(p)))
        .map(|l| {
            // usec figures differ between servers; calls and outcomes must not.
            l.split(',')
                .filter(|f| !f.starts_with("usec"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn oom_refusals_match_redis() {
    let r = Redis::start();
    let n = Node::start();
    let (mut rc, mut nc) = (r.client(), Client::connect(&n.addr()));
    let setup: &[&[&str]] = &[&["SET", "x", "123"], &["RPUSH", "l", "a"]];
    let script: &[&[&str]] = &[
        &["CONFIG", "SET", "maxmemory", "1"],
        &["SET", "y", "1"],
        &["GET", "x"],
        &["DEL", "l"],
        &["EXPIRE", "x", "100"],
        &["INCR", "x"],
        &["LPUSH", "l", "b"],
        &["EVAL", "redis.call('set','x',1) return 1", "1", "x"],
        &["EVAL", "return redis.call('get','x')", "1", "x"],
        &["EVAL", "#!lua flags=\nreturn 1", "0"],
        &[
            "EVAL",
            "#!lua flags=allow-oom\nredis.call('set','x',1) return 1",
            "1",
            "x",
        ],
        &[
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('get','x')",
            "1",
            "x",
        ],
        &[
            "EVAL_RO",
            "#!lua flags=no-writes\nreturn redis.call('get','x')",
            "1",
            "x",
        ],
        &[
            "EVAL",
            "redis.call('del','x') redis.call('set','x',2) return 1",
            "1",
            "x",
        ],
        &[
            "EVAL",
            "local t = redis.pcall('set','x','y') return t['err']",
            "1",
            "x",
        ],
        &["EVAL", "return redis.pcall('set','x','y')", "1", "x"],
        &["EVAL", "return redis.call('nosuch')", "0"],
        &["MULTI"],
        &["GET", "x"],
        &["EXEC"],
        &["CONFIG", "SET", "maxmemory", "0"],
        &["MULTI"],
        &["SET", "z", "1"],
        &["CONFIG", "SET", "maxmemory", "1"],
        &["EXEC"],
        &["CONFIG", "SET", "maxmemory", "0"],
        &["SET", "y", "2"],
        &["GET", "y"],
    ];
    for c in [&mut rc, &mut nc] {
        for cmd in setup {
            c.cmd(cmd);
        }
        c.cmd(&["CONFIG", "RESETSTAT"]);
    }
    for cmd in script {
        let want = rc.cmd_raw(cmd);
        let got = nc.cmd_raw(cmd);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "reply to {cmd:?}"
        );
    }
    let errors = |c: &mut Client| info_lines(c, "errorstats", &["errorstat_"]);
    assert_eq!(errors(&mut nc), errors(&mut rc));
    let total = |c: &mut Client| info_lines(c, "stats", &["total_error_replies"]);
    assert_eq!(total(&mut nc), total(&mut rc));
    let prefixes = [
        "cmdstat_set:",
        "cmdstat_get:",
        "cmdstat_eval:",
        "cmdstat_eval_ro:",
        "cmdstat_incr:",
        "cmdstat_lpush:",
        "cmdstat_exec:",
        "cmdstat_multi:",
    ];
    let cmdstats = |c: &mut Client| info_lines(c, "commandstats", &prefixes);
    assert_eq!(cmdstats(&mut nc), cmdstats(&mut rc));
    assert!(matches!(nc.cmd(&["GET", "y"]), Resp::Bulk(b) if b == b"2"));
}
