//! A client's inbox of invalidation messages: the hub (on a node source's task) drops notes
//! here, the client's own task takes them and writes them in its protocol, after the replies
//! it has queued (so an invalidation never overtakes the reply of a read it is about).
//!
//! Bounded: past [`MAX_KEYS`] keys waiting, the notes collapse into one flush (a null
//! invalidation, "forget everything"), which is always correct and takes no room.

use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::task::AtomicWaker;

use crate::resp::{encode, Protocol};

/// Keys an inbox holds before its notes collapse into a flush.
const MAX_KEYS: usize = 10_000;

/// One message for a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Note {
    /// These keys changed (one message: an array of keys).
    Keys(Vec<Bytes>),
    /// Every key may have changed (FLUSHALL on a node, or a node source lost).
    Flush,
    /// The client this one redirects to is gone (RESP3 clients only).
    RedirBroken(u64),
}

#[derive(Default)]
struct Notes {
    list: Vec<Note>,
    keys: usize,
}

/// A client's inbox (held in its registry entry, so a client that redirects to it finds it).
#[derive(Default)]
pub(crate) struct Inbox {
    notes: Mutex<Notes>,
    waker: AtomicWaker,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, Notes> {
        // Held for a push or a take only; the notes stay consistent whatever panicked.
        self.notes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a note and wakes the client's task.
    pub(crate) fn push(&self, note: Note) {
        {
            let mut n = self.lock();
            n.keys += match &note {
                Note::Keys(k) => k.len().max(1),
                _ => 1,
            };
            n.list.push(note);
            if n.keys > MAX_KEYS {
                // A client that does not read: forget the details, keep the meaning (one
                // flush, and each broken redirect once).
                n.list.retain(|x| matches!(x, Note::RedirBroken(_)));
                n.list.sort_unstable_by_key(|x| match x {
                    Note::RedirBroken(id) => *id,
                    _ => 0,
                });
                n.list.dedup();
                n.list.push(Note::Flush);
                n.keys = n.list.len();
            }
        }
        self.waker.wake();
    }

    /// Takes the waiting notes now (none: an empty list).
    pub(crate) fn take(&self) -> Vec<Note> {
        let mut n = self.lock();
        n.keys = 0;
        std::mem::take(&mut n.list)
    }

    /// Takes the waiting notes, or registers the task to be woken by the next one.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Vec<Note>> {
        self.waker.register(cx.waker());
        let mut n = self.lock();
        if n.list.is_empty() {
            return Poll::Pending;
        }
        n.keys = 0;
        Poll::Ready(std::mem::take(&mut n.list))
    }
}

/// Writes `note` as Redis does for a client of protocol `proto`: a RESP3 push
/// (`invalidate`, `tracking-redir-broken`), or for a RESP2 client in subscribed mode a
/// message on `__redis__:invalidate`. A RESP2 client that is not subscribed gets nothing
/// (RESP2 has no out-of-band replies), like on Redis.
pub(crate) fn encode_note(note: &Note, proto: Protocol, subscribed: bool, out: &mut BytesMut) {
    match (proto, note) {
        (Protocol::Resp3, Note::RedirBroken(id)) => {
            encode::push_len(out, proto, 2);
            encode::bulk(out, b"tracking-redir-broken");
            encode::integer(out, *id as i64);
            return;
        }
        (Protocol::Resp2, Note::RedirBroken(_)) => return,
        (Protocol::Resp3, _) => {
            encode::push_len(out, proto, 2);
            encode::bulk(out, b"invalidate");
        }
        (Protocol::Resp2, _) if subscribed => {
            encode::array_len(out, 3);
            encode::bulk(out, b"message");
            encode::bulk(out, b"__redis__:invalidate");
        }
        (Protocol::Resp2, _) => return,
    }
    match note {
        Note::Keys(keys) => {
            encode::array_len(out, keys.len());
            for k in keys {
                encode::bulk(out, k);
            }
        }
        _ => encode::null(out, proto),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_encoded_as_redis_does() {
        let mut out = BytesMut::new();
        let keys = Note::Keys(vec![Bytes::from_static(b"k")]);
        encode_note(&keys, Protocol::Resp3, false, &mut out);
        assert_eq!(&out[..], b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n");
        out.clear();
        encode_note(&keys, Protocol::Resp2, true, &mut out);
        assert_eq!(
            &out[..],
            b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nk\r\n"
        );
        out.clear();
        encode_note(&keys, Protocol::Resp2, false, &mut out);
        assert!(out.is_empty());
        encode_note(&Note::Flush, Protocol::Resp3, false, &mut out);
        assert_eq!(&out[..], b">2\r\n$10\r\ninvalidate\r\n_\r\n");
        out.clear();
        encode_note(&Note::RedirBroken(7), Protocol::Resp3, false, &mut out);
        assert_eq!(&out[..], b">2\r\n$21\r\ntracking-redir-broken\r\n:7\r\n");
    }

    #[test]
    fn an_unread_inbox_collapses_into_a_flush() {
        let inbox = Inbox::default();
        for i in 0..(MAX_KEYS + 5) {
            inbox.push(Note::Keys(vec![Bytes::from(i.to_string())]));
        }
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        match inbox.poll_take(&mut cx) {
            Poll::Ready(notes) => assert!(notes.len() < 10 && notes.contains(&Note::Flush)),
            Poll::Pending => panic!("notes expected"),
        }
        assert!(inbox.poll_take(&mut cx).is_pending());
        // Broken-redirect notices count too, and collapse to one each.
        for _ in 0..(MAX_KEYS + 5) {
            inbox.push(Note::RedirBroken(9));
        }
        match inbox.poll_take(&mut cx) {
            Poll::Ready(notes) => assert!(notes.len() < 10, "{}", notes.len()),
            Poll::Pending => panic!("notes expected"),
        }
    }
}
