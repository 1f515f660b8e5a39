//! Append-only persistence (`--appendonly yes`): every propagated write, in RESP command
//! form with SELECT records, appended to `<dir>/appendonly.aof`, fsynced once a second
//! (Redis's `appendfsync everysec`), and replayed on start before the node accepts clients.
//!
//! Commands reach the file already in replay-safe form: the feed carries absolute expiry
//! times (`SET ... PXAT`, `PEXPIREAT`), so a replay an hour later expires keys at the same
//! moment instead of an hour late.
//!
//! The store lock is never held across file I/O: writers append to an in-memory
//! [`AofBuffer`] (under the lock, as part of publishing the feed); `aof_file.rs` takes the
//! buffer and writes it before the replies go out, and fsyncs per `appendfsync`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use super::aof_buffer::AofBuffer;
use super::aof_file::FsyncPolicy;
use super::client::ClientState;
use super::cmd::{self, Ctx};
pub use super::error::AofError;
use super::reply::Reply;
use super::shared::Shared;
use crate::resp::{decode_request, Limits};

/// The file name inside `--dir`, as Redis's `appendfilename` default.
pub const FILE_NAME: &str = "appendonly.aof";

/// The AOF's path inside `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Replays `path` into the store (if it exists), then opens it for appending and attaches
/// the buffer to the feed. A truncated last record is dropped and the file truncated to the
/// last complete record, as Redis's `aof-load-truncated yes`; anything else malformed
/// refuses to start. Returns the file, for [`super::aof_file::AofFile`].
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
    // Only a file that replayed completely matches a saved position.
    if valid == total {
        restore_position(shared);
    } else {
        let _ = std::fs::remove_file(shared.config.dir.join(POSITION_FILE));
    }
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
        replace: false,
        size: valid as u64,
        fsynced: valid as u64,
        seq: 0,
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

/// Where a replica's data stands in its master's stream, saved at a clean shutdown next to
/// the AOF so that a restarted replica can `PSYNC` from there instead of needing a full
/// resync (Redis keeps the same facts in its RDB's aux fields).
pub(super) struct ReplPosition {
    replid: String,
    offset: i64,
    db: usize,
}

impl ReplPosition {
    /// Where `repl` stands now.
    pub(super) fn of(repl: &super::repl::ReplState) -> ReplPosition {
        ReplPosition {
            replid: repl.replid.clone(),
            offset: repl.offset,
            db: repl.master_db,
        }
    }
}

/// The file holding a [`ReplPosition`] (`<replid> <offset> <db>`).
const POSITION_FILE: &str = "replication-position";

/// Saves the position if the file now holds exactly the data up to it: everything was
/// fsynced and nothing was applied after the last chunk was taken.
pub(super) fn save_position(shared: &Shared, p: &ReplPosition, size: u64, all_synced: bool) {
    let unchanged = {
        let s = shared.lock();
        s.repl.offset == p.offset && s.repl.aof.as_ref().is_some_and(|a| a.size == size)
    };
    if !(unchanged && all_synced) {
        return;
    }
    let path = shared.config.dir.join(POSITION_FILE);
    let text = format!("{} {} {}\n", p.replid, p.offset, p.db);
    let written = File::create(&path).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_data()
    });
    if let Err(e) = written {
        tracing::warn!(file = %path.display(), error = %e, "cannot save the replication position");
    }
}

/// After a replay: adopts the replication position saved at the last clean shutdown, and
/// deletes the file (after a crash the AOF may be ahead of or behind any saved position, so
/// it is only ever used once, right after the shutdown that wrote it).
fn restore_position(shared: &Shared) {
    let path = shared.config.dir.join(POSITION_FILE);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    let _ = std::fs::remove_file(&path);
    let mut parts = text.split_ascii_whitespace();
    let (Some(replid), Some(Ok(offset)), Some(Ok(db))) = (
        parts.next(),
        parts.next().map(str::parse::<i64>),
        parts.next().map(str::parse::<usize>),
    ) else {
        tracing::warn!(file = %path.display(), "ignoring a malformed replication position");
        return;
    };
    if replid.len() != 40 || db >= super::db::DATABASES || offset < 0 {
        return;
    }
    let mut s = shared.lock();
    let r = &mut s.repl;
    r.replid = replid.to_string();
    r.offset = offset;
    r.master_db = db;
    r.history = true;
    r.backlog = Some(super::repl::backlog::Backlog::new(
        r.backlog_size,
        offset + 1,
    ));
    tracing::info!(
        offset,
        "replication position restored: will try a partial resync"
    );
}

/// How often the background thread fsyncs under `everysec`.
const FSYNC_EVERY: Duration = Duration::from_secs(1);
/// How often the background thread writes what no client has written yet (writes applied
/// from a master, active expiry) and retries after a write error.
const TICK: Duration = Duration::from_millis(10);

/// Called by a connection before it sends the replies of a batch that ended at buffer
/// sequence `seq`: makes sure the file holds everything up to there (and, under `always`,
/// that it is fsynced).
pub fn before_reply(shared: &Shared, seq: u64) {
    let Some(f) = shared.aof.get() else {
        return;
    };
    if f.written.load(Ordering::Acquire) < seq {
        f.write_out(shared.store(), |_| ());
    }
    if f.policy() == FsyncPolicy::Always && f.synced.load(Ordering::Acquire) < seq {
        f.fsync(shared.store(), true);
    }
}

/// Starts the background thread: it writes what no client wrote (writes applied from a
/// master, active expiry) and fsyncs once a second under `everysec`. A thread, not a task:
/// `fsync` blocks. On shutdown it writes and fsyncs what is left (saving a replica's
/// replication position when the file then matches it exactly), then ends: join the handle.
pub fn spawn_syncer(shared: Arc<Shared>) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("sluice-aof".into())
        .spawn(move || {
            let Some(f) = shared.aof.get() else {
                return;
            };
            let mut last_sync = Instant::now();
            loop {
                if shared.shutdown.is_cancelled() {
                    // Taken with the last chunk, so the position matches the file exactly.
                    let (size, position) = f.write_out(shared.store(), |s| {
                        s.repl.is_replica().then(|| ReplPosition::of(&s.repl))
                    });
                    f.fsync(shared.store(), true);
                    let all = f.synced.load(Ordering::Acquire) == f.written.load(Ordering::Acquire)
                        && f.lock().unwritten.is_empty();
                    if let Some(p) = position {
                        save_position(&shared, &p, size, all);
                    }
                    return;
                }
                let behind = shared
                    .lock()
                    .repl
                    .aof
                    .as_ref()
                    .is_some_and(|a| a.seq > f.written.load(Ordering::Acquire));
                if behind {
                    f.write_out(shared.store(), |_| ());
                }
                let unsynced = f.synced.load(Ordering::Acquire) < f.written.load(Ordering::Acquire);
                if unsynced && f.policy() != FsyncPolicy::No && last_sync.elapsed() >= FSYNC_EVERY {
                    f.fsync(shared.store(), false);
                    last_sync = Instant::now();
                }
                std::thread::sleep(TICK);
            }
        })
        .map_err(|e| tracing::error!(error = %e, "cannot start the append-only file thread"))
        .ok()
}
