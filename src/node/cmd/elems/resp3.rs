//! RESP3 replies of the data-type commands, byte for byte as redis-server 7.0 gives them
//! after `HELLO 3` (captured from a real server). The integration tests cover RESP2 against
//! a live redis-server; these run the handlers directly in a RESP3 session.

use super::harness::Harness;
use crate::resp::Protocol;

/// Command (words separated by spaces) and Redis's exact RESP3 reply.
const CASES: &[(&str, &str)] = &[
    ("HSET h a 1 b 2", ":2\r\n"),
    (
        "HGETALL h",
        "%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n",
    ),
    ("HGETALL nokey", "%0\r\n"),
    (
        "HRANDFIELD h 5 WITHVALUES",
        "*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n",
    ),
    ("HMGET h a nope", "*2\r\n$1\r\n1\r\n_\r\n"),
    (
        "HSCAN h 0",
        "*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n",
    ),
    ("SADD s x", ":1\r\n"),
    ("SMEMBERS s", "~1\r\n$1\r\nx\r\n"),
    ("SMEMBERS nokey", "~0\r\n"),
    ("SPOP nokey 1", "~0\r\n"),
    ("SINTER nokey s", "~0\r\n"),
    ("SUNION s", "~1\r\n$1\r\nx\r\n"),
    ("SDIFF s", "~1\r\n$1\r\nx\r\n"),
    ("SRANDMEMBER s 5", "*1\r\n$1\r\nx\r\n"),
    ("SMISMEMBER s x y", "*2\r\n:1\r\n:0\r\n"),
    ("RPUSH l a", ":1\r\n"),
    ("LPOP nokey", "_\r\n"),
    ("LPOP nokey 1", "_\r\n"),
    ("LRANGE l 0 -1", "*1\r\n$1\r\na\r\n"),
    ("BLPOP nokey 0.01", "_\r\n"),
    ("BLMOVE nokey l LEFT LEFT 0.01", "_\r\n"),
    ("ZADD z 1 a 2.5 b", ":2\r\n"),
    ("ZRANGE z 0 -1", "*2\r\n$1\r\na\r\n$1\r\nb\r\n"),
    (
        "ZRANGEBYSCORE z -inf +inf WITHSCORES",
        "*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n",
    ),
    ("ZSCORE z b", ",2.5\r\n"),
    ("ZSCORE z nope", "_\r\n"),
    ("ZMSCORE z a nope", "*2\r\n,1\r\n_\r\n"),
    ("ZINCRBY z 1 a", ",2\r\n"),
    ("ZADD z INCR 1 a", ",3\r\n"),
    ("ZADD z INCR NX 1 a", "_\r\n"),
    (
        "ZRANDMEMBER z 5 WITHSCORES",
        "*2\r\n*2\r\n$1\r\na\r\n,3\r\n*2\r\n$1\r\nb\r\n,2.5\r\n",
    ),
    (
        "ZSCAN z 0",
        "*2\r\n$1\r\n0\r\n*4\r\n$1\r\nb\r\n$3\r\n2.5\r\n$1\r\na\r\n$1\r\n3\r\n",
    ),
    ("ZPOPMIN z", "*2\r\n$1\r\nb\r\n,2.5\r\n"),
    ("ZPOPMAX z 1", "*1\r\n*2\r\n$1\r\na\r\n,3\r\n"),
    ("ZPOPMIN nokey", "*0\r\n"),
    ("ZPOPMIN nokey 1", "*0\r\n"),
    ("ZADD z 3 c 4 d", ":2\r\n"),
    (
        "ZPOPMIN z 5",
        "*2\r\n*2\r\n$1\r\nc\r\n,3\r\n*2\r\n$1\r\nd\r\n,4\r\n",
    ),
    ("ZADD z 3 c", ":1\r\n"),
    ("BZPOPMIN z 0", "*3\r\n$1\r\nz\r\n$1\r\nc\r\n,3\r\n"),
    ("BZPOPMIN nokey 0.01", "_\r\n"),
    ("PFADD p a", ":1\r\n"),
    ("PFCOUNT p", ":1\r\n"),
];

#[test]
fn resp3_replies_match_redis_7_0() {
    let mut h = Harness::new(Protocol::Resp3);
    for (line, want) in CASES {
        assert_eq!(h.encoded(line), *want, "reply to `{line}`");
    }
}
