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

use bytes::BytesMut;

use super::client::ClientState;
use super::cmd::{self, Ctx};
use super::reply::Reply;
use super::server::Shared;
use super::store::Store;
use super::value::Value;
use crate::resp::{decode_request, encode, Limits};

/// The file name inside `--dir`, as Redis's `appendfilename` default.
pub const FILE_NAME: &str = "appendonly.aof";

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
    /// The buffer replaces the file's contents instead of extending them (a rewrite).
    replace: bool,
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

/// Elements per command when a rewrite re-creates a big container (Redis's
/// `AOF_REWRITE_ITEMS_PER_CMD`), so no single record is huge.
const ITEMS_PER_CMD: usize = 64;

/// Replaces the AOF's contents with commands that re-create the current keyspace (under the
/// lock; the writer thread truncates the file and writes them). Used after a replica's full
/// resync — the file must describe the new dataset, not the old one plus the stream — and
/// by BGREWRITEAOF. Does nothing without `appendonly yes`.
pub fn rewrite(store: &mut Store) {
    if store.repl.aof.is_none() {
        return;
    }
    let mut out = BytesMut::new();
    let mut n = itoa::Buffer::new();
    for code in store.scripting.functions.codes() {
        encode::command(&mut out, &[b"FUNCTION", b"LOAD", &code]);
    }
    for (i, db) in store.dbs().iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        encode::command(&mut out, &[b"SELECT", n.format(i).as_bytes()]);
        for (k, v) in db.iter() {
            rewrite_value(&mut out, k, v);
            if let Some(at) = db.expire_at(k) {
                encode::command(&mut out, &[b"PEXPIREAT", k, n.format(at).as_bytes()]);
            }
        }
    }
    if let Some(a) = store.repl.aof.as_mut() {
        a.size = out.len() as u64;
        a.seq += out.len() as u64;
        a.buf = out;
        a.replace = true;
    }
    // The rewritten file's last SELECT is not the feed's: force one before the next write.
    store.feed.reset_db();
}

fn rewrite_value(out: &mut BytesMut, key: &[u8], v: &Value) {
    let chunks = |out: &mut BytesMut, cmd: &[u8], items: Vec<&[u8]>, per: usize| {
        for chunk in items.chunks(ITEMS_PER_CMD * per) {
            let mut args: Vec<&[u8]> = vec![cmd, key];
            args.extend_from_slice(chunk);
            encode::command(out, &args);
        }
    };
    match v {
        Value::Str(s) => encode::command(out, &[b"SET", key, s]),
        Value::List(l) => chunks(out, b"RPUSH", l.iter().map(|x| &x[..]).collect(), 1),
        Value::Set(s) => chunks(out, b"SADD", s.iter().map(|x| &x[..]).collect(), 1),
        Value::Hash(h) => chunks(
            out,
            b"HSET",
            h.iter().flat_map(|(f, x)| [&f[..], &x[..]]).collect(),
            2,
        ),
        Value::ZSet(z) => {
            let scores: Vec<String> = z.iter().map(|(_, s)| format_score(s)).collect();
            let items = z
                .iter()
                .zip(&scores)
                .flat_map(|((m, _), s)| [s.as_bytes(), &m[..]])
                .collect();
            chunks(out, b"ZADD", items, 2);
        }
    }
}

/// A score as text that parses back to the same f64 (Rust's shortest round-trip form).
fn format_score(s: f64) -> String {
    if s.is_infinite() {
        if s > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{s:?}")
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::value::{Hash, List, ZSet};
    use bytes::Bytes;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn rewrite_recreates_every_type_with_absolute_expiry() {
        let mut s = Store::new();
        s.repl.aof = Some(AofBuffer::default());
        let mut l = List::new();
        l.extend([b("a"), b("b")]);
        s.db_mut(0).insert(b("l"), Value::List(l), false);
        s.db_mut(0).set_expire(b"l", 1_700_000_000_000);
        let mut h = Hash::default();
        h.insert(b("f"), b("v"));
        s.db_mut(2).insert(b("h"), Value::Hash(h), false);
        let mut z = ZSet::default();
        z.insert(b("m"), 0.1);
        z.insert(b("n"), f64::NEG_INFINITY);
        s.db_mut(2).insert(b("z"), Value::ZSet(z), false);
        rewrite(&mut s);
        let Some(aof) = s.repl.aof.as_mut() else {
            panic!("aof")
        };
        let (buf, replace) = aof.take();
        assert!(replace);
        let text = String::from_utf8_lossy(&buf).replace("\r\n", " ");
        assert_eq!(
            text,
            "*2 $6 SELECT $1 0 *4 $5 RPUSH $1 l $1 a $1 b \
             *3 $9 PEXPIREAT $1 l $13 1700000000000 \
             *2 $6 SELECT $1 2 *4 $4 HSET $1 h $1 f $1 v \
             *6 $4 ZADD $1 z $4 -inf $1 n $3 0.1 $1 m "
        );
    }
}
