//! The append-only file's in-memory side, under the store lock: the buffer writers append
//! to when the feed is published (`aof_file.rs` takes it and writes it). Data only: the
//! rewrite is `aof_rewrite.rs`, the tasks that load and write the file (`aof.rs`) sit above
//! the commands.

use bytes::BytesMut;

/// Writes not yet handed to the file, plus sizes for INFO persistence.
#[derive(Debug, Default)]
pub struct AofBuffer {
    pub(super) buf: BytesMut,
    /// The buffer replaces the file's contents instead of extending them (a rewrite).
    pub(super) replace: bool,
    /// Size the file will have once the buffer is written (`aof_current_size`).
    pub size: u64,
    /// Size of the file as of the last successful fsync.
    pub fsynced: u64,
    /// Bytes ever put in the buffer (appends and rewrites): a position that only grows,
    /// which a connection waits for the file to reach before replying.
    pub seq: u64,
}

impl AofBuffer {
    /// Appends propagated writes.
    pub fn append(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.size += bytes.len() as u64;
        self.seq += bytes.len() as u64;
    }
    /// What to write: the bytes, and whether they replace the file's contents.
    pub(super) fn take(&mut self) -> (BytesMut, bool) {
        (self.buf.split(), std::mem::take(&mut self.replace))
    }
}
