//! [`Ctx`]: what a command handler works with — the keyspace under the lock, the client's
//! session, expiry-aware typed lookups, propagation and key signalling.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::node::args::wrongtype;
use crate::node::client::ClientState;
use crate::node::db::Db;
use crate::node::notify;
use crate::node::reply::{Block, Reply};
use crate::node::script::busy::Claim;
use crate::node::shared::Shared;
use crate::node::store::Store;
use crate::node::value::{Kind, Value};
use crate::resp::Protocol;

/// How the current command is propagated to replicas and the AOF.
#[derive(Debug, Default)]
enum Propagation {
    /// As received, if it changed anything (`dirty > 0`).
    #[default]
    Verbatim,
    /// As these commands instead (each an argument list), whatever `dirty` says.
    Rewritten(Vec<Vec<Bytes>>),
}

/// A command's view of the node while it runs (the store lock is held throughout).
pub struct Ctx<'a> {
    /// The keyspace and everything that changes with it.
    pub store: &'a mut Store,
    /// The calling client's session.
    pub client: &'a mut ClientState,
    /// Process-wide state outside the lock (configuration, counters).
    pub shared: &'a Shared,
    may_block: bool,
    dirty: u64,
    propagation: Propagation,
    /// Running EXEC's queued commands: the first propagated write opens a MULTI.
    in_exec: bool,
    /// A MULTI was put on the feed for the running EXEC; EXEC must close it.
    exec_open: bool,
    /// Keyspace notifications for the calling client itself (subscribed on this
    /// connection), to go before the running command's reply.
    own_pushes: BytesMut,
    /// The same, to go after the reply (commands Redis answers before it notifies).
    own_after: BytesMut,
    /// When the previous command ended (or the batch started): the next command's start.
    /// One clock read per command instead of two; the few instructions between commands
    /// are counted with the next one.
    last_mark: Instant,
    /// An inline script of this batch wrote, ran long and left the event loop
    /// (`script/handoff.rs`): its claim on the store, held until the connection has
    /// released the store. Here, in the batch's context, so that a batch unwinding from a
    /// panic drops it rather than leaving every other client waiting.
    script_claim: Option<Claim>,
}

impl<'a> Ctx<'a> {
    /// A context for one or more commands of `client`. `may_block` is false inside
    /// MULTI/EXEC and for replicated/AOF commands, where blocking commands must not wait.
    pub fn new(
        store: &'a mut Store,
        client: &'a mut ClientState,
        shared: &'a Shared,
        may_block: bool,
    ) -> Ctx<'a> {
        Ctx::new_untimed(store, client, shared, may_block, Instant::now())
    }

    fn new_untimed(
        store: &'a mut Store,
        client: &'a mut ClientState,
        shared: &'a Shared,
        may_block: bool,
        last_mark: Instant,
    ) -> Ctx<'a> {
        Ctx {
            store,
            client,
            shared,
            may_block,
            dirty: 0,
            propagation: Propagation::Verbatim,
            in_exec: false,
            exec_open: false,
            own_pushes: BytesMut::new(),
            own_after: BytesMut::new(),
            last_mark,
            script_claim: None,
        }
    }

    /// A context like [`Ctx::new`] whose next command is timed from `mark` (a script's
    /// `redis.call`: the end of its previous call, saving a clock read per call).
    pub fn new_at(
        store: &'a mut Store,
        client: &'a mut ClientState,
        shared: &'a Shared,
        may_block: bool,
        mark: Instant,
    ) -> Ctx<'a> {
        Ctx::new_untimed(store, client, shared, may_block, mark)
    }

    /// Keeps a script's claim on the store for the connection (see `script_claim`).
    pub(crate) fn hold_script_claim(&mut self, claim: Claim) {
        self.script_claim = Some(claim);
    }
    /// The claim an inline script of this batch left, if any.
    pub(crate) fn take_script_claim(&mut self) -> Option<Claim> {
        self.script_claim.take()
    }

    /// When the last command ended.
    pub(crate) fn last_mark(&self) -> Instant {
        self.last_mark
    }

    /// The start of the command about to run (for INFO commandstats timing).
    pub(crate) fn command_start(&self) -> Instant {
        self.last_mark
    }
    /// Ends timing a command started at `start`: its duration in µs.
    pub(crate) fn command_usec(&mut self, start: Instant) -> u64 {
        let now = Instant::now();
        self.last_mark = now;
        u64::try_from(now.duration_since(start).as_micros()).unwrap_or(u64::MAX)
    }

    // ---- Session ----

    /// The selected database's index.
    pub fn db_index(&self) -> usize {
        self.client.db
    }
    /// The client's protocol (RESP2 unless HELLO 3).
    pub fn proto(&self) -> Protocol {
        self.client.proto
    }
    /// The time commands see, in unix ms (fixed for the whole batch).
    pub fn now_ms(&self) -> i64 {
        self.store.now_ms
    }
    /// The selected database, raw: no expiry check, no type check. Prefer the lookups below.
    pub fn db(&mut self) -> &mut Db {
        self.store.db_mut(self.client.db)
    }

    // ---- Expiry-aware lookups ----

    /// Applies lazy expiry to `key`; true if it is (now) logically absent because it expired.
    fn expire(&mut self, key: &[u8]) -> bool {
        self.store
            .expire_if_needed(self.client.db, key, self.client.from_master)
    }
    /// True if `key` exists (after lazy expiry).
    pub fn exists(&mut self, key: &[u8]) -> bool {
        !self.expire(key) && self.db().contains(key)
    }
    /// [`Ctx::exists`] for a command that reads the key (EXISTS, TTL): a missing key is a
    /// `keymiss` event, as Redis's read lookup makes it.
    pub fn exists_read(&mut self, key: &[u8]) -> bool {
        let found = self.exists(key);
        if !found {
            self.notify_miss(key);
        }
        found
    }
    /// The value of `key`, any type; records the access in the key's clock.
    pub fn lookup(&mut self, key: &[u8]) -> Option<&Value> {
        if self.expire(key) {
            self.miss(key);
            return None;
        }
        if self.store.notify_flags & notify::KEY_MISS != 0 && !self.db().contains(key) {
            self.notify_miss(key);
        }
        self.store.read_touched(self.client.db, key)
    }
    /// A read found `key` expired: counts a keyspace miss and notifies `keymiss`.
    fn miss(&mut self, key: &[u8]) {
        self.store.stats.keyspace_misses += 1;
        self.notify_miss(key);
    }
    /// Notifies `keymiss` for a read of missing `key`, if `m` is on and the running command
    /// looks keys up as Redis's `lookupKeyRead` does: read commands, and the few writes that
    /// read their sources that way. Other writes look up with `lookupKeyWrite`, which never
    /// notifies, and subcommands (OBJECT ...) look up without notifying.
    fn notify_miss(&mut self, key: &[u8]) {
        if self.store.notify_flags & notify::KEY_MISS == 0 {
            return;
        }
        if self.client.last_cmd_reads {
            self.notify(notify::KEY_MISS, "keymiss", key);
        }
    }
    /// [`Ctx::lookup`] without recording an access: TYPE and OBJECT leave the idle time and
    /// the LFU counter alone (Redis's `LOOKUP_NOTOUCH`; TTL and EXISTS use
    /// [`Ctx::exists`], which does not record one either).
    pub fn peek(&mut self, key: &[u8]) -> Option<&Value> {
        if self.expire(key) {
            self.miss(key);
            return None;
        }
        if self.store.notify_flags & notify::KEY_MISS != 0 && !self.db().contains(key) {
            self.notify_miss(key);
        }
        self.store.read_counted(self.client.db, key)
    }
    /// The value of `key`, any type, mutably; records the access. Call [`Ctx::modified`]
    /// after changing it.
    pub fn lookup_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        if self.expire(key) {
            return None;
        }
        let touch = self.store.touch();
        self.db().get_touched(key, &touch)
    }
    /// `key` as type `T`: `Ok(None)` if missing, `Err(WRONGTYPE)` if of another type.
    pub fn read<T: Kind>(&mut self, key: &[u8]) -> Result<Option<&T>, Reply> {
        match self.lookup(key) {
            None => Ok(None),
            Some(v) => T::of(v).map(Some).ok_or_else(wrongtype),
        }
    }
    /// `key` as type `T`, mutably (see [`Ctx::read`]). After removing elements, call
    /// [`Ctx::delete_if_empty`]; after any change, [`Ctx::modified`].
    pub fn write<T: Kind>(&mut self, key: &[u8]) -> Result<Option<&mut T>, Reply> {
        match self.lookup_mut(key) {
            None => Ok(None),
            Some(v) => T::of_mut(v).map(Some).ok_or_else(wrongtype),
        }
    }
    /// `key` as type `T`, created empty if missing (LPUSH, SADD, HSET, ZADD). The caller must
    /// add at least one element, or call [`Ctx::delete_if_empty`], since Redis never keeps an
    /// empty aggregate.
    pub fn get_or_create<T: Kind>(&mut self, key: &[u8]) -> Result<&mut T, Reply> {
        self.expire(key);
        let touch = self.store.touch();
        if !self.db().contains(key) {
            self.db().insert_touched(key, T::empty(), false, &touch);
            self.notify(notify::NEW, "new", key);
            let db = self.store.db_mut(self.client.db);
            return db.get_mut(key).and_then(T::of_mut).ok_or_else(wrongtype);
        }
        let db = self.store.db_mut(self.client.db);
        db.get_touched(key, &touch)
            .and_then(T::of_mut)
            .ok_or_else(wrongtype)
    }
    /// Deletes `key` if it holds an empty `T` (after LPOP/SREM/HDEL/ZREM took the last
    /// element). Returns true if it deleted. Signals nothing: the caller already called
    /// [`Ctx::modified`] for the change that emptied it.
    pub fn delete_if_empty<T: Kind>(&mut self, key: &[u8]) -> bool {
        let db = self.db();
        let empty = db.get(key).and_then(T::of).is_some_and(Kind::is_empty);
        if empty {
            db.remove(key);
        }
        empty
    }
    /// Deletes `key` (if it exists and has not expired); returns true if it did.
    /// Call [`Ctx::modified`] when it returns true.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        !self.expire(key) && self.db().remove(key).is_some()
    }
    /// Stores `value` under `key`, replacing whatever was there; the TTL is cleared unless
    /// `keep_ttl`. A new key's clock starts now; a replaced one records an access. Call
    /// [`Ctx::modified`] afterwards.
    pub fn set(&mut self, key: &[u8], value: Value, keep_ttl: bool) {
        self.expire(key);
        let touch = self.store.touch();
        let announce = self.store.notify_flags & notify::NEW != 0;
        let db = self.store.db_mut(self.client.db);
        // Whether the key is new is only looked up when someone wants `new` events.
        let new = announce && !db.contains(key);
        db.insert_touched(key, value, keep_ttl, &touch);
        if new {
            self.notify(notify::NEW, "new", key);
        }
    }
    /// [`Ctx::set`] with the key as a slice, copied only if the key is new (SET of an
    /// existing key allocates nothing for the key).
    pub fn set_from(&mut self, key: &[u8], value: Value, keep_ttl: bool) {
        self.expire(key);
        let touch = self.store.touch();
        let db = self.store.db_mut(self.client.db);
        if let Err(value) = db.replace_touched(key, value, keep_ttl, &touch) {
            self.set(key, value, keep_ttl);
        }
    }
    /// The unix ms expiry of `key` (`None` if it has none or does not exist).
    pub fn expire_at(&mut self, key: &[u8]) -> Option<i64> {
        if self.expire(key) {
            return None;
        }
        self.db().expire_at(key)
    }

    // ---- Effects ----

    /// Records that the command changed `key`: counts a change (so the command is
    /// propagated), and wakes clients blocked on the key (and, in phase 2, invalidates
    /// WATCHes). Call it once per key a write touched, deletions included.
    pub fn modified(&mut self, key: &[u8]) {
        self.dirty += 1;
        self.signal_key(key);
    }
    /// Publishes keyspace notification `event` of `class` (a [`notify`] flag) on `key` in
    /// the current database, if `notify-keyspace-events` selects it. Handlers call it after
    /// each change, with Redis's event name for it (`set`, `lpush`, `del`, ...), in the
    /// order Redis does; a key a command creates announces itself (`new`) in [`Ctx::set`]
    /// and [`Ctx::get_or_create`].
    pub fn notify(&mut self, class: u32, event: &str, key: &[u8]) {
        if self.store.notify_flags & class == 0 {
            return; // the common case: notifications off
        }
        // Inside EXEC or a script the command's reply is part of a larger one: the caller's
        // own copy goes through its mailbox rather than into the middle of it.
        let inline = !self.in_exec && !self.client.in_script;
        // Where Redis adds the reply before notifying, the caller's copy follows the reply;
        // a created key's `new` comes from the key's creation, before either.
        let after = inline
            && self.client.subscriptions() > 0
            && event != "new"
            && self.client.last_cmd_reply_first;
        let origin = notify::Origin {
            db: self.client.db,
            writer: self.client.id,
            own: inline.then_some(if after {
                &mut self.own_after
            } else {
                &mut self.own_pushes
            }),
        };
        self.store.notify_from(origin, class, event, key);
    }
    /// The command's reply, preceded by the notifications the caller received from its own
    /// command (Redis writes them into the reply stream first).
    pub(crate) fn with_own_pushes(&mut self, reply: Reply) -> Reply {
        if (self.own_pushes.is_empty() && self.own_after.is_empty())
            || matches!(reply, Reply::Block(_))
        {
            return reply;
        }
        let mut out = std::mem::take(&mut self.own_pushes);
        reply.encode(self.client.proto, &mut out);
        out.extend_from_slice(&std::mem::take(&mut self.own_after));
        Reply::Raw(out.freeze())
    }
    /// [`Ctx::modified`] and [`Ctx::notify`] together: the common case of one change.
    pub fn changed(&mut self, key: &[u8], class: u32, event: &str) {
        self.modified(key);
        self.notify(class, event, key);
    }
    /// After removing elements of `key` (a `T`): deletes it if that emptied it, counts the
    /// change and notifies `event`, then `del` if it deleted (Redis's order). Returns true
    /// if it deleted.
    pub fn shrunk<T: Kind>(&mut self, key: &[u8], class: u32, event: &str) -> bool {
        let deleted = self.delete_if_empty::<T>(key);
        self.changed(key, class, event);
        if deleted {
            self.notify(notify::GENERIC, "del", key);
        }
        deleted
    }
    /// Counts `n` changes without signalling (FLUSHDB counts the keys it removed).
    pub fn dirty(&mut self, n: u64) {
        self.dirty += n;
    }
    /// Wakes clients blocked on `key` in the current db, breaks WATCHes on it and sends
    /// client-side cache invalidations. Cheap when nobody blocks, watches or tracks.
    pub fn signal_key(&mut self, key: &[u8]) {
        self.store.signal(self.client.db, key, self.client.id);
    }
    /// Propagates `args` instead of the command as received. Call it once per command to
    /// emit (SPOP → SREM, INCRBYFLOAT → SET ... KEEPTTL, EXPIRE → PEXPIREAT, BLPOP → LPOP);
    /// a rewritten command is propagated even if nothing was counted as dirty.
    pub fn propagate_as(&mut self, args: Vec<Bytes>) {
        match &mut self.propagation {
            Propagation::Rewritten(list) => list.push(args),
            p => *p = Propagation::Rewritten(vec![args]),
        }
    }

    /// A blocking command's "nothing yet": blocks the client on `keys` (of the current db)
    /// for `timeout` (`None` = forever), answering `on_timeout` if it expires. Inside
    /// MULTI/EXEC, or for commands from a master/AOF, returns `on_timeout` at once, as Redis
    /// does.
    pub fn block(&self, keys: Vec<Bytes>, timeout: Option<Duration>, on_timeout: Reply) -> Reply {
        if self.may_block && !self.in_exec {
            Reply::Block(Box::new(Block {
                keys,
                timeout,
                on_timeout,
            }))
        } else {
            on_timeout
        }
    }

    /// Starts running EXEC's queued commands: blocking commands answer their timeout reply
    /// at once, and the writes are wrapped in MULTI ... EXEC on the feed (see
    /// [`Ctx::end_exec`]), so replicas and the AOF apply the transaction atomically too.
    pub fn begin_exec(&mut self) {
        self.in_exec = true;
        self.exec_open = false;
    }
    /// Ends EXEC: closes the MULTI opened on the feed, if a queued command wrote anything.
    pub fn end_exec(&mut self) {
        if self.exec_open {
            let db = self.client.db;
            self.store.feed.push(db, &[b"EXEC"]);
        }
        self.in_exec = false;
        self.exec_open = false;
    }
    /// True if a MULTI is open on the feed for the running EXEC (or script).
    pub(crate) fn exec_open(&self) -> bool {
        self.exec_open
    }
    /// Tells the running EXEC that a script's writes opened a MULTI on the feed.
    pub(crate) fn set_exec_open(&mut self, open: bool) {
        self.exec_open = open;
    }
    /// True while EXEC runs queued commands (blocking is then refused).
    pub fn in_exec(&self) -> bool {
        self.in_exec
    }

    /// Ends one command: counts its changes and puts it on the write feed. `raw` is the
    /// command as received and `db` the database it ran in.
    pub(crate) fn finish(&mut self, db: usize, raw: &[u8]) {
        self.store.dirty += self.dirty;
        let propagate = match &self.propagation {
            Propagation::Verbatim => self.dirty > 0,
            Propagation::Rewritten(_) => true,
        };
        if propagate && self.in_exec && !self.exec_open {
            self.exec_open = true;
            self.store.feed.push(db, &[b"MULTI"]);
        }
        match std::mem::take(&mut self.propagation) {
            Propagation::Verbatim if self.dirty > 0 => self.store.feed.push_raw(db, raw),
            Propagation::Verbatim => {}
            Propagation::Rewritten(cmds) => {
                for c in cmds {
                    let parts: Vec<&[u8]> = c.iter().map(|b| &b[..]).collect();
                    self.store.feed.push(db, &parts);
                }
            }
        }
        self.dirty = 0;
        // A script's commands reach replicas and the AOF when the script ends (Redis's
        // `propagatePendingCommands` after the top-level call; see `script::run`): a
        // server stopped inside a script must not leave half of it in the AOF.
        if !self.client.in_script {
            self.store.publish_feed();
        }
    }
}
