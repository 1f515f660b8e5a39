//! Getting the append-only file's bytes to disk, as Redis does: every write is in the file
//! (the OS page cache, with `write(2)`) before its reply is sent, so a killed process loses
//! no acknowledged write; `fsync` follows `appendfsync` (`everysec` by default: once a second
//! on a background thread, so only a machine crash may lose the last second; `always`:
//! before the reply; `no`: left to the OS).
//!
//! Commands append to the [`super::aof_buffer::AofBuffer`] under the store lock. After a batch, the connection
//! calls [`before_reply`] with the buffer's sequence number at the end of its batch; if the
//! file is not that far yet, it writes everything buffered so far (its own writes and any
//! other client's), so concurrent batches share one `write(2)` (a group commit). The file has
//! its own mutex, taken before the store lock and never the other way round, so the store
//! lock is never held across file I/O.

use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::{Buf, BytesMut};

use super::store::{self, Store};

/// `appendfsync`: when the file is fsynced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Before every reply that follows a write.
    Always = 0,
    /// Once a second, in the background.
    EverySec = 1,
    /// Never by us (the OS flushes the page cache on its own schedule).
    No = 2,
}

impl FsyncPolicy {
    /// The policy named by `appendfsync`'s value (checked by CONFIG SET; anything else is
    /// `everysec`).
    pub fn parse(v: &str) -> FsyncPolicy {
        match v {
            "always" => FsyncPolicy::Always,
            "no" => FsyncPolicy::No,
            _ => FsyncPolicy::EverySec,
        }
    }
}

/// The open append-only file, shared by the connections and the background thread.
#[derive(Debug)]
pub struct AofFile {
    state: Mutex<FileState>,
    /// [`super::aof_buffer::AofBuffer::seq`] of the last byte in the file.
    pub(super) written: AtomicU64,
    /// [`super::aof_buffer::AofBuffer::seq`] of the last byte covered by an fsync.
    pub(super) synced: AtomicU64,
    /// An [`FsyncPolicy`].
    policy: AtomicU8,
    /// A second handle on the file, so the background fsync runs without the mutex (an
    /// fsync can take long; writers must not wait for it).
    sync_handle: File,
}

#[derive(Debug)]
pub(super) struct FileState {
    file: File,
    /// Bytes taken from the buffer that a failed write left unwritten; retried first.
    pub(super) unwritten: BytesMut,
    /// The buffer's `size` when last taken: the file's size once `unwritten` is written.
    size: u64,
    /// The last write failed (logged once, not once per retry).
    failing: bool,
}

impl AofFile {
    /// Wraps `file` (opened for appending) whose contents end at buffer sequence `seq`.
    pub fn new(file: File, seq: u64, size: u64, policy: FsyncPolicy) -> std::io::Result<Self> {
        Ok(AofFile {
            sync_handle: file.try_clone()?,
            state: Mutex::new(FileState {
                file,
                unwritten: BytesMut::new(),
                size,
                failing: false,
            }),
            written: AtomicU64::new(seq),
            synced: AtomicU64::new(seq),
            policy: AtomicU8::new(policy as u8),
        })
    }

    /// Sets `appendfsync` (CONFIG SET).
    pub fn set_policy(&self, policy: FsyncPolicy) {
        self.policy.store(policy as u8, Ordering::Relaxed);
    }

    pub(super) fn policy(&self) -> FsyncPolicy {
        match self.policy.load(Ordering::Relaxed) {
            0 => FsyncPolicy::Always,
            2 => FsyncPolicy::No,
            _ => FsyncPolicy::EverySec,
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, FileState> {
        // The state is only a handle and a byte queue: still usable after a panic elsewhere.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes everything buffered so far; `capture` runs under the store lock at the moment
    /// the buffer is taken (to record what the file then holds). Returns the file's size
    /// once written, and what `capture` returned.
    pub(super) fn write_out<T>(
        &self,
        store: &Mutex<Store>,
        capture: impl FnOnce(&Store) -> T,
    ) -> (u64, T) {
        let mut st = self.lock();
        let (chunk, replace, seq, size, captured) = {
            let mut s = store::lock(store);
            let captured = capture(&s);
            let Some(a) = s.repl.aof.as_mut() else {
                return (st.size, captured);
            };
            let (chunk, replace) = a.take();
            (chunk, replace, a.seq, a.size, captured)
        };
        if replace {
            // A rewrite: the file restarts with the new contents (the handle is in append
            // mode, so later writes follow the truncation).
            st.unwritten.clear();
            if let Err(e) = st.file.set_len(0) {
                tracing::error!(error = %e, "truncating the append-only file for a rewrite failed");
            }
        }
        if st.unwritten.is_empty() {
            st.unwritten = chunk;
        } else {
            st.unwritten.extend_from_slice(&chunk);
        }
        st.size = size;
        let result = st.write_unwritten();
        self.written
            .store(seq - st.unwritten.len() as u64, Ordering::Release);
        match result {
            Ok(()) if st.failing => {
                st.failing = false;
                tracing::warn!("writing the append-only file works again");
            }
            Ok(()) => {}
            Err(e) if !st.failing => {
                st.failing = true;
                tracing::error!(error = %e, "writing the append-only file failed: retrying");
            }
            Err(_) => {}
        }
        (st.size, captured)
    }

    /// Fsyncs what is written. `hold` keeps the mutex across the fsync (`always`: the reply
    /// waits anyway); otherwise writers carry on meanwhile.
    pub(super) fn fsync(&self, store: &Mutex<Store>, hold: bool) {
        let guard = self.lock();
        let (seq, size) = (
            self.written.load(Ordering::Acquire),
            guard.size - guard.unwritten.len() as u64,
        );
        let result = if hold {
            guard.file.sync_data()
        } else {
            drop(guard);
            self.sync_handle.sync_data()
        };
        match result {
            Ok(()) => {
                self.synced.fetch_max(seq, Ordering::AcqRel);
                if let Some(a) = store::lock(store).repl.aof.as_mut() {
                    a.fsynced = size;
                }
            }
            Err(e) => tracing::error!(error = %e, "fsync of the append-only file failed"),
        }
    }
}

impl FileState {
    /// Writes `unwritten`, keeping whatever a failed write left.
    fn write_unwritten(&mut self) -> std::io::Result<()> {
        while !self.unwritten.is_empty() {
            match self.file.write(&self.unwritten) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => self.unwritten.advance(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The buffer sequence a batch's replies must wait for (`None` without an AOF).
pub fn seq(store: &Store) -> Option<u64> {
    store.repl.aof.as_ref().map(|a| a.seq)
}

impl AofFile {
    /// Applies `appendfsync` after CONFIG SET.
    pub fn apply_settings(&self, store: &Store) {
        self.set_policy(FsyncPolicy::parse(
            store.settings.get("appendfsync").unwrap_or("everysec"),
        ));
    }
}
