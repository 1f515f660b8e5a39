//! The write feed: every change to the keyspace, as the commands that reproduce it, in
//! execution order. Replicas and the append-only file consume it (phase 2); until one is
//! attached it stays disabled and recording costs a branch.
//!
//! Commands are stored already encoded as multibulk, with a `SELECT` inserted whenever the
//! database differs from the previous entry's, so a consumer can append the bytes as they are.

use bytes::BytesMut;

use crate::resp::encode;

/// Encoded writes waiting to be taken by replication / AOF.
#[derive(Debug, Default)]
pub struct Feed {
    /// Whether anyone consumes the feed; when false nothing is recorded.
    pub enabled: bool,
    buf: BytesMut,
    /// The database the stream is currently in, so `SELECT` is written only on a change.
    db: Option<usize>,
}

impl Feed {
    /// Appends an already multibulk-encoded command run in `db`.
    pub fn push_raw(&mut self, db: usize, raw: &[u8]) {
        if self.enabled {
            self.select(db);
            self.buf.extend_from_slice(raw);
        }
    }
    /// Appends a command given by its arguments, run in `db`.
    pub fn push(&mut self, db: usize, args: &[&[u8]]) {
        if self.enabled {
            self.select(db);
            encode::command(&mut self.buf, args);
        }
    }
    /// Takes everything recorded so far.
    pub fn take(&mut self) -> BytesMut {
        self.buf.split()
    }
    /// Bytes recorded and not taken yet (a mark for [`Feed::truncate`]).
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }
    /// Drops what was recorded after `mark` (a [`Feed::len`]): the effects of a script
    /// that never finished. The stream's database is forgotten, as a dropped part may
    /// have switched it.
    pub(crate) fn truncate(&mut self, mark: usize) {
        if mark < self.buf.len() {
            self.buf.truncate(mark);
            self.db = None;
        }
    }
    /// Forgets the stream's current database (a new consumer starts without one).
    pub fn reset_db(&mut self) {
        self.db = None;
    }
    fn select(&mut self, db: usize) {
        if self.db != Some(db) {
            self.db = Some(db);
            let mut n = itoa::Buffer::new();
            encode::command(&mut self.buf, &[b"SELECT", n.format(db).as_bytes()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_only_on_change_and_only_when_enabled() {
        let mut f = Feed::default();
        f.push(0, &[b"DEL", b"k"]);
        assert!(f.take().is_empty());
        f.enabled = true;
        f.push(0, &[b"DEL", b"k"]);
        f.push_raw(0, b"*1\r\n$4\r\nPING\r\n");
        f.push(1, &[b"DEL", b"k"]);
        assert_eq!(
            &f.take()[..],
            &b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n\
               *2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n"[..]
        );
    }
}
