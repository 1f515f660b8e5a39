//! The replication backlog: the last `size` bytes of the replication stream, so a replica
//! that lost its link for a moment can continue from its offset (`+CONTINUE`) instead of
//! needing a full snapshot.

use std::collections::VecDeque;

/// Redis's default `repl-backlog-size`.
pub const DEFAULT_SIZE: usize = 1024 * 1024;

/// A circular buffer of the stream's most recent bytes.
///
/// Offsets follow Redis: the stream's bytes are numbered from 1, `master_repl_offset` is the
/// number of the last byte written, and a replica asks for the byte after the last one it
/// processed (`PSYNC replid <processed + 1>`).
#[derive(Debug)]
pub struct Backlog {
    data: VecDeque<u8>,
    size: usize,
    /// Stream offset of `data[0]` (Redis's `repl_backlog_first_byte_offset`).
    first: i64,
}

impl Backlog {
    /// An empty backlog of `size` bytes whose next byte has offset `next`.
    pub fn new(size: usize, next: i64) -> Backlog {
        Backlog {
            data: VecDeque::new(),
            size: size.max(1),
            first: next,
        }
    }
    /// Appends stream bytes, dropping the oldest beyond the size.
    pub fn push(&mut self, bytes: &[u8]) {
        self.data.extend(bytes);
        let over = self.data.len().saturating_sub(self.size);
        if over > 0 {
            self.data.drain(..over);
            self.first += over as i64;
        }
    }
    /// Changes the size, dropping the oldest bytes beyond it.
    pub fn resize(&mut self, size: usize) {
        self.size = size.max(1);
        self.push(&[]);
    }
    /// Offset of the oldest byte held.
    pub fn first_byte_offset(&self) -> i64 {
        self.first
    }
    /// Bytes held (`repl_backlog_histlen`).
    pub fn histlen(&self) -> usize {
        self.data.len()
    }
    /// Configured size.
    pub fn size(&self) -> usize {
        self.size
    }
    /// Every byte from offset `from` to the end, or `None` if `from` is not held: older than
    /// the first byte, or past the end (a replica claiming data we never produced). `from`
    /// equal to the next offset is valid and gives nothing: the replica is up to date.
    pub fn from_offset(&self, from: i64) -> Option<Vec<u8>> {
        let end = self.first + self.data.len() as i64;
        if from < self.first || from > end {
            return None;
        }
        let skip = usize::try_from(from - self.first).ok()?;
        Some(self.data.range(skip..).copied().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail_and_answers_ranges() {
        let mut b = Backlog::new(8, 1);
        b.push(b"abcdef");
        assert_eq!(b.from_offset(1).as_deref(), Some(&b"abcdef"[..]));
        assert_eq!(b.from_offset(7).as_deref(), Some(&b""[..]));
        assert_eq!(b.from_offset(8), None);
        b.push(b"ghij");
        assert_eq!(b.first_byte_offset(), 3);
        assert_eq!(b.histlen(), 8);
        assert_eq!(b.from_offset(2), None);
        assert_eq!(b.from_offset(9).as_deref(), Some(&b"ij"[..]));
        b.resize(2);
        assert_eq!((b.first_byte_offset(), b.histlen()), (9, 2));
    }
}
