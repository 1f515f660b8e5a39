//! Append-only persistence (`--appendonly yes`): every propagated write, in RESP command
//! form with SELECT records, appended to `<dir>/appendonly.aof`, fsynced once a second
//! (Redis's `appendfsync everysec`), and replayed on start before the node accepts clients.
//!
//! Commands reach the file already in replay-safe form: the feed carries absolute expiry
//! times (`SET ... PXAT`, `PEXPIREAT`), so a replay an hour later expires keys at the same
//! moment instead of an hour late.
//!
//! The store lock is never held across file I/O: writers append to an in-memory
//! [`AofBuffer`] (under the lock, as part of publishing the feed), and a dedicated thread
//! takes the buffer, writes it and fsyncs outside the lock.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::client::ClientState;
use super::cmd::{self, Ctx};
use super::reply::Reply;
use super::server::Shared;
use crate::resp::{decode_request, Limits};

/// The file name inside `--dir`, as Redis's `appendfilename` default.
pub const FILE_NAME: &str = "appendonly.aof";
/// How often the writer thread fsyncs (Redis's `everysec`).
const FSYNC_EVERY: Duration = Duration::from_secs(1);
/// How long the writer thread sleeps when there is nothing to write.
const IDLE: Duration = Duration::from_millis(10);

/// Why the append-only file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AofError {
    /// Reading, opening or truncating the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A record that is not a valid command, before the end of the file.
    #[error("{path}: bad record at byte offset {offset}: {reason} (refusing to start; fix or remove the file)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the record.
        offset: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// Writes not yet handed to the file, plus sizes for INFO persistence.
#[derive(Debug, Default)]
pub struct AofBuffer {
    buf: BytesMut,
    /// Size the file will have once the buffer is written (`aof_current_size`).
    pub size: u64,
    /// Size of the file as of the last successful fsync.
    pub fsynced: u64,
}

impl AofBuffer {
    /// Appends propagated writes.
    pub fn append(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.size += bytes.len() as u64;
    }
    fn take(&mut self) -> BytesMut {
        self.buf.split()
    }
}

/// The AOF's path inside `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Replays `path` into the store (if it exists), then opens it for appending and attaches
/// the buffer to the feed. A truncated last record is dropped and the file truncated to the
/// last complete record, as Redis's `aof-load-truncated yes`; anything else malformed
/// refuses to start. Returns the file, for [`spawn_writer`].
pub fn open(shared: &Shared, path: &Path) -> Result<File, AofError> {
    let io = |source| AofError::Io {
        path: path.to_path_buf(),
        source,
    };
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io(e)),
    };
    let total = data.len();
    let valid = replay(shared, path, data)?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io)?;
    if valid < total {
        tracing::warn!(
            file = %path.display(),
            valid,
            dropped = total - valid,
            "append-only file ends with an incomplete record: ignoring it and truncating the file (aof-load-truncated yes)"
        );
        file.set_len(valid as u64).map_err(io)?;
    }
    let mut store = shared.lock();
    store.repl.aof = Some(AofBuffer {
        buf: BytesMut::new(),
        size: valid as u64,
        fsynced: valid as u64,
    });
    store.feed.enabled = true;
    // The file's last SELECT is unknown to the feed: force one before the next write.
    store.feed.reset_db();
    Ok(file)
}

/// Runs every complete record; returns the byte length of the complete records.
fn replay(shared: &Shared, path: &Path, data: Vec<u8>) -> Result<usize, AofError> {
    let total = data.len();
    let mut buf = BytesMut::from(&data[..]);
    let mut client = ClientState {
        authed: true,
        // Replay is not a client: no READONLY check, and keys whose deadline passed stay
        // until the DEL recorded after them (Redis does not expire while loading).
        from_master: true,
        ..ClientState::default()
    };
    let mut store = shared.lock();
    let mut records = 0u64;
    loop {
        let offset = total - buf.len();
        // Only multibulk records are valid: the decoder would also accept inline commands,
        // which a corrupt byte run could look like.
        if buf.first().is_some_and(|&b| b != b'*') {
            return Err(AofError::Corrupt {
                path: path.to_path_buf(),
                offset,
                reason: "expected '*' (a multibulk command)".into(),
            });
        }
        match decode_request(&mut buf, &Limits::default()) {
            Ok(Some(req)) => {
                let mut ctx = Ctx::new(&mut store, &mut client, shared, false);
                if cmd::lookup(req.arg(0)).is_none() {
                    return Err(AofError::Corrupt {
                        path: path.to_path_buf(),
                        offset,
                        reason: format!(
                            "unknown command '{}'",
                            String::from_utf8_lossy(req.arg(0))
                        ),
                    });
                }
                if let Reply::Error(e) = cmd::execute(&mut ctx, &req) {
                    tracing::warn!(offset, error = %e, "append-only file record failed on replay");
                }
                records += 1;
            }
            Ok(None) => break,
            Err(e) => {
                return Err(AofError::Corrupt {
                    path: path.to_path_buf(),
                    offset,
                    reason: e.to_string(),
                })
            }
        }
    }
    // Replayed writes are not new writes: nothing of them goes back into the feed.
    store.feed.take();
    if records > 0 {
        tracing::info!(records, file = %path.display(), "append-only file loaded");
    }
    Ok(total - buf.len())
}

/// Starts the thread that writes the buffer to `file` and fsyncs it every second. A
/// thread, not a task: `write`/`fsync` block, and must never stall the event loop or happen
/// under the store lock.
/// On shutdown the thread writes and fsyncs what is left, then ends: join the handle.
pub fn spawn_writer(shared: Arc<Shared>, mut file: File) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("sluice-aof".into())
        .spawn(move || {
            let mut written = 0u64;
            let mut synced = 0u64;
            let mut last_sync = Instant::now();
            loop {
                let stopping = shared.shutdown.is_cancelled();
                let (chunk, base) = {
                    let mut s = shared.lock();
                    match s.repl.aof.as_mut() {
                        Some(a) => {
                            let c = a.take();
                            (c, a.size)
                        }
                        None => return,
                    }
                };
                if !chunk.is_empty() {
                    if let Err(e) = file.write_all(&chunk) {
                        tracing::error!(error = %e, "writing the append-only file failed");
                    }
                    written += chunk.len() as u64;
                }
                if written > synced && (last_sync.elapsed() >= FSYNC_EVERY || stopping) {
                    match file.sync_data() {
                        Ok(()) => {
                            synced = written;
                            if let Some(a) = shared.lock().repl.aof.as_mut() {
                                // `base` is the size including everything taken so far.
                                a.fsynced = base;
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "fsync of the append-only file failed")
                        }
                    }
                    last_sync = Instant::now();
                }
                if stopping {
                    return;
                }
                if chunk.is_empty() {
                    std::thread::sleep(IDLE);
                }
            }
        })
        .map_err(|e| tracing::error!(error = %e, "cannot start the append-only file writer"))
        .ok()
}
