//! CLIENT TRACKING BCAST invalidations, differential against redis-server (both started
//! here): Redis reports the keys changed in one event-loop turn together, one `invalidate`
//! per registered prefix, keys in byte order, a NOLOOP client without its own changes.

mod common;

use common::node::Node;
use common::{Client, Redis};

/// What the tracking clients receive while a writer runs `batches` (each batch pipelined
/// in one write, so the server reads and runs it in one turn), ending with a marker write
/// every tracker hears; one string of frames per tracker.
fn invalidations(addr: &str, trackers: &[&[&str]], batches: &[&[&[&str]]]) -> Vec<Vec<String>> {
    let mut clients: Vec<Client> = trackers
        .iter()
        .map(|opts| {
            let mut c = Client::connect(addr);
            c.cmd(&["HELLO", "3"]);
            let mut cmd = vec!["CLIENT", "TRACKING", "on", "BCAST"];
            cmd.extend_from_slice(opts);
            let reply = String::from_utf8_lossy(&c.cmd_raw(&cmd)).into_owned();
            assert_eq!(reply, "+OK\r\n", "{cmd:?}");
            c
        })
        .collect();
    let mut w = Client::connect(addr);
    let mut frames: Vec<Vec<String>> = vec![Vec::new(); clients.len()];
    // Each tracker writes one key itself first (NOLOOP trackers must not hear it), waiting
    // for its reply (pushes read meanwhile are kept): Redis has reported the change by then,
    // so each is reported alone.
    for (i, c) in clients.iter_mut().enumerate() {
        let key = format!("a:own{i}");
        c.send(&["SET", &key, "x"]);
        loop {
            let f = String::from_utf8_lossy(&c.read_raw_reply()).into_owned();
            if !f.starts_with('>') {
                break;
            }
            frames[i].push(f);
        }
    }
    for batch in batches {
        let mut req = Vec::new();
        for cmd in *batch {
            req.extend_from_slice(&common::encode(cmd));
        }
        w.send_raw(&req);
        for _ in 0..batch.len() {
            w.read_raw_reply();
        }
    }
    // Every prefix registered below covers the marker's key.
    w.cmd_raw(&["SET", "a:b:zz-end", "x"]);
    for (c, seen) in clients.iter_mut().zip(&mut frames) {
        loop {
            let f = String::from_utf8_lossy(&c.read_raw_reply()).into_owned();
            let end = f.contains("a:b:zz-end");
            seen.push(f);
            if end {
                break;
            }
        }
    }
    frames
}

#[test]
fn bcast_invalidations_are_batched_per_prefix_as_redis_does() {
    let (redis, node) = (Redis::start(), Node::start());
    let trackers: &[&[&str]] = &[
        &[],
        &["PREFIX", "a:"],
        &["PREFIX", "a:b:"],
        &["PREFIX", "c:", "PREFIX", "a:"],
        &["PREFIX", "a:", "NOLOOP"],
    ];
    let batches: &[&[&[&str]]] = &[
        // One command, keys out of order: one message, keys sorted.
        &[&["MSET", "a:z", "1", "a:b:1", "2", "a:m", "3", "c:1", "4"]],
        // Several commands in one turn, a key changed twice: one message.
        &[
            &["SET", "a:q", "1"],
            &["DEL", "a:z"],
            &["INCR", "a:q"],
            &["SET", "b:x", "1"],
        ],
        // A key the NOLOOP tracker changed itself, then someone else's.
        &[&["SET", "a:own3", "again"]],
        &[&["LPUSH", "a:b:list", "x"], &["RPOP", "a:b:list"]],
    ];
    let want = invalidations(&redis.addr(), trackers, batches);
    let got = invalidations(&node.addr(), trackers, batches);
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(g, w, "tracker {:?}", trackers[i]);
    }
    // The comparison means something: the first batch's keys come in one sorted message.
    assert!(
        want[1]
            .iter()
            .any(|f| f.contains("*3\r\n$5\r\na:b:1\r\n$3\r\na:m\r\n$3\r\na:z\r\n")),
        "{:?}",
        want[1]
    );
}
