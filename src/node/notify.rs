//! Keyspace notifications (`notify-keyspace-events`), as Redis 7.0's `notify.c` does them.
//!
//! A command that changes a key names the change with an event (`set`, `lpush`, `del`,
//! `expired`, ...) of a class (`$` strings, `l` lists, `g` generic, ...). If the configured
//! flags select that class, the event is published on `__keyspace@<db>__:<key>` (message:
//! the event, flag `K`) and on `__keyevent@<db>__:<event>` (message: the key, flag `E`) to
//! the ordinary pub/sub subscribers of those channels, in the order the command made its
//! changes. With notifications off (the default) an event costs one test of the flags.

use bytes::BytesMut;

use super::clients::Clients;
use super::pubsub::PubSub;

/// `K`: publish on `__keyspace@<db>__:<key>`.
pub const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@<db>__:<event>`.
pub const KEYEVENT: u32 = 1 << 1;
/// `g`: DEL, EXPIRE, RENAME, ... (type-independent commands).
pub const GENERIC: u32 = 1 << 2;
/// `$`: string commands.
pub const STRING: u32 = 1 << 3;
/// `l`: list commands.
pub const LIST: u32 = 1 << 4;
/// `s`: set commands.
pub const SET: u32 = 1 << 5;
/// `h`: hash commands.
pub const HASH: u32 = 1 << 6;
/// `z`: sorted set commands.
pub const ZSET: u32 = 1 << 7;
/// `x`: a key deleted because its TTL passed.
pub const EXPIRED: u32 = 1 << 8;
/// `e`: a key evicted under `maxmemory`.
pub const EVICTED: u32 = 1 << 9;
/// `t`: stream commands.
pub const STREAM: u32 = 1 << 10;
/// `m`: a read found no key (left out of `A` on purpose, as in Redis).
pub const KEY_MISS: u32 = 1 << 11;
/// `d`: module events (no modules here, but the flag is accepted and shown).
pub const MODULE: u32 = 1 << 13;
/// `n`: a key was created (left out of `A`, as in Redis).
pub const NEW: u32 = 1 << 14;
/// `A`: every class but `m` and `n`.
pub const ALL: u32 =
    GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Redis's refusal of a flag it does not know (the text after `CONFIG SET failed ... - `).
pub const INVALID: &str = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

/// The flags a `notify-keyspace-events` value selects; `None` for an unknown character
/// (Redis's `keyspaceEventsStringToFlags`; case matters: `k` is not `K`).
pub fn parse(text: &[u8]) -> Option<u32> {
    text.iter().try_fold(0, |flags, c| {
        let f = match c {
            b'A' => ALL,
            b'g' => GENERIC,
            b'$' => STRING,
            b'l' => LIST,
            b's' => SET,
            b'h' => HASH,
            b'z' => ZSET,
            b'x' => EXPIRED,
            b'e' => EVICTED,
            b'K' => KEYSPACE,
            b'E' => KEYEVENT,
            b't' => STREAM,
            b'm' => KEY_MISS,
            b'd' => MODULE,
            b'n' => NEW,
            _ => return None,
        };
        Some(flags | f)
    })
}

/// The canonical text of `flags`, as CONFIG GET shows it (Redis's
/// `keyspaceEventsFlagsToString`): `A` for all of its classes, else each class in a fixed
/// order, then `K`, `E`, `m`. So `KA` reads back as `AK` and `gKE` as `gKE`.
pub fn render(flags: u32) -> String {
    let mut out = String::new();
    let letters = |list: &[(u32, char)], out: &mut String| {
        for &(f, c) in list {
            if flags & f != 0 {
                out.push(c);
            }
        }
    };
    if flags & ALL == ALL {
        out.push('A');
    } else {
        letters(
            &[
                (GENERIC, 'g'),
                (STRING, '$'),
                (LIST, 'l'),
                (SET, 's'),
                (HASH, 'h'),
                (ZSET, 'z'),
                (EXPIRED, 'x'),
                (EVICTED, 'e'),
                (STREAM, 't'),
                (MODULE, 'd'),
                (NEW, 'n'),
            ],
            &mut out,
        );
    }
    letters(
        &[(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')],
        &mut out,
    );
    out
}

/// Where a notification goes: which database, and who caused it.
pub struct Origin<'a> {
    /// The database of the key.
    pub db: usize,
    /// The client whose command caused the event (0: the server, e.g. active expiry).
    pub writer: u64,
    /// Where the writer's own copy goes if it is subscribed (RESP3 lets a client subscribe
    /// and write on one connection): Redis writes it into the reply stream before the
    /// command's reply. `None`: through its mailbox like everyone else's.
    pub own: Option<&'a mut BytesMut>,
}

/// Publishes `event` of `class` on `key` if `flags` select it (Redis's
/// `notifyKeyspaceEvent`): first the keyspace channel, then the keyevent channel.
pub fn publish(
    pubsub: &PubSub,
    clients: &Clients,
    flags: u32,
    origin: Origin<'_>,
    class: u32,
    event: &str,
    key: &[u8],
) {
    if flags & class == 0 || pubsub.is_empty() {
        return;
    }
    let Origin { db, writer, own } = origin;
    let mut unused = BytesMut::new();
    let (me, own) = match own {
        Some(buf) => (writer, buf),
        None => (0, &mut unused),
    };
    if flags & KEYSPACE != 0 {
        let mut chan = format!("__keyspace@{db}__:").into_bytes();
        chan.extend_from_slice(key);
        pubsub.publish(clients, &chan, event.as_bytes(), false, me, own);
    }
    if flags & KEYEVENT != 0 {
        let chan = format!("__keyevent@{db}__:{event}");
        pubsub.publish(clients, chan.as_bytes(), key, false, me, own);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_back_as_redis_renders_them() {
        for (given, shown) in [
            ("", ""),
            ("gKE", "gKE"),
            ("$lshzxeKE", "$lshzxeKE"),
            ("KA", "AK"),
            ("EA", "AE"),
            ("En", "nE"),
            ("mK", "Km"),
            ("AmnKE", "AKEm"),
            ("tdg", "gtd"),
        ] {
            let flags = parse(given.as_bytes()).expect(given);
            assert_eq!(render(flags), shown, "{given}");
        }
        assert_eq!(parse(b"k"), None);
        assert_eq!(parse(b"KEa"), None);
        assert_eq!(parse(b"K E"), None);
    }

    #[test]
    fn all_leaves_out_key_miss_and_new() {
        let all = parse(b"A").unwrap_or(0);
        assert_eq!(all & (KEY_MISS | NEW), 0);
        assert_eq!(all & KEYSPACE, 0);
        assert_eq!(all, ALL);
    }
}
