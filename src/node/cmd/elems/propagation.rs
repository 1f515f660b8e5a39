//! What the data-type commands send to replicas and the AOF: relative or random commands
//! are rewritten into their deterministic effect, blocking ones into the non-blocking form,
//! and commands that changed nothing send nothing.

use super::harness::Harness;
use crate::resp::Protocol;

fn harness() -> Harness {
    let mut h = Harness::new(Protocol::Resp2);
    h.store.feed.enabled = true;
    h
}

#[test]
fn deterministic_writes_go_verbatim_and_no_ops_not_at_all() {
    let mut h = harness();
    h.run("RPUSH l a b");
    h.run("LPOP nokey");
    h.run("SADD s x");
    h.run("SADD s x");
    h.run("ZADD z 1 a");
    h.run("ZADD z XX 1 nope");
    h.run("HDEL nokey f");
    h.run("LLEN l");
    assert_eq!(
        h.propagated(),
        ["SELECT 0", "RPUSH l a b", "SADD s x", "ZADD z 1 a"]
    );
}

#[test]
fn random_and_relative_writes_are_rewritten() {
    let mut h = harness();
    h.run("SADD s only");
    h.run("SPOP s");
    h.run("SADD s a b c");
    h.run("SPOP s 5");
    h.run("HINCRBYFLOAT h f 1.5");
    h.run("HINCRBYFLOAT h f 0.25");
    assert_eq!(
        h.propagated(),
        [
            "SELECT 0",
            "SADD s only",
            "SREM s only",
            "SADD s a b c",
            "DEL s",
            "HSET h f 1.5",
            "HSET h f 1.75",
        ]
    );
    h.run("SADD s a b c");
    h.run("SPOP s 2");
    let prop = h.propagated();
    assert_eq!(prop.len(), 2);
    let srem: Vec<&str> = prop[1].split(' ').collect();
    assert_eq!(srem[..2], ["SREM", "s"]);
    assert_eq!(srem.len(), 4);
}

#[test]
fn blocking_commands_propagate_their_non_blocking_form() {
    let mut h = harness();
    h.run("RPUSH l a b c");
    h.run("BLPOP nokey l 0");
    h.run("BRPOP l 0");
    h.run("BLMOVE l m LEFT RIGHT 0");
    h.run("BLPOP nokey 0");
    h.run("ZADD z 1 a 2 b");
    h.run("BZPOPMIN z 0");
    h.run("BZPOPMAX z 0");
    assert_eq!(
        h.propagated(),
        [
            "SELECT 0",
            "RPUSH l a b c",
            "LPOP l",
            "RPOP l",
            "LMOVE l m LEFT RIGHT",
            "ZADD z 1 a 2 b",
            "ZPOPMIN z",
            "ZPOPMAX z",
        ]
    );
}

#[test]
fn multi_key_pops_propagate_as_single_key_pops_with_the_count() {
    let mut h = harness();
    h.run("RPUSH l a b c");
    h.run("LMPOP 2 nokey l LEFT COUNT 2");
    h.run("BLMPOP 0 1 l RIGHT");
    h.run("ZADD z 1 a");
    h.run("ZMPOP 1 z MIN");
    h.run("ZMPOP 1 z MIN");
    assert_eq!(
        h.propagated(),
        [
            "SELECT 0",
            "RPUSH l a b c",
            "LPOP l 2",
            "RPOP l 1",
            "ZADD z 1 a",
            "ZPOPMIN z 1",
        ]
    );
}
