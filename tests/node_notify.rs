//! Keyspace notifications, differential: the same writes against a real redis-server and a
//! `sluice node` (both started here), with a subscriber on each; the messages each
//! subscriber receives must be byte-identical, in RESP2 (pmessage arrays) and RESP3 (push
//! frames), for several `notify-keyspace-events` settings. Also CONFIG SET/GET of the flags.

mod common;

use common::node::Node;
use common::{Client, Redis};

/// The channel a script's end is announced on, so a subscriber knows it has read every
/// notification the script caused (messages arrive in the order they were published).
const END: &str = "notify-test-end";

/// One step of a script: a command, or DUMP of a key followed by RESTORE of the payload
/// under another name (the payload differs between servers, so it is taken from each).
enum Step {
    Cmd(&'static [&'static str]),
    DumpRestore(&'static str, &'static str),
}
use Step::{Cmd as C, DumpRestore};

/// Runs `script` on `writer`, then publishes the end marker; returns every frame
/// `subscriber` received up to it, exact bytes.
fn notifications(writer: &mut Client, subscriber: &mut Client, script: &[Step]) -> Vec<String> {
    for step in script {
        match step {
            Step::Cmd(cmd) => {
                writer.cmd(cmd);
            }
            Step::DumpRestore(from, to) => {
                let payload = match writer.cmd(&["DUMP", from]) {
                    common::Resp::Bulk(b) => b,
                    other => panic!("DUMP {from}: {other:?}"),
                };
                // The payload is binary: the command is encoded around it by hand.
                let mut req = format!(
                    "*5\r\n$7\r\nRESTORE\r\n${}\r\n{to}\r\n$1\r\n0\r\n",
                    to.len()
                )
                .into_bytes();
                req.extend_from_slice(format!("${}\r\n", payload.len()).as_bytes());
                req.extend_from_slice(&payload);
                req.extend_from_slice(b"\r\n$7\r\nREPLACE\r\n");
                writer.send_raw(&req);
                writer.read();
            }
        }
    }
    writer.cmd(&["PUBLISH", END, "x"]);
    let mut got = Vec::new();
    loop {
        let frame = String::from_utf8_lossy(&subscriber.read_raw_reply()).into_owned();
        if frame.contains(END) {
            return got;
        }
        got.push(frame);
    }
}

/// A writer and a `PSUBSCRIBE *` subscriber (RESP3 if `resp3`) on `addr`, with `flags` set.
fn clients(addr: &str, flags: &str, resp3: bool) -> (Client, Client) {
    let mut writer = Client::connect(addr);
    writer.cmd(&["FLUSHALL"]);
    let set = writer.cmd(&["CONFIG", "SET", "notify-keyspace-events", flags]);
    assert_eq!(set, common::Resp::Simple("OK".into()), "flags {flags}");
    let mut sub = Client::connect(addr);
    if resp3 {
        sub.cmd(&["HELLO", "3"]);
    }
    sub.cmd(&["PSUBSCRIBE", "*"]);
    (writer, sub)
}

/// Runs `script` with `flags` against both servers, in both protocols, and asserts that
/// the subscribers saw the same frames; returns redis-server's RESP2 frames so callers can
/// check the script really caused notifications.
fn compare(redis: &Redis, node: &Node, flags: &str, script: &[Step]) -> Vec<String> {
    let mut first = Vec::new();
    for resp3 in [false, true] {
        let (mut rw, mut rs) = clients(&redis.addr(), flags, resp3);
        let want = notifications(&mut rw, &mut rs, script);
        let (mut nw, mut ns) = clients(&node.addr(), flags, resp3);
        let got = notifications(&mut nw, &mut ns, script);
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(g, w, "flags {flags}, resp3 {resp3}: message {i} differs");
        }
        assert_eq!(
            got.len(),
            want.len(),
            "flags {flags}, resp3 {resp3}: message count (redis {want:?}, node {got:?})"
        );
        if !resp3 {
            first = want;
        }
    }
    first
}

/// Writes of every type, each command form with its own event names (and `del` where the
/// command empties or removes a key).
const WRITES: &[Step] = &[
    // Strings and counters.
    C(&["SET", "s", "v"]),
    C(&["SET", "s", "v2", "EX", "100"]),
    C(&["SET", "s", "v3", "NX"]),
    C(&["SET", "s", "v4", "XX", "GET"]),
    C(&["SETEX", "se", "100", "v"]),
    C(&["PSETEX", "pse", "100000", "v"]),
    C(&["SETNX", "snx", "v"]),
    C(&["SETNX", "snx", "v"]),
    C(&["GETSET", "s", "v5"]),
    C(&["MSET", "m1", "a", "m2", "b"]),
    C(&["MSETNX", "m3", "a", "m4", "b"]),
    C(&["MSETNX", "m3", "a", "m5", "b"]),
    C(&["APPEND", "ap", "abc"]),
    C(&["APPEND", "ap", "def"]),
    C(&["SETRANGE", "sr", "3", "xy"]),
    C(&["SETRANGE", "sr", "0", ""]),
    C(&["INCR", "n"]),
    C(&["DECRBY", "n", "5"]),
    C(&["INCRBYFLOAT", "f", "1.5"]),
    C(&["SETBIT", "b", "7", "1"]),
    C(&["GETEX", "s", "EX", "50"]),
    C(&["GETEX", "s", "PERSIST"]),
    C(&["GETEX", "s"]),
    C(&["GETEX", "se", "PXAT", "1"]),
    C(&["GETDEL", "m1"]),
    C(&["GETDEL", "m1"]),
    C(&["PFADD", "h1", "a", "b"]),
    C(&["PFADD", "h1", "a"]),
    C(&["PFADD", "h2", "c"]),
    C(&["PFMERGE", "h3", "h1", "h2"]),
    // Generic.
    C(&["EXPIRE", "m2", "100"]),
    C(&["PEXPIREAT", "m2", "99999999999999"]),
    C(&["PERSIST", "m2"]),
    C(&["PERSIST", "m2"]),
    C(&["EXPIRE", "m2", "-1"]),
    C(&["DEL", "m3", "nokey", "m4"]),
    C(&["UNLINK", "snx"]),
    C(&["RENAME", "ap", "ap2"]),
    C(&["SET", "taken", "x"]),
    C(&["RENAME", "ap2", "taken"]),
    C(&["RENAMENX", "taken", "sr"]),
    C(&["RENAMENX", "taken", "free"]),
    C(&["COPY", "free", "copied"]),
    C(&["COPY", "free", "copied", "REPLACE"]),
    C(&["COPY", "free", "copied", "DB", "2"]),
    DumpRestore("free", "restored"),
    DumpRestore("free", "restored"),
    // Lists.
    C(&["LPUSH", "l", "a", "b", "c", "d", "e"]),
    C(&["RPUSH", "l", "f"]),
    C(&["LPUSHX", "l", "g"]),
    C(&["RPUSHX", "nolist", "g"]),
    C(&["LPOP", "l"]),
    C(&["RPOP", "l", "2"]),
    C(&["LSET", "l", "0", "z"]),
    C(&["LINSERT", "l", "BEFORE", "z", "y"]),
    C(&["LINSERT", "l", "BEFORE", "nothere", "y"]),
    C(&["LREM", "l", "0", "y"]),
    C(&["LTRIM", "l", "0", "1"]),
    C(&["LMOVE", "l", "l2", "LEFT", "RIGHT"]),
    C(&["RPOPLPUSH", "l2", "l2"]),
    C(&["LMOVE", "l", "l2", "RIGHT", "LEFT"]),
    C(&["RPUSH", "l3", "a", "b", "c"]),
    C(&["BLPOP", "nolist", "l3", "0"]),
    C(&["BRPOP", "l3", "0"]),
    C(&["LMPOP", "2", "nolist", "l3", "LEFT", "COUNT", "5"]),
    C(&["BLMOVE", "l2", "l4", "LEFT", "LEFT", "0"]),
    C(&["RPUSH", "l5", "x"]),
    C(&["LTRIM", "l5", "1", "0"]),
    // Sets.
    C(&["SADD", "s1", "a", "b", "c"]),
    C(&["SADD", "s1", "a"]),
    C(&["SREM", "s1", "zz"]),
    C(&["SREM", "s1", "c"]),
    C(&["SADD", "s2", "b", "x"]),
    C(&["SMOVE", "s1", "s2", "b"]),
    C(&["SMOVE", "s1", "s3", "a"]),
    C(&["SINTERSTORE", "si", "s2", "s3"]),
    C(&["SUNIONSTORE", "su", "s2", "s3"]),
    C(&["SDIFFSTORE", "sd", "s2", "s3"]),
    C(&["SET", "sd2", "x"]),
    C(&["SINTERSTORE", "sd2", "s2", "nokey"]),
    C(&["SADD", "one", "only"]),
    C(&["SPOP", "one"]),
    C(&["SADD", "two", "a", "b"]),
    C(&["SPOP", "two", "5"]),
    C(&["SPOP", "s2", "0"]),
    // Hashes.
    C(&["HSET", "h", "a", "1", "b", "2"]),
    C(&["HMSET", "h", "c", "3"]),
    C(&["HSETNX", "h", "a", "9"]),
    C(&["HSETNX", "h", "d", "4"]),
    C(&["HINCRBY", "h", "a", "5"]),
    C(&["HINCRBYFLOAT", "h", "b", "0.5"]),
    C(&["HDEL", "h", "nofield"]),
    C(&["HDEL", "h", "a", "b"]),
    C(&["HDEL", "h", "c", "d"]),
    // Sorted sets.
    C(&[
        "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e",
    ]),
    C(&["ZADD", "z", "1", "a"]),
    C(&["ZADD", "z", "XX", "1", "new"]),
    C(&["ZADD", "noz", "XX", "1", "new"]),
    C(&["ZADD", "z", "INCR", "10", "a"]),
    C(&["ZINCRBY", "z", "1", "b"]),
    C(&["ZREM", "z", "nothere"]),
    C(&["ZREM", "z", "c"]),
    C(&["ZREMRANGEBYSCORE", "z", "100", "200"]),
    C(&["ZREMRANGEBYSCORE", "z", "4", "4"]),
    C(&["ZREMRANGEBYRANK", "z", "0", "0"]),
    C(&["ZADD", "zl", "0", "a", "0", "b", "0", "c"]),
    C(&["ZREMRANGEBYLEX", "zl", "[a", "[a"]),
    C(&["ZPOPMIN", "zl"]),
    C(&["ZPOPMAX", "zl", "3"]),
    C(&["ZADD", "z2", "1", "x", "2", "y"]),
    C(&["BZPOPMIN", "z2", "0"]),
    C(&["ZMPOP", "1", "z2", "MAX", "COUNT", "9"]),
    C(&["ZADD", "za", "1", "a", "2", "b"]),
    C(&["ZADD", "zb", "1", "b", "3", "c"]),
    C(&["ZUNIONSTORE", "zu", "2", "za", "zb"]),
    C(&["ZINTERSTORE", "zi", "2", "za", "zb"]),
    C(&["ZDIFFSTORE", "zd", "2", "za", "zb"]),
    C(&["ZRANGESTORE", "zr", "za", "0", "-1"]),
    C(&["ZRANGESTORE", "zr", "za", "5", "9"]),
    C(&["ZINTERSTORE", "zu", "2", "za", "nokey"]),
    // SORT ... STORE.
    C(&["RPUSH", "tosort", "3", "1", "2"]),
    C(&["SORT", "tosort", "STORE", "sorted"]),
    C(&["SORT", "nokey", "STORE", "sorted"]),
    // Transactions and scripts notify as their commands do.
    C(&["MULTI"]),
    C(&["SET", "tx", "1"]),
    C(&["INCR", "tx"]),
    C(&["EXEC"]),
    C(&[
        "EVAL",
        "redis.call('set', KEYS[1], 'v'); return redis.call('lpush', KEYS[2], 'e')",
        "2",
        "ev1",
        "ev2",
    ]),
    // Lazy expiry: a key whose time has passed expires when a command touches it.
    C(&["SET", "gone", "v", "PXAT", "1"]),
    C(&["GET", "gone"]),
    C(&["SET", "gone2", "v", "PXAT", "1"]),
    C(&["SET", "gone2", "again"]),
    // Reads of missing keys (`m`).
    C(&["GET", "nokey"]),
    C(&["LRANGE", "nolist", "0", "-1"]),
    C(&["HGET", "nohash", "f"]),
];

#[test]
fn notifications_match_redis_for_every_write_command() {
    let (redis, node) = (Redis::start(), Node::start());
    let seen = compare(&redis, &node, "KEA", WRITES);
    // The script causes well over a hundred notifications; an empty list on both sides
    // would compare equal and prove nothing.
    assert!(seen.len() > 200, "only {} notifications", seen.len());
    for event in [
        "sortstore",
        "rename_to",
        "copy_to",
        "restore",
        "expired",
        "zincr",
    ] {
        assert!(
            seen.iter().any(|m| m.contains(&format!(":{event}\r\n"))),
            "no {event} event"
        );
    }
}

#[test]
fn class_flags_select_the_same_events_as_redis() {
    let (redis, node) = (Redis::start(), Node::start());
    for flags in [
        "K$", "El", "Ks", "Eh", "Kz", "Eg", "Ex", "KEn", "Km", "Kgn", "AE", "AKEnm", "E",
    ] {
        compare(&redis, &node, flags, WRITES);
    }
    // Nothing selected: no message at all.
    assert!(compare(&redis, &node, "", WRITES).is_empty());
}

#[test]
fn background_expiry_notifies_expired() {
    let (redis, node) = (Redis::start(), Node::start());
    for addr in [redis.addr(), node.addr()] {
        let (mut w, mut sub) = clients(&addr, "Ex", false);
        w.cmd(&["SET", "short", "v", "PX", "50"]);
        // No command touches the key: only the active expiry cycle can delete it.
        let frame = String::from_utf8_lossy(&sub.read_raw_reply()).into_owned();
        assert!(
            frame.ends_with("$22\r\n__keyevent@0__:expired\r\n$5\r\nshort\r\n"),
            "{addr}: {frame:?}"
        );
    }
}

#[test]
fn config_flags_render_and_refuse_as_redis() {
    let (redis, node) = (Redis::start(), Node::start());
    let (mut r, mut n) = (redis.client(), node.client());
    for value in [
        "",
        "KEA",
        "gKE",
        "$lshzxeKE",
        "KA",
        "EA",
        "En",
        "AmnKE",
        "tdg",
        "xe",
        "m",
        "K E",
        "k",
        "KEAq",
        "AAAA",
    ] {
        for cmd in [
            &["CONFIG", "SET", "notify-keyspace-events", value][..],
            &["CONFIG", "GET", "notify-keyspace-events"],
        ] {
            let (want, got) = (r.cmd_raw(cmd), n.cmd_raw(cmd));
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want),
                "{cmd:?}"
            );
        }
    }
}

/// Reads one reply and the pushes around it: everything the server wrote for one command
/// (the end is found by a PING sent behind it, whose PONG is the only simple string).
fn frames_of(c: &mut Client, cmd: &[&str]) -> Vec<String> {
    let mut req = common::encode(cmd);
    req.extend_from_slice(&common::encode(&["PING"]));
    c.send_raw(&req);
    let mut frames = Vec::new();
    loop {
        let f = String::from_utf8_lossy(&c.read_raw_reply()).into_owned();
        if f == "+PONG\r\n" {
            return frames;
        }
        frames.push(f);
    }
}

#[test]
fn own_notifications_sit_where_redis_puts_them_in_resp3() {
    let (redis, node) = (Redis::start(), Node::start());
    // A subscribed RESP3 connection that writes reads its own notifications in the reply
    // stream: before the reply for most commands, after it for those Redis answers before
    // notifying (LPUSH, HSET, EXPIRE, ...), and a created key's `new` always first.
    let script: &[&[&str]] = &[
        &["SET", "k", "v"],
        &["GET", "k"],
        &["GETSET", "k", "w"],
        &["APPEND", "k", "x"],
        &["INCR", "n"],
        &["EXPIRE", "k", "100"],
        &["PERSIST", "k"],
        &["LPUSH", "l", "a", "b", "c"],
        &["LPOP", "l"],
        &["LSET", "l", "0", "z"],
        &["LREM", "l", "0", "z"],
        &["HSET", "h", "f", "1"],
        &["HINCRBY", "h", "f", "2"],
        &["HDEL", "h", "f"],
        &["SADD", "s", "a", "b"],
        &["SREM", "s", "a"],
        &["SUNIONSTORE", "s2", "s"],
        &["ZADD", "z", "1", "a"],
        &["ZINCRBY", "z", "1", "a"],
        &["ZREM", "z", "a"],
        &["RENAME", "k", "k2"],
        &["DEL", "k2", "n"],
    ];
    let mut streams = Vec::new();
    for addr in [redis.addr(), node.addr()] {
        let mut c = Client::connect(&addr);
        c.cmd(&["HELLO", "3"]);
        c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEAn"]);
        c.cmd(&["PSUBSCRIBE", "__key*"]);
        streams.push(
            script
                .iter()
                .map(|cmd| frames_of(&mut c, cmd))
                .collect::<Vec<_>>(),
        );
    }
    for (i, cmd) in script.iter().enumerate() {
        assert_eq!(streams[1][i], streams[0][i], "{cmd:?}");
    }
    // Both orders occur, so the comparison covers both.
    let first = |i: usize| streams[0][i].first().is_some_and(|f| f.starts_with('>'));
    assert!(
        first(0) && !first(2),
        "SET: events first, GETSET: reply first"
    );
}
