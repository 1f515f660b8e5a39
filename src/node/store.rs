//! Everything behind the node's one lock: the databases, the clock commands see, the write
//! feed, blocked clients, and expiry.
//!
//! One `std::sync::Mutex<Store>` is taken once per batch of pipelined requests and never held
//! across an `.await`. Redis is single-threaded for the same reason: every command sees a
//! consistent keyspace and runs to completion without any finer locking.

use std::sync::{Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::access::{AccessPolicy, Touch};
use super::blocking::Waiters;
use super::clients::Clients;
use super::clock::unix_ms;
use super::db::{Db, DATABASES};
use super::feed::Feed;
use super::pubsub::PubSub;
use super::repl::ReplState;
use super::settings::Settings;
use super::stats::Stats;
use super::tracking::Tracking;
use super::watch::Watches;

/// Keys sampled per round of active expiry (Redis's `ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`).
const SAMPLE: usize = 20;
/// Another round follows while more than this share of a sample had expired.
const REPEAT_PERCENT: usize = 25;
/// Longest one active expiry cycle may hold the lock, in µs (Redis: 25% of a 100 ms tick).
const CYCLE_BUDGET_US: u128 = 25_000;

/// Locks `store`. A panic while holding the lock poisons it; the keyspace is still
/// structurally valid (every mutation is a single container operation), so we carry on
/// rather than take the whole node down.
pub fn lock(store: &Mutex<Store>) -> Locked<'_> {
    Locked(store.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The locked store. Releasing it ends a turn of work (a client's batch, an expiry
/// cycle, a script): the keys changed meanwhile are reported to BCAST tracking clients
/// then, together, as Redis reports them once per event-loop turn.
pub struct Locked<'a>(MutexGuard<'a, Store>);

impl std::ops::Deref for Locked<'_> {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.0
    }
}

impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Store {
        &mut self.0
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let store = &mut *self.0;
        store.tracking.flush_bcast(&store.clients);
    }
}

/// The whole keyspace and the state that must change atomically with it.
#[derive(Debug)]
pub struct Store {
    dbs: Vec<Db>,
    /// Unix time in ms that commands of the current batch see (Redis caches the time per
    /// command the same way, so a command never sees a key expire halfway through).
    pub now_ms: i64,
    /// True on a replica: expired keys then read as missing but are deleted only by the
    /// master's DELs, which keeps replicas identical to their master.
    pub replica: bool,
    /// Writes to propagate to replicas and the AOF.
    pub feed: Feed,
    /// Clients blocked on keys.
    pub waiters: Waiters,
    /// CLIENT PAUSE.
    pub pause: super::pause::Pause,
    /// Changes since start (Redis's `server.dirty`, for INFO).
    pub dirty: u64,
    /// Keys deleted because they expired (INFO stats `expired_keys`).
    pub expired_keys: u64,
    /// INFO counters (commands, hits/misses, syncs).
    pub stats: Stats,
    /// WATCHed keys.
    pub watches: Watches,
    /// Connected clients.
    pub clients: Clients,
    /// Pub/sub subscriptions.
    pub pubsub: PubSub,
    /// CONFIG GET/SET parameters.
    pub settings: Settings,
    /// SLOWLOG.
    pub slowlog: super::slowlog::SlowLog,
    /// The latency monitor (LATENCY).
    pub latency: super::latency::Latency,
    /// CLIENT TRACKING state.
    pub tracking: Tracking,
    /// Clients in MONITOR mode (by id).
    pub monitors: Vec<u64>,
    /// DEBUG SET-ACTIVE-EXPIRE: false stops the active expiry cycle (tests of lazy expiry).
    pub active_expire: bool,
    /// Unix time (s) of the last save (LASTSAVE, INFO `rdb_last_save_time`): start time,
    /// since the node has no snapshots.
    pub lastsave: i64,
    /// Replication and AOF state: ids, offsets, backlog, replicas, master link, AOF buffer.
    pub repl: ReplState,
    /// Lua scripts, function libraries and their VMs.
    pub scripting: super::script::Scripting,
    /// Cluster mode's view of the cluster (`None` unless `--cluster-enabled yes`).
    pub cluster: Option<Box<super::cluster::state::ClusterState>>,
    /// `notify-keyspace-events` as flags ([`super::notify`]); 0 = off.
    pub notify_flags: u32,
    /// How keys' access clocks are stamped (LRU or LFU, from `maxmemory-policy`).
    pub(crate) access: AccessPolicy,
    /// `maxmemory` in bytes (0: no limit), from the settings.
    pub(crate) maxmemory: u64,
    /// The running script or EXEC started over `maxmemory` (Redis's `server.script_oom`).
    pub(crate) script_oom: bool,
    /// The last resident-set reading: (batch time it was read at, bytes).
    pub(crate) used_memory: (i64, u64),
    rng: u64,
}

impl Default for Store {
    fn default() -> Self {
        Store::new()
    }
}

impl Store {
    /// An empty keyspace of [`DATABASES`] databases.
    pub fn new() -> Store {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9);
        Store {
            dbs: (0..DATABASES).map(|_| Db::default()).collect(),
            now_ms: unix_ms(),
            replica: false,
            feed: Feed::default(),
            waiters: Waiters::default(),
            pause: Default::default(),
            dirty: 0,
            expired_keys: 0,
            stats: Stats::default(),
            watches: Watches::default(),
            clients: Clients::default(),
            pubsub: PubSub::default(),
            settings: Settings::default(),
            slowlog: Default::default(),
            latency: Default::default(),
            tracking: Tracking::default(),
            monitors: Vec::new(),
            active_expire: true,
            lastsave: unix_ms() / 1000,
            repl: ReplState::default(),
            scripting: Default::default(),
            cluster: None,
            notify_flags: 0,
            access: AccessPolicy::default(),
            maxmemory: 0,
            script_oom: false,
            used_memory: (0, 0),
            rng: seed | 1,
        }
    }
    /// Database `i` (callers check `i < DATABASES`; an invalid index gets db 0).
    pub fn db(&self, i: usize) -> &Db {
        &self.dbs[i.min(DATABASES - 1)]
    }
    /// Database `i`, mutably.
    pub fn db_mut(&mut self, i: usize) -> &mut Db {
        &mut self.dbs[i.min(DATABASES - 1)]
    }
    /// All databases.
    pub fn dbs(&self) -> &[Db] {
        &self.dbs
    }
    /// `key` in `db` changed (by client `writer`; 0 = the server itself): wakes clients
    /// blocked on it, breaks WATCHes on it and invalidates client-side caches of it.
    pub fn signal(&mut self, db: usize, key: &[u8], writer: u64) {
        self.waiters.signal(db, key);
        if !self.watches.is_empty() {
            let exists = self.db(db).contains(key);
            self.watches.touch(db, key, exists);
        }
        self.tracking.invalidate(key, &self.clients, writer);
    }
    /// Publishes keyspace notification `event` of `class` (a [`super::notify`] flag) on
    /// `key` in `db`, if `notify-keyspace-events` selects it.
    pub fn notify(&self, db: usize, class: u32, event: &str, key: &[u8]) {
        self.notify_from(
            super::notify::Origin {
                db,
                writer: 0,
                own: None,
            },
            class,
            event,
            key,
        );
    }
    /// [`Store::notify`] for an event caused by a client's command (see
    /// [`super::notify::Origin`]).
    pub fn notify_from(
        &self,
        origin: super::notify::Origin<'_>,
        class: u32,
        event: &str,
        key: &[u8],
    ) {
        if self.notify_flags & class != 0 {
            super::notify::publish(
                &self.pubsub,
                &self.clients,
                self.notify_flags,
                origin,
                class,
                event,
                key,
            );
        }
    }
    /// The value of `key` in `db` for a read command, counting a keyspace hit or miss,
    /// without recording an access (TYPE and OBJECT, as Redis's `LOOKUP_NOTOUCH`).
    pub fn read_counted(&mut self, db: usize, key: &[u8]) -> Option<&super::value::Value> {
        let found = self.dbs[db.min(DATABASES - 1)].get(key);
        match found {
            Some(_) => self.stats.keyspace_hits += 1,
            None => self.stats.keyspace_misses += 1,
        }
        found
    }
    /// [`Store::read_counted`] recording the access in the key's clock (every other read).
    pub fn read_touched(&mut self, db: usize, key: &[u8]) -> Option<&super::value::Value> {
        let touch = self.touch();
        let found = self.dbs[db.min(DATABASES - 1)].get_touched(key, &touch);
        match found {
            Some(_) => self.stats.keyspace_hits += 1,
            None => self.stats.keyspace_misses += 1,
        }
        found.map(|v| &*v)
    }
    /// An access at the current command's time, for a key's clock. The random draw that
    /// decides an LFU increment is only made under an LFU policy.
    pub(crate) fn touch(&mut self) -> Touch {
        let random = if self.access.lfu { self.random() } else { 0 };
        Touch::new(self.access, self.now_ms, random)
    }
    /// Before `db` is emptied (FLUSHDB/FLUSHALL) or swapped with `other` (SWAPDB): breaks
    /// the WATCHes of its keys that exist in it (or in `other`, whose keys take their place).
    pub fn touch_watched_db(&mut self, db: usize, other: Option<usize>) {
        if self.watches.is_empty() {
            return;
        }
        let here = &self.dbs[db.min(DATABASES - 1)];
        let there = other.map(|o| &self.dbs[o.min(DATABASES - 1)]);
        self.watches.touch_db(db, |k| {
            here.contains(k) || there.is_some_and(|t| t.contains(k))
        });
    }
    /// Exchanges two databases (SWAPDB); indexes are checked by the caller.
    pub fn swap_dbs(&mut self, a: usize, b: usize) {
        self.dbs.swap(a.min(DATABASES - 1), b.min(DATABASES - 1));
    }
    /// Refreshes the clock commands see; called once per batch.
    pub fn tick(&mut self) {
        self.now_ms = unix_ms();
    }
    /// A pseudo-random number (xorshift64*): good enough for sampling and random picks, and
    /// cheap enough to call under the lock.
    pub fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// True if `key` in `db` has an expiry time that has passed.
    pub fn is_expired(&self, db: usize, key: &[u8]) -> bool {
        self.db(db).expire_at(key).is_some_and(|t| t <= self.now_ms)
    }

    /// Lazy expiry: true if `key` must be treated as missing. On a master an expired key is
    /// deleted here and a `DEL` goes to the feed; on a replica it is only hidden. Commands
    /// arriving from our master (`from_master`) see the key until the master deletes it.
    pub fn expire_if_needed(&mut self, db: usize, key: &[u8], from_master: bool) -> bool {
        if !self.is_expired(db, key) || from_master {
            return false;
        }
        // A replica waits for its master's DEL; under CLIENT PAUSE the deletion waits for
        // the pause to end (nothing may reach replicas or the AOF meanwhile).
        if !self.replica && !self.pause.writes_paused(self.now_ms) {
            self.delete_expired(db, key);
        }
        true
    }

    /// Puts CONFIG SET's values where the code that uses them reads them.
    pub fn apply_settings(&mut self) {
        let limits = *self.settings.output_limits();
        self.clients.limits = limits;
        self.repl.output_limit = limits.replica;
        let int = |s: &Settings, name| s.get(name).and_then(|v| v.parse::<i64>().ok());
        if let Some(v) = int(&self.settings, "slowlog-log-slower-than") {
            self.slowlog.slower_than = v;
        }
        if let Some(v) = int(&self.settings, "slowlog-max-len") {
            self.slowlog.max_len = usize::try_from(v).unwrap_or(0);
            self.slowlog.trim();
        }
        let count = |s: &Settings, name| int(s, name).and_then(|v| usize::try_from(v).ok());
        self.repl.min_replicas = (
            count(&self.settings, "min-replicas-to-write").unwrap_or(0),
            count(&self.settings, "min-replicas-max-lag").unwrap_or(0),
        );
        self.notify_flags = self.settings.notify_flags();
        if let Some(v) = int(&self.settings, "latency-monitor-threshold") {
            self.latency.threshold_ms = u64::try_from(v).unwrap_or(0);
        }
        if let Some(c) = self.cluster.as_mut() {
            c.full_coverage = self.settings.get("cluster-require-full-coverage") != Some("no");
            c.update_state();
        }
        self.maxmemory = int(&self.settings, "maxmemory")
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(0);
        let defaults = AccessPolicy::default();
        let uint = |name| int(&self.settings, name).and_then(|v| u32::try_from(v).ok());
        self.access = AccessPolicy {
            lfu: self
                .settings
                .get("maxmemory-policy")
                .is_some_and(|p| p.ends_with("-lfu")),
            log_factor: uint("lfu-log-factor").unwrap_or(defaults.log_factor),
            decay_minutes: uint("lfu-decay-time").unwrap_or(defaults.decay_minutes),
        };
    }

    /// Hands what the feed recorded to replication and the AOF. Called after every command
    /// and every active expiry cycle, so consumers see writes in execution order.
    pub fn publish_feed(&mut self) {
        // The feed is only switched on with a consumer (the backlog or the AOF); without one
        // (unit tests that switch it on to inspect it) the bytes stay for the caller to take.
        if self.feed.enabled && self.repl.has_consumer() {
            let bytes = self.feed.take();
            self.repl.publish(&bytes);
        }
    }

    /// Deletes an expired key and propagates the deletion.
    fn delete_expired(&mut self, db: usize, key: &[u8]) {
        if self.db_mut(db).remove(key).is_some() {
            self.expired_keys += 1;
            self.feed.push(db, &[b"DEL", key]);
            self.notify(db, super::notify::EXPIRED, "expired", key);
            self.signal(db, key, 0);
        }
    }

    /// One active expiry cycle, Redis style: per database, sample [`SAMPLE`] keys that have a
    /// TTL, delete the expired ones, and go again while more than [`REPEAT_PERCENT`]% of the
    /// sample had expired, within a time budget. Does nothing on a replica. Returns the
    /// number of keys deleted.
    pub fn active_expire_cycle(&mut self) -> usize {
        if self.replica || !self.active_expire || self.pause.writes_paused(unix_ms()) {
            return 0;
        }
        self.tick();
        let started = Instant::now();
        let mut deleted = 0;
        for db in 0..DATABASES {
            loop {
                let volatile = self.db(db).volatile_len();
                if volatile == 0 {
                    break;
                }
                let mut expired: Vec<Bytes> = Vec::new();
                let n = volatile.min(SAMPLE);
                for _ in 0..n {
                    let i = (self.random() % volatile as u64) as usize;
                    if let Some((k, t)) = self.db(db).volatile_at(i) {
                        if t <= self.now_ms && !expired.iter().any(|e| e[..] == *k) {
                            expired.push(Bytes::copy_from_slice(k));
                        }
                    }
                }
                for k in &expired {
                    self.delete_expired(db, k);
                }
                deleted += expired.len();
                if expired.len() * 100 <= n * REPEAT_PERCENT
                    || started.elapsed().as_micros() > CYCLE_BUDGET_US
                {
                    break;
                }
            }
        }
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.latency.add("expire-cycle", ms, self.now_ms / 1000);
        deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::value::Value;

    /// Stores `key`, expiring `ttl` ms from the store's clock (negative: already expired).
    fn put(s: &mut Store, key: &str, ttl: Option<i64>) {
        let k = Bytes::copy_from_slice(key.as_bytes());
        s.db_mut(0).insert(&k, Value::Str(Bytes::new()), false);
        if let Some(t) = ttl {
            let at = s.now_ms + t;
            s.db_mut(0).set_expire(key.as_bytes(), at);
        }
    }

    #[test]
    fn lazy_expiry_deletes_on_master_and_hides_on_replica() {
        let mut s = Store::new();
        s.feed.enabled = true;
        put(&mut s, "gone", Some(-1));
        put(&mut s, "kept", Some(100_000));
        assert!(!s.expire_if_needed(0, b"kept", false));
        assert!(!s.expire_if_needed(0, b"gone", true));
        s.replica = true;
        assert!(s.expire_if_needed(0, b"gone", false));
        assert!(s.db(0).contains(b"gone"));
        s.replica = false;
        assert!(s.expire_if_needed(0, b"gone", false));
        assert!(!s.db(0).contains(b"gone"));
        assert_eq!(s.expired_keys, 1);
        assert!(s
            .feed
            .take()
            .ends_with(b"*2\r\n$3\r\nDEL\r\n$4\r\ngone\r\n"));
    }

    #[test]
    fn active_expiry_removes_most_expired_keys() {
        let mut s = Store::new();
        for i in 0..1000 {
            put(&mut s, &format!("k{i}"), Some(-1));
        }
        put(&mut s, "live", Some(100_000));
        put(&mut s, "plain", None);
        let mut total = 0;
        for _ in 0..100 {
            total += s.active_expire_cycle();
        }
        assert!(total >= 990, "only {total} expired");
        assert!(s.db(0).contains(b"live") && s.db(0).contains(b"plain"));
    }
}
