//! SCAN over a cluster pool: the masters are walked one after the other, and the proxy's
//! cursor says where the walk is (which shard, and that node's own cursor).
//!
//! A walk by node can miss keys when slots move between masters while it runs: a key that
//! moves from a master not visited yet to one already visited is seen on neither. Redis's
//! SCAN promises every key present for the whole scan at least once (repeats allowed), so
//! the cursor also carries a tag of the slot map it started under:
//! * a call that finds the map's slot owners changed starts the walk again (repeats, no
//!   misses);
//! * before answering the final cursor 0, every master is asked which slots it serves and
//!   whether any is migrating: if that disagrees with the walk's map, the walk starts again.
//!
//! Restarts are bounded ([`MAX_RESTARTS`]): a cluster that keeps resharding would otherwise
//! keep a SCAN from ever finishing; past the bound the walk finishes as it is.
//!
//! Pools that read from replicas use the same cursor layout for SCAN, SSCAN, HSCAN and
//! ZSCAN ([`sticky`]): two replicas of one master iterate in different orders (their hash
//! tables differ), so a cursor must go back to the node that issued it. There the shard field
//! is the node's place in the pool's node list and the tag a hash of its address.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::future::join_all;

use super::split::{parse, unexpected};
use crate::backend::Node;
use crate::cluster_slot::SLOTS;
use crate::pool::Pool;
use crate::resp::{encode, Frame, Reply, Request};
use crate::topology::cluster::SlotMap;

/// Most times one SCAN walk starts over because slots moved.
pub(crate) const MAX_RESTARTS: u8 = 7;

// Cursor layout, low bits first: shard index (10 bits, up to 1024 shards), map tag (12),
// restarts (3), the node's own cursor (38). Kept below 2^63 for clients that parse cursors
// as signed 64-bit integers.
const SHARD_BITS: u32 = 10;
const TAG_BITS: u32 = 12;
const RESTART_BITS: u32 = 3;
const NODE_SHIFT: u32 = SHARD_BITS + TAG_BITS + RESTART_BITS;
const NODE_BITS: u32 = 63 - NODE_SHIFT;

/// Where a SCAN walk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Index of the shard being scanned (in the map's shard order).
    pub(crate) shard: usize,
    /// That shard's master's own cursor.
    pub(crate) node: u64,
    /// Tag of the slot map the walk (re)started under.
    pub(crate) tag: u16,
    /// How many times the walk started over.
    pub(crate) restarts: u8,
}

impl Cursor {
    /// The start of a walk under `map`.
    pub(crate) fn start(map: &SlotMap, restarts: u8) -> Cursor {
        Cursor {
            shard: 0,
            node: 0,
            tag: tag(map),
            restarts,
        }
    }

    /// Decodes a client's cursor; `0` starts a walk. `None` for a cursor the proxy did not
    /// hand out (not a number, or a shard the map does not have).
    pub(crate) fn decode(text: &[u8], map: &SlotMap) -> Option<Cursor> {
        let c = Cursor::parse(text)?;
        if c == 0 {
            return Some(Cursor::start(map, 0));
        }
        let cursor = Cursor::fields(c);
        if cursor.tag != tag(map) {
            // The slot owners changed since the walk started: start again (or, past the
            // bound, go on as we are; shards keep their order unless one was added).
            if cursor.restarts < MAX_RESTARTS {
                return Some(Cursor::start(map, cursor.restarts + 1));
            }
            return (cursor.shard < map.shards.len()).then_some(Cursor {
                tag: tag(map),
                ..cursor
            });
        }
        (cursor.shard < map.shards.len()).then_some(cursor)
    }

    /// A client's cursor as a number (`None`: not one).
    fn parse(text: &[u8]) -> Option<u64> {
        std::str::from_utf8(text).ok()?.parse().ok()
    }

    /// The fields of a non-zero cursor, unchecked.
    fn fields(c: u64) -> Cursor {
        let field = |shift: u32, bits: u32| (c >> shift) & ((1u64 << bits) - 1);
        Cursor {
            shard: field(0, SHARD_BITS) as usize,
            tag: field(SHARD_BITS, TAG_BITS) as u16,
            restarts: field(SHARD_BITS + TAG_BITS, RESTART_BITS) as u8,
            node: c >> NODE_SHIFT,
        }
    }

    /// The number handed to the client; `None` when the node's cursor does not fit.
    pub(crate) fn encode(self) -> Option<u64> {
        if self.node >= 1 << NODE_BITS || self.shard >= 1 << SHARD_BITS {
            return None;
        }
        Some(
            (self.node << NODE_SHIFT)
                | (u64::from(self.restarts) << (SHARD_BITS + TAG_BITS))
                | (u64::from(self.tag) << SHARD_BITS)
                | self.shard as u64,
        )
    }
}

/// The map's slot owners, in the cursor's few bits.
fn tag(map: &SlotMap) -> u16 {
    (map.owners & ((1 << TAG_BITS) - 1)) as u16
}

/// Cursors of pools that read from replicas: the node that issued a cursor is named in it
/// (its index in a node list, and a hash of its address to notice a list that changed), so
/// the next call goes back to that node.
pub(crate) mod sticky {
    use super::{step, with_cursor, Cursor, Step, SHARD_BITS, TAG_BITS};

    /// The index of a cursor that names no node: its next call starts the walk over (used
    /// when the node that answered is not known, e.g. after following a cluster redirect).
    const NOWHERE: usize = (1 << SHARD_BITS) - 1;
    use crate::resp::{Frame, Reply};

    /// Where a client's cursor points.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum At {
        /// Cursor 0: a new walk, on any readable node.
        Start,
        /// A walk in progress on the node at `index` whose address hashes to `tag`, at that
        /// node's own cursor `node`.
        Node {
            /// Place in the node list.
            index: usize,
            /// [`tag`] of its address.
            tag: u16,
            /// The node's own cursor.
            node: u64,
        },
    }

    /// Decodes a client's cursor; `None` when it is not a number.
    pub(crate) fn decode(text: &[u8]) -> Option<At> {
        let c = Cursor::parse(text)?;
        if c == 0 {
            return Some(At::Start);
        }
        let f = Cursor::fields(c);
        Some(At::Node {
            index: f.shard,
            tag: f.tag,
            node: f.node,
        })
    }

    /// The cursor's few bits of a node's address (FNV-1a).
    pub(crate) fn tag(addr: &str) -> u16 {
        let h = addr.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        (h & ((1 << TAG_BITS) - 1)) as u16
    }

    /// Where `at` points in `addrs` (the node list, by address): the node at its index if
    /// the address still matches, else the one node whose address has its tag. `None` for
    /// a start, or a node no longer in the list.
    pub(crate) fn find(at: At, addrs: &[&str]) -> Option<usize> {
        let At::Node { index, tag: t, .. } = at else {
            return None;
        };
        if index == NOWHERE {
            return None;
        }
        if addrs.get(index).is_some_and(|a| tag(a) == t) {
            return Some(index);
        }
        let mut matching = addrs.iter().enumerate().filter(|(_, a)| tag(a) == t);
        match (matching.next(), matching.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    /// The client's reply for a node's `*SCAN` reply: the node's next cursor folded into a
    /// proxy cursor naming the node (`index` in the list and its `addr`; `None`: a node not
    /// known, so the next call starts over), or 0 when it is done.
    pub(crate) fn reply(node_reply: &Reply, node: Option<(usize, &str)>) -> Reply {
        let (index, tag) = match node {
            Some((i, addr)) if i < NOWHERE => (i, tag(addr)),
            _ => (NOWHERE, 0),
        };
        let at = Cursor {
            shard: index,
            node: 0,
            tag,
            restarts: 0,
        };
        // One node is a walk over one shard: the last shard's done is the walk's end.
        match step(node_reply, at, index + 1) {
            Step::Reply(r) => r,
            Step::LastShardDone(keys) => with_cursor(0, Frame::Array(keys)),
        }
    }
}

/// What one node's SCAN reply means for the walk.
pub(crate) enum Step {
    /// The client's reply (with the proxy cursor in it).
    Reply(Reply),
    /// The last master is done: the walk may end here if the cluster held still. Carries
    /// the keys of this last reply.
    LastShardDone(Vec<Frame>),
}

/// Reads a node's SCAN reply for the walk at `at` over `shards` shards.
pub(crate) fn step(reply: &Reply, at: Cursor, shards: usize) -> Step {
    let Some(Frame::Array(mut items)) = parse(reply) else {
        return Step::Reply(unexpected(reply));
    };
    if items.len() != 2 {
        return Step::Reply(unexpected(reply));
    }
    let node_cursor: Option<u64> = items[0]
        .as_bytes()
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| s.parse().ok());
    let next = match node_cursor {
        Some(0) if at.shard + 1 >= shards => {
            return Step::LastShardDone(match items.pop() {
                Some(Frame::Array(keys)) | Some(Frame::Set(keys)) => keys,
                _ => return Step::Reply(unexpected(reply)),
            });
        }
        Some(0) => Cursor {
            shard: at.shard + 1,
            node: 0,
            ..at
        }
        .encode(),
        Some(node) => Cursor { node, ..at }.encode(),
        None => None,
    };
    match next {
        Some(next) => Step::Reply(with_cursor(
            next,
            items.pop().unwrap_or(Frame::Array(vec![])),
        )),
        None => Step::Reply(unexpected(reply)),
    }
}

/// A SCAN reply: `cursor` and `keys`.
pub(crate) fn with_cursor(cursor: u64, keys: Frame) -> Reply {
    let mut out = BytesMut::new();
    Frame::Array(vec![Frame::Bulk(Bytes::from(cursor.to_string())), keys])
        .encode(crate::resp::Protocol::Resp3, &mut out);
    Reply::new(out.freeze(), true)
}

/// The SCAN request for a node: the client's, with the node's own cursor.
pub(crate) fn request(req: &Request, node_cursor: u64) -> Bytes {
    request_at(req, 1, node_cursor)
}

/// A `*SCAN` request for a node: the client's, with the node's own cursor as argument `at`
/// (1 for SCAN, 2 for SSCAN/HSCAN/ZSCAN).
pub(crate) fn request_at(req: &Request, at: usize, node_cursor: u64) -> Bytes {
    let cursor = node_cursor.to_string();
    let mut args: Vec<&[u8]> = req.args().collect();
    if let Some(arg) = args.get_mut(at) {
        *arg = cursor.as_bytes();
    }
    let mut raw = BytesMut::new();
    encode::command(&mut raw, &args);
    raw.freeze()
}

/// True when every master's own `CLUSTER NODES` line agrees with `map` (each serves exactly
/// the slots the map gives its shard) and no slot is being imported or migrated: then no
/// key can have moved between masters unseen by the walk. `nodes_replies[i]` is shard `i`'s
/// master's reply.
pub(crate) fn cluster_held_still(map: &SlotMap, nodes_replies: &[Reply]) -> bool {
    if nodes_replies.len() != map.shards.len() {
        return false;
    }
    let mut served = vec![usize::MAX; SLOTS];
    for (i, reply) in nodes_replies.iter().enumerate() {
        let text = match parse(reply) {
            Some(Frame::Bulk(b)) | Some(Frame::Verbatim(_, b)) => b,
            _ => return false,
        };
        let Some(myself) = std::str::from_utf8(&text)
            .ok()
            .and_then(|t| t.lines().find(|l| l.contains("myself")))
        else {
            return false;
        };
        // id addr flags master ping pong epoch link-state slot...
        for item in myself.split(' ').skip(8) {
            if item.starts_with('[') {
                return false; // a slot migrating or importing
            }
            let (a, b) = item.split_once('-').unwrap_or((item, item));
            let (Ok(a), Ok(b)) = (a.parse::<usize>(), b.parse::<usize>()) else {
                return false;
            };
            match served.get_mut(a..=b) {
                Some(range) => range.fill(i),
                None => return false,
            }
        }
    }
    served.iter().enumerate().all(|(slot, &i)| {
        let owner = map.shard(slot as u16).map(|s| &s.master.node);
        match (owner, map.shards.get(i)) {
            (Some(o), Some(s)) => Arc::ptr_eq(o, &s.master.node),
            (None, None) => true,
            _ => false,
        }
    })
}

/// The masters the end-of-walk check asks, in shard order.
fn masters(map: &SlotMap) -> Vec<Arc<Node>> {
    map.shards.iter().map(|s| s.master.node.clone()).collect()
}

/// Ends a walk whose last master is done: the final cursor 0 if the cluster held still
/// (see [`cluster_held_still`]), otherwise (and within [`MAX_RESTARTS`]) a cursor that walks
/// again from the first master. `keys` are the last master's last keys, returned either way.
pub(crate) async fn finish(
    pool: &Pool,
    map: &SlotMap,
    at: Cursor,
    keys: Vec<Frame>,
    conn: usize,
) -> Reply {
    let mut ask = BytesMut::new();
    encode::command(&mut ask, &[b"CLUSTER", b"NODES"]);
    let ask = ask.freeze();
    let masters = masters(map);
    // The proxy's own check, on its own connections (a client user may not run it).
    let via = crate::backend::per_user::Via::proxy(conn);
    let replies = join_all(
        masters
            .iter()
            .map(|m| super::cluster::send(m, ask.clone(), &via)),
    )
    .await;
    let replies: Option<Vec<Reply>> = replies.into_iter().map(Result::ok).collect();
    let still = replies.is_some_and(|r| cluster_held_still(map, &r));
    let next = if still || at.restarts >= MAX_RESTARTS {
        0
    } else {
        pool.refresh.notify_one();
        let current = pool.topology.load();
        let fresh = current.cluster.as_deref().unwrap_or(map);
        Cursor::start(fresh, at.restarts + 1).encode().unwrap_or(0)
    };
    with_cursor(next, Frame::Array(keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::cluster::test_shard;

    fn two_shards() -> SlotMap {
        SlotMap::new(vec![
            test_shard("127.0.0.1:1", vec![(0, 8191)]),
            test_shard("127.0.0.1:2", vec![(8192, 16383)]),
        ])
    }

    fn nodes_reply(myself_slots: &str) -> Reply {
        let text = format!(
            "abc 127.0.0.1:1@2 myself,master - 0 0 1 connected {myself_slots}\n\
             def 127.0.0.1:2@3 master - 0 0 2 connected 8192-16383\n"
        );
        let mut out = BytesMut::new();
        encode::bulk(&mut out, text.as_bytes());
        Reply::new(out.freeze(), false)
    }

    #[tokio::test]
    async fn cursors_round_trip_and_restart_when_owners_change() {
        let map = two_shards();
        assert_eq!(Cursor::decode(b"0", &map), Some(Cursor::start(&map, 0)));
        let at = Cursor {
            shard: 1,
            node: 12345,
            ..Cursor::start(&map, 2)
        };
        let text = at.encode().expect("fits").to_string();
        assert!(text.parse::<i64>().is_ok(), "cursor past i64: {text}");
        assert_eq!(Cursor::decode(text.as_bytes(), &map), Some(at));
        assert_eq!(Cursor::decode(b"x", &map), None);
        // A shard the map does not have.
        let bad = Cursor { shard: 5, ..at }
            .encode()
            .expect("fits")
            .to_string();
        assert_eq!(Cursor::decode(bad.as_bytes(), &map), None);
        // Slot owners changed: the walk starts over, counting the restart.
        let moved = map.with_slot_moved(10, "127.0.0.1:2").expect("moved");
        assert_eq!(
            Cursor::decode(text.as_bytes(), &moved),
            Some(Cursor::start(&moved, 3))
        );
        // Past the bound it goes on where it was.
        let tired = Cursor {
            restarts: MAX_RESTARTS,
            ..at
        };
        let text = tired.encode().expect("fits").to_string();
        let resumed = Cursor::decode(text.as_bytes(), &moved).expect("resumed");
        assert_eq!((resumed.shard, resumed.node), (1, 12345));
    }

    #[tokio::test]
    async fn a_walk_ends_only_when_the_masters_agree_with_the_map() {
        let map = two_shards();
        let other = nodes_reply("8192-16383").raw;
        let other = Reply::new(
            Bytes::from(
                String::from_utf8_lossy(&other)
                    .replace("myself,master", "master")
                    .replacen(
                        "def 127.0.0.1:2@3 master",
                        "def 127.0.0.1:2@3 myself,master",
                        1,
                    ),
            ),
            false,
        );
        assert!(cluster_held_still(
            &map,
            &[nodes_reply("0-8191"), other.clone()]
        ));
        // A slot migrating away from the first master.
        assert!(!cluster_held_still(
            &map,
            &[nodes_reply("0-8191 [100->-def]"), other.clone()]
        ));
        // The first master no longer serves slot 100 (moved, and the map does not know).
        assert!(!cluster_held_still(
            &map,
            &[nodes_reply("0-99 101-8191"), other.clone()]
        ));
        assert!(!cluster_held_still(&map, &[nodes_reply("0-8191")]));
    }

    #[test]
    fn sticky_cursors_name_the_node_that_issued_them() {
        let addrs = ["127.0.0.1:6379", "127.0.0.1:6380", "127.0.0.1:6381"];
        let node_reply = Reply::new(
            Bytes::from_static(b"*2\r\n$3\r\n768\r\n*1\r\n$1\r\nk\r\n"),
            false,
        );
        let r = sticky::reply(&node_reply, Some((2, addrs[2])));
        let Some(Frame::Array(items)) = parse(&r) else {
            panic!("{r:?}");
        };
        let text = items[0].as_bytes().expect("cursor").to_vec();
        assert!(String::from_utf8_lossy(&text).parse::<i64>().is_ok());
        let at = sticky::decode(&text).expect("a number");
        assert_eq!(
            at,
            sticky::At::Node {
                index: 2,
                tag: sticky::tag(addrs[2]),
                node: 768
            }
        );
        assert_eq!(sticky::find(at, &addrs), Some(2));
        // The list changed order: found by its address's tag.
        assert_eq!(sticky::find(at, &[addrs[2], addrs[0]]), Some(0));
        // The node left: nowhere (the walk starts over on another node).
        assert_eq!(sticky::find(at, &addrs[..2]), None);
        // A cursor from a node that is not known names none, whatever the list.
        let r = sticky::reply(&node_reply, None);
        let Some(Frame::Array(items)) = parse(&r) else {
            panic!("{r:?}");
        };
        let unknown = sticky::decode(items[0].as_bytes().expect("cursor")).expect("a number");
        assert_eq!(sticky::find(unknown, &addrs), None);
        assert_eq!(sticky::decode(b"0"), Some(sticky::At::Start));
        assert_eq!(sticky::decode(b"x"), None);
        // The node is done: the walk ends with cursor 0.
        let done = Reply::new(
            Bytes::from_static(b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n"),
            false,
        );
        let r = sticky::reply(&done, Some((1, addrs[1])));
        assert!(r.raw.starts_with(b"*2\r\n$1\r\n0\r\n"), "{:?}", r.raw);
    }

    #[test]
    fn the_last_master_done_ends_the_step() {
        let map_shards = 2;
        let at = Cursor {
            shard: 1,
            node: 7,
            tag: 3,
            restarts: 0,
        };
        let done = Reply::new(
            Bytes::from_static(b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n"),
            false,
        );
        assert!(matches!(step(&done, at, map_shards), Step::LastShardDone(k) if k.len() == 1));
        let first = Cursor { shard: 0, ..at };
        let Step::Reply(r) = step(&done, first, map_shards) else {
            panic!("not the last shard");
        };
        let next = Cursor {
            shard: 1,
            node: 0,
            ..at
        };
        let want = format!(
            "*2\r\n${}\r\n{}\r\n",
            next.encode().unwrap_or(0).to_string().len(),
            next.encode().unwrap_or(0)
        );
        assert!(
            String::from_utf8_lossy(&r.raw).starts_with(&want),
            "{:?}",
            r.raw
        );
    }
}
