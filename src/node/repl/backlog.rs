//! The replication backlog: the last `size` bytes of the replication stream, so a replica
//! that lost its link for a moment can continue from its offset (`+CONTINUE`) instead of
//! needing a full snapshot.

/// Redis's default `repl-backlog-size`.
pub const DEFAULT_SIZE: usize = 1024 * 1024;

/// A circular buffer of the stream's most recent bytes.
///
/// Offsets follow Redis: the stream's bytes are numbered from 1, `master_repl_offset` is the
/// number of the last byte written, and a replica asks for the byte after the last one it
/// processed (`PSYNC replid <processed + 1>`).
///
/// A fixed ring (allocated once, filled with `copy_from_slice`) rather than a `VecDeque`:
/// every write of a master with replicas passes through here under the store lock.
#[derive(Debug)]
pub struct Backlog {
    ring: Vec<u8>,
    /// Index of the oldest byte in `ring`.
    start: usize,
    /// Bytes held.
    len: usize,
    /// Stream offset of the oldest byte (Redis's `repl_backlog_first_byte_offset`).
    first: i64,
}

impl Backlog {
    /// An empty backlog of `size` bytes whose next byte has offset `next`.
    pub fn new(size: usize, next: i64) -> Backlog {
        Backlog {
            ring: vec![0; size.max(1)],
            start: 0,
            len: 0,
            first: next,
        }
    }
    /// Appends stream bytes, dropping the oldest beyond the size.
    pub fn push(&mut self, bytes: &[u8]) {
        let size = self.ring.len();
        if bytes.len() >= size {
            let dropped = self.len + bytes.len() - size;
            self.ring.copy_from_slice(&bytes[bytes.len() - size..]);
            self.start = 0;
            self.len = size;
            self.first += dropped as i64;
            return;
        }
        let at = (self.start + self.len) % size;
        let head = bytes.len().min(size - at);
        self.ring[at..at + head].copy_from_slice(&bytes[..head]);
        self.ring[..bytes.len() - head].copy_from_slice(&bytes[head..]);
        let total = self.len + bytes.len();
        if total > size {
            let dropped = total - size;
            self.start = (self.start + dropped) % size;
            self.first += dropped as i64;
            self.len = size;
        } else {
            self.len = total;
        }
    }
    /// Changes the size, keeping the newest bytes that fit.
    pub fn resize(&mut self, size: usize) {
        let data = self.tail(0);
        let next = self.first + self.len as i64;
        *self = Backlog::new(size, next - data.len() as i64);
        self.push(&data);
    }
    /// Offset of the oldest byte held.
    pub fn first_byte_offset(&self) -> i64 {
        self.first
    }
    /// Bytes held (`repl_backlog_histlen`).
    pub fn histlen(&self) -> usize {
        self.len
    }
    /// Configured size.
    pub fn size(&self) -> usize {
        self.ring.len()
    }
    /// Every byte from offset `from` to the end, or `None` if `from` is not held: older than
    /// the first byte, or past the end (a replica claiming data we never produced). `from`
    /// equal to the next offset is valid and gives nothing: the replica is up to date.
    pub fn from_offset(&self, from: i64) -> Option<Vec<u8>> {
        let end = self.first + self.len as i64;
        if from < self.first || from > end {
            return None;
        }
        let skip = usize::try_from(from - self.first).ok()?;
        Some(self.tail(skip))
    }
    /// The bytes held, after the first `skip`.
    fn tail(&self, skip: usize) -> Vec<u8> {
        let size = self.ring.len();
        let n = self.len - skip;
        let at = (self.start + skip) % size;
        let head = n.min(size - at);
        let mut out = Vec::with_capacity(n);
        out.extend_from_slice(&self.ring[at..at + head]);
        out.extend_from_slice(&self.ring[..n - head]);
        out
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
        assert_eq!(b.from_offset(9).as_deref(), Some(&b"ij"[..]));
        b.resize(4);
        b.push(b"klmnopq");
        assert_eq!(b.from_offset(14).as_deref(), Some(&b"nopq"[..]));
        assert_eq!(b.first_byte_offset(), 14);
    }

    #[test]
    fn matches_a_simple_model_over_many_wrapping_writes() {
        let mut b = Backlog::new(13, 1);
        let mut all = Vec::new();
        for i in 0..200u32 {
            let chunk: Vec<u8> = (0..(i * 7 % 17)).map(|j| (i + j) as u8).collect();
            b.push(&chunk);
            all.extend_from_slice(&chunk);
            let kept = all.len().min(13);
            assert_eq!(b.histlen(), kept);
            let first = (all.len() - kept) as i64 + 1;
            assert_eq!(b.first_byte_offset(), first);
            assert_eq!(
                b.from_offset(first).as_deref(),
                Some(&all[all.len() - kept..])
            );
        }
    }
}
