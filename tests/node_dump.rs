//! DUMP / RESTORE between a `sluice node` and a real redis-server, both ways: values of every
//! type the node holds, in each encoding Redis 7.0 writes (listpack, quicklist with and
//! without compressed nodes, intset, hashtable, skiplist, integer-encoded and LZF strings),
//! DUMPed on one server RESTORE on the other with the same contents; and bad payloads get
//! Redis's errors.

mod common;

use common::node::Node;
use common::{Client, Redis, Resp};

/// Sends a command of binary arguments and reads the reply.
fn cmd(c: &mut Client, args: &[&[u8]]) -> Resp {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    c.send_raw(&out);
    c.read()
}

fn bulk(r: Resp) -> Vec<u8> {
    match r {
        Resp::Bulk(b) => b,
        other => panic!("not a bulk: {other:?}"),
    }
}

/// A comparable picture of a key: its type and contents (sets and hashes sorted).
fn contents(c: &mut Client, key: &str) -> (String, Vec<Vec<u8>>) {
    let kind = c.cmd(&["TYPE", key]).text();
    let items = |r: Resp| -> Vec<Vec<u8>> {
        match r {
            Resp::Array(v) => v.into_iter().map(bulk).collect(),
            other => panic!("not an array: {other:?}"),
        }
    };
    let mut v = match kind.as_str() {
        "string" => vec![bulk(c.cmd(&["GET", key]))],
        "list" => items(c.cmd(&["LRANGE", key, "0", "-1"])),
        "set" => items(c.cmd(&["SMEMBERS", key])),
        "hash" => {
            let flat = items(c.cmd(&["HGETALL", key]));
            flat.chunks(2)
                .map(|p| [p[0].clone(), p[1].clone()].concat())
                .collect()
        }
        "zset" => items(c.cmd(&["ZRANGE", key, "0", "-1", "WITHSCORES"])),
        other => panic!("unexpected type {other}"),
    };
    if kind == "set" || kind == "hash" {
        v.sort();
    }
    (kind, v)
}

/// Fills `c` with one key per type and encoding; returns the key names.
fn fill(c: &mut Client) -> Vec<String> {
    let mut keys = Vec::new();
    let mut run = |c: &mut Client, key: &str, args: Vec<String>| {
        let mut full: Vec<&str> = args.iter().map(String::as_str).collect();
        full.insert(1, key);
        let r = c.cmd(&full);
        assert!(!matches!(r, Resp::Error(_)), "{full:?}: {r:?}");
        keys.push(key.to_string());
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let many = |prefix: &str, n: usize, pair: bool| -> Vec<String> {
        (0..n)
            .flat_map(|i| {
                let mut v = vec![format!("{i}")];
                if pair {
                    v.push(format!("{prefix}{i}"));
                }
                v
            })
            .collect()
    };
    run(c, "str:short", s(&["SET", "hello"]));
    run(c, "str:int", s(&["SET", "-12345"]));
    run(c, "str:bigint", s(&["SET", "9223372036854775807"]));
    run(c, "str:lzf", vec!["SET".into(), "abcdefgh".repeat(40)]);
    run(c, "str:bin", vec!["SET".into(), "\u{1}\u{0}\u{ff}é".into()]);
    run(c, "list:small", s(&["RPUSH", "a", "1", "-7", "bb", ""]));
    let mut big = vec!["RPUSH".to_string()];
    big.extend(
        many("e", 2000, false)
            .into_iter()
            .map(|i| format!("element-{i}")),
    );
    run(c, "list:big", big.clone());
    let mut ints = vec!["RPUSH".to_string()];
    ints.extend((0..300).map(|i| format!("{}", i * 1_000_003 - 100_000_000)));
    run(c, "list:ints", ints);
    run(
        c,
        "set:intset",
        s(&["SADD", "1", "300", "-70000", "5000000000"]),
    );
    let mut hs = vec!["SADD".to_string()];
    hs.extend(
        many("m", 600, false)
            .into_iter()
            .map(|i| format!("member-{i}")),
    );
    run(c, "set:hashtable", hs);
    run(c, "hash:small", s(&["HSET", "f", "v", "n", "12", "e", ""]));
    let mut hb = vec!["HSET".to_string()];
    hb.extend(many("value-", 300, true));
    run(c, "hash:big", hb);
    run(
        c,
        "zset:small",
        s(&["ZADD", "1", "a", "2.5", "b", "-inf", "c", "100", "d"]),
    );
    let mut zb = vec!["ZADD".to_string()];
    for i in 0..300 {
        zb.push(format!("{}", f64::from(i) * 0.37 - 20.0));
        zb.push(format!("member-{i}"));
    }
    run(c, "zset:big", zb);
    keys
}

/// DUMPs every key of `from` and RESTOREs it into `to` under the same name; the contents
/// match, and the TTL given to RESTORE is kept.
fn transfer(from: &mut Client, to: &mut Client, keys: &[String]) {
    for key in keys {
        let payload = bulk(cmd(from, &[b"DUMP", key.as_bytes()]));
        let r = cmd(to, &[b"RESTORE", key.as_bytes(), b"100000", &payload]);
        assert_eq!(r, Resp::Simple("OK".into()), "RESTORE {key}");
        assert_eq!(contents(to, key), contents(from, key), "contents of {key}");
        let Resp::Int(ttl) = to.cmd(&["PTTL", key]) else {
            panic!("PTTL")
        };
        assert!(ttl > 90_000 && ttl <= 100_000, "PTTL of {key}: {ttl}");
    }
}

#[test]
fn redis_payloads_restore_into_the_node() {
    let r = Redis::start();
    let n = Node::start();
    let (mut rc, mut nc) = (r.client(), Client::connect(&n.addr()));
    let keys = fill(&mut rc);
    transfer(&mut rc, &mut nc, &keys);
    // Compressed quicklist nodes (LZF inside the list encoding).
    rc.cmd(&["CONFIG", "SET", "list-compress-depth", "1"]);
    rc.cmd(&["CONFIG", "SET", "list-max-listpack-size", "4"]);
    let mut l = vec!["RPUSH", "list:compressed"];
    let elems: Vec<String> = (0..64)
        .map(|i| format!("compressible-{}", i % 3).repeat(4))
        .collect();
    l.extend(elems.iter().map(String::as_str));
    rc.cmd(&l);
    transfer(&mut rc, &mut nc, &["list:compressed".to_string()]);
}

#[test]
fn node_payloads_restore_into_redis() {
    let r = Redis::start();
    let n = Node::start();
    let (mut rc, mut nc) = (r.client(), Client::connect(&n.addr()));
    let keys = fill(&mut nc);
    transfer(&mut nc, &mut rc, &keys);
    // And back: the node reads what it wrote, through Redis.
    nc.cmd(&["FLUSHALL"]);
    transfer(&mut rc, &mut nc, &keys);
}

#[test]
fn restore_options_and_refusals_match_redis() {
    let r = Redis::start();
    let n = Node::start();
    let (mut rc, mut nc) = (r.client(), Client::connect(&n.addr()));
    rc.cmd(&["SET", "src", "value"]);
    let good = bulk(cmd(&mut rc, &[b"DUMP", b"src"]));
    let mut bad_crc = good.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 1;
    let mut newer = good.clone();
    let v = newer.len() - 10;
    newer[v] = 11;
    let cases: Vec<Vec<&[u8]>> = vec![
        vec![b"RESTORE", b"k", b"0", &good],
        vec![b"RESTORE", b"k", b"0", &good],
        vec![b"RESTORE", b"k", b"0", &good, b"REPLACE"],
        vec![b"RESTORE", b"k", b"-1", &good, b"REPLACE"],
        vec![b"RESTORE", b"k", b"x", &good, b"REPLACE"],
        vec![b"RESTORE", b"k2", b"0", &bad_crc],
        vec![b"RESTORE", b"k2", b"0", &newer],
        vec![b"RESTORE", b"k2", b"0", b"short"],
        vec![b"RESTORE", b"k2", b"0", &good, b"IDLETIME", b"-1"],
        vec![b"RESTORE", b"k2", b"0", &good, b"FREQ", b"256"],
        vec![
            b"RESTORE",
            b"k2",
            b"0",
            &good,
            b"FREQ",
            b"5",
            b"IDLETIME",
            b"5",
        ],
        vec![b"RESTORE", b"k2", b"0", &good, b"BOGUS"],
        vec![b"RESTORE", b"k3", b"0", &good, b"IDLETIME", b"1000"],
        vec![b"OBJECT", b"IDLETIME", b"k3"],
        vec![b"RESTORE", b"k4", b"1", &good, b"ABSTTL"],
        vec![b"EXISTS", b"k4"],
        vec![b"RESTORE", b"k5", b"4102444800000", &good, b"ABSTTL"],
        vec![b"PEXPIRETIME", b"k5"],
        vec![b"DUMP", b"nope"],
        vec![b"GET", b"k"],
    ];
    for case in &cases {
        assert_eq!(
            cmd(&mut nc, case),
            cmd(&mut rc, case),
            "{:?}",
            case[0..2].to_vec()
        );
    }
    // Well-framed payloads (good version and checksum) whose value cannot be read: an
    // unknown type, an empty set, a set with a duplicate member.
    for body in [&[200u8][..], &[2, 0], &[2, 2, 1, b'a', 1, b'a']] {
        let mut p = body.to_vec();
        p.extend_from_slice(&10u16.to_le_bytes());
        let crc = crc64(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        let want = cmd(&mut rc, &[b"RESTORE", b"bad", b"0", &p]);
        assert_eq!(want, Resp::Error("ERR Bad data format".into()), "{body:?}");
        assert_eq!(
            cmd(&mut nc, &[b"RESTORE", b"bad", b"0", &p]),
            want,
            "{body:?}"
        );
    }
}

/// CRC-64/Jones, written out here so the test does not trust the code it tests.
fn crc64(data: &[u8]) -> u64 {
    let mut crc = 0u64;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x95ac_9329_ac4b_c9b5
            } else {
                crc >> 1
            };
        }
    }
    crc
}
