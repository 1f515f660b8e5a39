//! Cluster pools: which slot a request goes to, how a multi-key request across slots is split
//! into one request per slot, and how the parts' replies merge back into one.
//!
//! Redis Cluster refuses a multi-key command whose keys are in different slots even when one
//! node holds them all, so splitting is per slot, not per node.

use bytes::{Bytes, BytesMut};

use crate::cluster_slot;
use crate::command::{self, CommandInfo, Special};
use crate::resp::{encode, ClientError, Frame, Protocol, Reply, Request};

/// How a request is served by a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// One node: the owner of this slot, or any node for a keyless request (`None`).
    Single(Option<u16>),
    /// Keys in several slots and the command cannot be split.
    CrossSlot,
    /// Keys in several slots: one request per slot, replies merged.
    Split(Merge),
    /// Every master answers; replies merged.
    FanOut(FanOut),
}

/// How split parts merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Merge {
    /// MGET: values back in the order of the keys.
    Mget,
    /// MSET: `+OK` when every part is.
    Mset,
    /// DEL, UNLINK, EXISTS, TOUCH: the sum.
    Sum,
}

/// Commands answered by every master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FanOut {
    /// KEYS: the arrays concatenated.
    Keys,
    /// SCAN: one node at a time (see [`super::scan`]).
    Scan,
    /// DBSIZE: the sum.
    Sum,
    /// PUBSUB NUMPAT: the largest count. Redis counts distinct patterns per node and offers
    /// no way to list them, so the union across masters cannot be known; the largest count
    /// is exact when every master has the same patterns (or only one has any), and a lower
    /// bound otherwise (a sum would count a pattern once per master).
    Max,
    /// PUBSUB CHANNELS / SHARDCHANNELS: the names, each once. The proxy's subscriptions
    /// are spread over the masters and Redis reports only a node's own subscribers.
    Names,
    /// PUBSUB NUMSUB / SHARDNUMSUB: per channel (in the request's order), the sum.
    /// (SHARDNUMSUB too: a slot's subscribers are on its master, the other masters say 0.)
    CountPerName,
    /// FLUSHALL, FLUSHDB, SCRIPT FLUSH, FUNCTION LOAD/DELETE/FLUSH/RESTORE: the first
    /// master's reply when no node answers an error (sent to replicas too for SCRIPT FLUSH,
    /// which Redis does not replicate). Functions live per shard in Redis Cluster, so FCALL
    /// finds a library on every slot only if each master loaded it.
    AllOk,
    /// SCRIPT LOAD: every node (replicas too, so EVALSHA_RO finds it); the SHA.
    ScriptLoad,
    /// SCRIPT EXISTS: per script, 1 only when every master has it.
    ScriptExists,
    /// RANDOMKEY: a key from a master that has any (nil only when every master is empty).
    RandomKey,
}

impl FanOut {
    /// True when replicas get the request too.
    pub(crate) fn includes_replicas(self, info: &CommandInfo) -> bool {
        matches!(self, FanOut::ScriptLoad) || info.special == Special::ScriptFlush
    }
}

/// Decides how a request is served.
pub(crate) fn plan(req: &Request, info: Option<&CommandInfo>) -> Plan {
    let Some(info) = info else {
        return Plan::Single(None);
    };
    let fan = match info.name {
        "keys" => Some(FanOut::Keys),
        "scan" => Some(FanOut::Scan),
        "dbsize" => Some(FanOut::Sum),
        "pubsub|numpat" => Some(FanOut::Max),
        "pubsub|channels" | "pubsub|shardchannels" => Some(FanOut::Names),
        "pubsub|numsub" | "pubsub|shardnumsub" => Some(FanOut::CountPerName),
        "flushall" | "flushdb" | "script|flush" | "function|load" | "function|delete"
        | "function|flush" | "function|restore" => Some(FanOut::AllOk),
        "script|load" => Some(FanOut::ScriptLoad),
        "script|exists" => Some(FanOut::ScriptExists),
        "randomkey" => Some(FanOut::RandomKey),
        _ => None,
    };
    if let Some(fan) = fan {
        return Plan::FanOut(fan);
    }
    let mut keys = command::keys(req, info);
    let Some(first) = keys.next() else {
        return Plan::Single(None);
    };
    let slot = cluster_slot::slot(first);
    if keys.all(|k| cluster_slot::slot(k) == slot) {
        return Plan::Single(Some(slot));
    }
    match info.name {
        "mget" => Plan::Split(Merge::Mget),
        // A key without its value: let the node answer with Redis's own arity error rather
        // than split off (and silently drop) the odd key.
        "mset" if req.len().is_multiple_of(2) => Plan::Single(Some(slot)),
        "mset" => Plan::Split(Merge::Mset),
        "del" | "unlink" | "exists" | "touch" => Plan::Split(Merge::Sum),
        _ => Plan::CrossSlot,
    }
}

/// One part of a split request.
#[derive(Debug, Clone)]
pub(crate) struct Part {
    /// Its slot.
    pub(crate) slot: u16,
    /// The encoded request.
    pub(crate) raw: Bytes,
    /// Positions of its keys among the original request's keys (MGET order).
    pub(crate) positions: Vec<usize>,
}

/// Splits a MGET/MSET/DEL-like request into one request per slot, keys in their original
/// order within each part. MSET takes key/value pairs; the others take keys.
pub(crate) fn split(req: &Request, merge: Merge) -> Vec<Part> {
    let step = if merge == Merge::Mset { 2 } else { 1 };
    let name = req.arg(0);
    let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
    let mut pos = 0;
    let mut i = 1;
    while i + step <= req.len() {
        let slot = cluster_slot::slot(req.arg(i));
        match groups.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, g)) => g.push(pos),
            None => groups.push((slot, vec![pos])),
        }
        pos += 1;
        i += step;
    }
    groups
        .into_iter()
        .map(|(slot, positions)| {
            let mut args: Vec<&[u8]> = Vec::with_capacity(1 + positions.len() * step);
            args.push(name);
            for &p in &positions {
                for j in 0..step {
                    args.push(req.arg(1 + p * step + j));
                }
            }
            let mut raw = BytesMut::new();
            encode::command(&mut raw, &args);
            Part {
                slot,
                raw: raw.freeze(),
                positions,
            }
        })
        .collect()
}

pub(super) fn parse(reply: &Reply) -> Option<Frame> {
    Frame::parse(&reply.raw).ok().flatten().map(|(f, _)| f)
}

fn encoded(frame: &Frame) -> Reply {
    let mut out = BytesMut::new();
    frame.encode(Protocol::Resp3, &mut out);
    Reply::new(out.freeze(), true)
}

pub(super) fn unexpected(reply: &Reply) -> Reply {
    super::cluster::error_reply(&format!(
        "ERR sluice: unexpected reply from a node: {}",
        String::from_utf8_lossy(&reply.raw).trim_end()
    ))
}

/// Merges the replies of split parts (same order as `parts`). The first error reply wins.
pub(crate) fn merge(merge: Merge, parts: &[Part], replies: Vec<Reply>) -> Reply {
    if let Some(err) = replies.iter().find(|r| r.is_error()) {
        return err.clone();
    }
    match merge {
        Merge::Mset => Reply::new(Bytes::from_static(b"+OK\r\n"), false),
        Merge::Sum => sum(&replies),
        Merge::Mget => {
            let total = parts.iter().map(|p| p.positions.len()).sum();
            let mut values = vec![Frame::Null; total];
            for (part, reply) in parts.iter().zip(&replies) {
                let Some(Frame::Array(items)) = parse(reply) else {
                    return unexpected(reply);
                };
                for (&pos, item) in part.positions.iter().zip(items) {
                    if let Some(v) = values.get_mut(pos) {
                        *v = item;
                    }
                }
            }
            encoded(&Frame::Array(values))
        }
    }
}

/// Integer replies summed.
pub(crate) fn sum(replies: &[Reply]) -> Reply {
    fold_integers(replies, i64::saturating_add)
}

/// Folds integer replies with `f` (from 0); a reply that is not an integer is an error.
fn fold_integers(replies: &[Reply], f: impl Fn(i64, i64) -> i64) -> Reply {
    let mut acc = 0i64;
    for r in replies {
        match parse(r).and_then(|f| f.as_int()) {
            Some(n) => acc = f(acc, n),
            None => return unexpected(r),
        }
    }
    let mut out = BytesMut::new();
    encode::integer(&mut out, acc);
    Reply::new(out.freeze(), false)
}

/// Merges the replies of a fan-out (not SCAN).
pub(crate) fn merge_fan_out(fan: FanOut, replies: Vec<Reply>) -> Reply {
    if let Some(err) = replies.iter().find(|r| r.is_error()) {
        return err.clone();
    }
    match fan {
        FanOut::Sum => sum(&replies),
        FanOut::Max => fold_integers(&replies, i64::max),
        FanOut::Names => merge_names(&replies),
        FanOut::CountPerName => merge_counts(&replies),
        FanOut::AllOk | FanOut::ScriptLoad | FanOut::Scan => replies
            .into_iter()
            .next()
            .unwrap_or_else(|| ClientError::slot_not_served().to_reply()),
        FanOut::RandomKey => pick_random_key(replies),
        FanOut::Keys => merge_keys(&replies),
        FanOut::ScriptExists => merge_script_exists(&replies),
    }
}

/// The union of every master's names, each once, in the order first seen.
fn merge_names(replies: &[Reply]) -> Reply {
    let mut names: Vec<Frame> = Vec::new();
    for r in replies {
        match parse(r) {
            Some(Frame::Array(items)) | Some(Frame::Set(items)) => {
                for item in items {
                    if !names.contains(&item) {
                        names.push(item);
                    }
                }
            }
            _ => return unexpected(r),
        }
    }
    encoded(&Frame::Array(names))
}

/// Per name, the sum of the masters' counts (PUBSUB NUMSUB, SHARDNUMSUB).
fn merge_counts(replies: &[Reply]) -> Reply {
    let mut counts: Vec<(Frame, i64)> = Vec::new();
    for r in replies {
        // RESP3 nodes answer a map; a flat array of pairs is accepted too.
        let pairs: Vec<(Frame, Frame)> = match parse(r) {
            Some(Frame::Map(pairs)) => pairs,
            Some(Frame::Array(items)) if items.len() % 2 == 0 => {
                let mut it = items.into_iter();
                std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
            }
            _ => return unexpected(r),
        };
        // Every master answers the request's channels in the request's order
        // (repeats included): add up position by position.
        if counts.is_empty() {
            counts = pairs.iter().map(|(name, _)| (name.clone(), 0)).collect();
        }
        if pairs.len() != counts.len() {
            return unexpected(r);
        }
        for ((name, n), (want, total)) in pairs.into_iter().zip(counts.iter_mut()) {
            match n.as_int() {
                Some(n) if name == *want => *total = total.saturating_add(n),
                _ => return unexpected(r),
            }
        }
    }
    encoded(&Frame::Map(
        counts
            .into_iter()
            .map(|(name, n)| (name, Frame::Integer(n)))
            .collect(),
    ))
}

/// One master's random key (a null only when every master had none).
fn pick_random_key(replies: Vec<Reply>) -> Reply {
    let keys: Vec<Reply> = replies
        .into_iter()
        .filter(|r| !matches!(parse(r), Some(Frame::Null)))
        .collect();
    if keys.is_empty() {
        return Reply::new(Bytes::from_static(b"_\r\n"), true);
    }
    // Any of them: a fresh `RandomState` is a cheap source of randomness.
    use std::hash::BuildHasher;
    let pick = std::collections::hash_map::RandomState::new().hash_one(keys.len());
    let i = (pick % keys.len() as u64) as usize;
    keys.into_iter()
        .nth(i)
        .unwrap_or_else(|| ClientError::slot_not_served().to_reply())
}

/// Every master's keys.
fn merge_keys(replies: &[Reply]) -> Reply {
    let mut all = Vec::new();
    for r in replies {
        match parse(r) {
            Some(Frame::Array(items)) | Some(Frame::Set(items)) => all.extend(items),
            _ => return unexpected(r),
        }
    }
    encoded(&Frame::Array(all))
}

/// SCRIPT EXISTS: a script exists only if every master has it.
fn merge_script_exists(replies: &[Reply]) -> Reply {
    let mut result: Option<Vec<i64>> = None;
    for r in replies {
        let Some(Frame::Array(items)) = parse(r) else {
            return unexpected(r);
        };
        let flags: Vec<i64> = items.iter().map(|f| f.as_int().unwrap_or(0)).collect();
        result = Some(match result {
            None => flags,
            Some(acc) => acc.iter().zip(&flags).map(|(a, b)| a & b).collect(),
        });
    }
    encoded(&Frame::Array(
        result
            .unwrap_or_default()
            .into_iter()
            .map(Frame::Integer)
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(args: &[&str]) -> Request {
        Request::from_args(args)
    }

    fn plan_of(args: &[&str]) -> Plan {
        let r = req(args);
        plan(&r, command::lookup(&r))
    }

    #[test]
    fn plans_follow_slots() {
        assert_eq!(plan_of(&["GET", "foo"]), Plan::Single(Some(12182)));
        assert_eq!(plan_of(&["INFO"]), Plan::Single(None));
        assert_eq!(
            plan_of(&["MGET", "{a}1", "{a}2"]),
            Plan::Single(Some(cluster_slot::slot(b"a")))
        );
        assert_eq!(plan_of(&["MGET", "foo", "bar"]), Plan::Split(Merge::Mget));
        assert_eq!(
            plan_of(&["MSET", "foo", "1", "bar", "2"]),
            Plan::Split(Merge::Mset)
        );
        assert_eq!(plan_of(&["DEL", "foo", "bar"]), Plan::Split(Merge::Sum));
        assert_eq!(
            plan_of(&["MSETNX", "foo", "1", "bar", "2"]),
            Plan::CrossSlot
        );
        assert_eq!(
            plan_of(&["EVAL", "return 1", "2", "foo", "bar"]),
            Plan::CrossSlot
        );
        assert_eq!(plan_of(&["EVAL", "return 1", "0"]), Plan::Single(None));
        assert_eq!(plan_of(&["SUNIONSTORE", "foo", "bar"]), Plan::CrossSlot);
        assert_eq!(plan_of(&["SCAN", "0"]), Plan::FanOut(FanOut::Scan));
        assert_eq!(
            plan_of(&["SCRIPT", "LOAD", "x"]),
            Plan::FanOut(FanOut::ScriptLoad)
        );
    }

    #[test]
    fn randomkey_answers_nil_only_when_every_master_is_empty() {
        assert_eq!(plan_of(&["RANDOMKEY"]), Plan::FanOut(FanOut::RandomKey));
        let nil = || Reply::new(Bytes::from_static(b"_\r\n"), true);
        let key = Reply::new(Bytes::from_static(b"$1\r\nk\r\n"), false);
        for _ in 0..10 {
            let r = merge_fan_out(FanOut::RandomKey, vec![nil(), key.clone(), nil()]);
            assert_eq!(&r.raw[..], b"$1\r\nk\r\n");
        }
        let r = merge_fan_out(FanOut::RandomKey, vec![nil(), nil()]);
        assert_eq!(&r.raw[..], b"_\r\n");
    }

    #[test]
    fn an_odd_mset_key_is_left_to_the_node() {
        assert_eq!(
            plan_of(&["MSET", "foo", "1", "bar"]),
            Plan::Single(Some(12182))
        );
    }

    #[test]
    fn mget_parts_merge_in_key_order() {
        let r = req(&["MGET", "foo", "bar", "{foo}x"]);
        let parts = split(&r, Merge::Mget);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].positions, vec![0, 2]);
        assert_eq!(
            &parts[0].raw[..],
            b"*3\r\n$4\r\nMGET\r\n$3\r\nfoo\r\n$6\r\n{foo}x\r\n"
        );
        let replies = vec![
            Reply::new(Bytes::from_static(b"*2\r\n$1\r\n1\r\n_\r\n"), true),
            Reply::new(Bytes::from_static(b"*1\r\n$1\r\n2\r\n"), false),
        ];
        let merged = merge(Merge::Mget, &parts, replies);
        assert_eq!(&merged.raw[..], b"*3\r\n$1\r\n1\r\n$1\r\n2\r\n_\r\n");
    }

    #[test]
    fn mset_splits_pairs_and_sums_add_up() {
        let r = req(&["MSET", "foo", "1", "bar", "2"]);
        let parts = split(&r, Merge::Mset);
        assert_eq!(parts.len(), 2);
        assert_eq!(
            &parts[1].raw[..],
            b"*3\r\n$4\r\nMSET\r\n$3\r\nbar\r\n$1\r\n2\r\n"
        );
        let s = sum(&[
            Reply::new(Bytes::from_static(b":2\r\n"), false),
            Reply::new(Bytes::from_static(b":1\r\n"), false),
        ]);
        assert_eq!(&s.raw[..], b":3\r\n");
    }
}
