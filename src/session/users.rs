//! Client authentication of a pool beyond its one password: `auth = "users"` (users defined
//! in the config, each with an access level and key patterns, checked by the proxy on every
//! command) and `auth = "passthrough"` (the master checks the credentials; see
//! [`passthrough`](super::passthrough)).
//!
//! The pool decides once, at start, which of these it does ([`PoolAuth::mode`]); a pool
//! without users pays one comparison of that mode per request and nothing else.
//!
//! Users can change under running clients (a reload): the table is swapped whole with a new
//! generation number. A logged-in session keeps its [`User`]; on its next command it sees
//! the generation moved and takes its user's new rights, or, if its user was removed or its
//! password changed, is told so and disconnected. The reload itself also disconnects the
//! idle clients of such users at once (see [`PoolAuth::set_users`]), as Redis's
//! `ACL DELUSER` does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use metrics::{counter, Counter};

use super::{error_bytes, Session};
use crate::command::{self, flags, CommandInfo};
use crate::config::{sha256, Access, ClientAuth, Sha256Digest, UserConfig};
use crate::resp::Request;
use crate::telemetry;

/// Redis's refusal of unknown users and wrong passwords (the same for both, so that a
/// client cannot tell which users exist).
pub(super) const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Redis's refusal of a key outside the user's patterns.
const NOPERM_KEYS: &str =
    "NOPERM this user has no permissions to access one of the keys used as arguments";

/// At most one log line about failed authentications per pool in this time.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// One configured user, as sessions hold it.
pub(crate) struct User {
    pub(crate) name: Arc<String>,
    digest: Sha256Digest,
    access: Access,
    /// Glob patterns (bytes); empty: every key.
    keys: Vec<Vec<u8>>,
    /// The table generation this user belongs to.
    generation: u64,
}

/// Why an authentication or a command was refused (the `reason` label of
/// `sluice_auth_failures_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Unknown user or wrong password.
    WrongPass,
    /// A command the user's access level does not allow.
    NopermCommand,
    /// A key outside the user's patterns.
    NopermKey,
}

/// A pool's client authentication: its mode, its users, and the counters of refusals.
pub(crate) struct PoolAuth {
    /// Decided once from the config.
    pub(crate) mode: ClientAuth,
    /// `auth = "passthrough"`: the logged-in users' node connections.
    pub(crate) links: crate::backend::per_user::UserLinks,
    /// `auth_failure_delay`: failed logins by address.
    pub(crate) delay: super::auth_delay::FailureDelay,
    /// Login attempts held by `auth_failure_delay`.
    delayed: Counter,
    pool: String,
    users: ArcSwap<Vec<Arc<User>>>,
    generation: AtomicU64,
    failures: [Counter; 3],
    /// Milliseconds since `epoch` of the last log line, and refusals not logged since.
    last_log: AtomicU64,
    unlogged: AtomicU64,
    epoch: Instant,
}

impl PoolAuth {
    /// The authentication of the pool `cfg` describes.
    pub(crate) fn new(cfg: &crate::config::PoolConfig) -> PoolAuth {
        let (pool, mode, users) = (cfg.name.as_str(), cfg.auth, &cfg.users);
        let failure = |reason: &'static str| counter!(telemetry::AUTH_FAILURES, "pool" => pool.to_string(), "reason" => reason);
        PoolAuth {
            mode,
            links: crate::backend::per_user::UserLinks::new(cfg.passthrough_idle_timeout),
            delay: super::auth_delay::FailureDelay::new(cfg.auth_failure_delay),
            delayed: counter!(telemetry::AUTH_DELAYED, "pool" => pool.to_string()),
            pool: pool.to_string(),
            users: ArcSwap::from_pointee(build(users, 0)),
            generation: AtomicU64::new(0),
            failures: [
                failure("wrongpass"),
                failure("noperm_command"),
                failure("noperm_key"),
            ],
            last_log: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// True when every command is checked against the logged-in user's rights.
    pub(crate) fn checks_commands(&self) -> bool {
        self.mode == ClientAuth::Users
    }

    /// Replaces the users (a reload). Returns the names whose clients must go: users removed
    /// or whose password changed (their clients logged in with credentials no longer valid).
    pub(crate) fn set_users(&self, users: &[UserConfig]) -> Vec<Arc<String>> {
        let old = self.users.load_full();
        let generation = self.generation.load(Ordering::Relaxed) + 1;
        let new = build(users, generation);
        let gone = old
            .iter()
            .filter(|o| !new.iter().any(|n| n.name == o.name && n.digest == o.digest))
            .map(|o| o.name.clone())
            .collect();
        self.users.store(Arc::new(new));
        // After the table: a session that sees the new generation finds the new users.
        self.generation.store(generation, Ordering::Release);
        gone
    }

    /// Whether clients may log in as `name` (CLIENT KILL USER): `default` with a password,
    /// a configured user, any name in passthrough pools (the nodes know their users).
    pub(crate) fn knows_user(&self, name: &[u8]) -> bool {
        match self.mode {
            ClientAuth::Password => name == b"default",
            ClientAuth::Users => self.users.load().iter().any(|u| u.name.as_bytes() == name),
            ClientAuth::Passthrough => true,
        }
    }

    /// The user `name` if `pass` is its password.
    fn login(&self, name: &[u8], pass: &[u8]) -> Option<Arc<User>> {
        let digest = sha256(pass);
        let users = self.users.load();
        let user = users.iter().find(|u| u.name.as_bytes() == name)?;
        // The digests are compared without an early exit (see `constant_time_eq`).
        super::local::constant_time_eq(&user.digest.0, &digest.0).then(|| user.clone())
    }

    /// Counts a refusal and logs it, at most one line per [`LOG_EVERY`] (a client guessing
    /// passwords must not flood the log), with the number not logged since.
    pub(crate) fn failed(&self, why: Failure, peer: std::net::SocketAddr, user: &[u8]) {
        self.failures[why as usize].increment(1);
        if why == Failure::WrongPass {
            self.delay.failed(peer.ip());
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = self.last_log.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= LOG_EVERY.as_millis() as u64;
        if !due
            || self
                .last_log
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let unlogged = self.unlogged.swap(0, Ordering::Relaxed);
        tracing::warn!(
            pool = %self.pool,
            client = %peer,
            user = %String::from_utf8_lossy(user),
            reason = ?why,
            not_logged_since_last = unlogged,
            "client authentication or permission refused"
        );
    }
}

impl PoolAuth {
    /// A successful login from `peer` (forgets its failed ones, see `auth_delay`).
    pub(crate) fn succeeded(&self, peer: std::net::SocketAddr) {
        self.delay.succeeded(peer.ip());
    }

    /// Waits for the turn of a login attempt from `peer` when its address failed too often
    /// (`auth_failure_delay`); counted and logged (at most every [`LOG_EVERY`], with the
    /// other refusals' log line budget).
    pub(crate) async fn hold(&self, peer: std::net::SocketAddr) {
        let Some(at) = self.delay.turn(peer.ip()) else {
            return;
        };
        self.delayed.increment(1);
        tracing::debug!(pool = %self.pool, client = %peer, "login attempt delayed after repeated failures");
        tokio::time::sleep_until(at.into()).await;
    }
}

/// A reload's new users for `pool`: applied to its connected clients from their next
/// command; the clients of users removed, or whose password changed, are disconnected at
/// once (as `ACL DELUSER` disconnects a deleted user's clients). Returns how many were.
pub(crate) fn reload_users(pool: &crate::pool::Pool, users: &[UserConfig]) -> usize {
    let gone = pool.auth.set_users(users);
    if gone.is_empty() {
        return 0;
    }
    let mut dropped = 0;
    for entry in pool.registry.snapshot() {
        let user = entry.state().user.clone();
        if user.is_some_and(|u| gone.contains(&u)) && pool.registry.kill(entry.id) {
            dropped += 1;
        }
    }
    dropped
}

fn build(users: &[UserConfig], generation: u64) -> Vec<Arc<User>> {
    users
        .iter()
        .map(|u| {
            Arc::new(User {
                name: Arc::new(u.name.clone()),
                digest: u.password_sha256,
                access: u.access,
                keys: u.keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
                generation,
            })
        })
        .collect()
}

/// The access level a command needs. `None` (an unknown command) needs read-write: it may be
/// a module's write.
pub(crate) fn needed(info: Option<&CommandInfo>) -> Access {
    let Some(info) = info else {
        return Access::ReadWrite;
    };
    if info.has(flags::ADMIN) {
        return Access::Admin;
    }
    if info.flags & (flags::WRITE | flags::MAY_REPLICATE) != 0 {
        return Access::ReadWrite;
    }
    // Not flagged `write` in Redis 7.0 but able to change data or stop someone else's work:
    // scripts (which may write), publishing, the script cache.
    match info.name {
        "eval" | "evalsha" | "fcall" | "publish" | "spublish" | "script|load" | "script|flush"
        | "script|kill" | "script|debug" | "function|kill" => Access::ReadWrite,
        _ => Access::Read,
    }
}

/// Ranks the levels: each allows what the ones below it allow.
fn rank(access: Access) -> u8 {
    match access {
        Access::Read => 0,
        Access::ReadWrite => 1,
        Access::Admin => 2,
    }
}

impl User {
    /// Why this user may not run `req`, if it may not.
    fn refusal(&self, req: &Request, info: Option<&'static CommandInfo>) -> Option<Failure> {
        if rank(needed(info)) > rank(self.access) {
            return Some(Failure::NopermCommand);
        }
        let (Some(info), false) = (info, self.keys.is_empty()) else {
            return None;
        };
        // A write that reaches every key (FLUSHALL, FLUSHDB, SWAPDB) is not for a user held
        // to some keys, although Redis's own ACL would let it pass.
        if info.has(flags::WRITE) && info.first_key == 0 && !info.has(flags::MOVABLEKEYS) {
            return Some(Failure::NopermCommand);
        }
        let allowed = |key: &[u8]| self.keys.iter().any(|p| crate::node::glob::matches(p, key));
        if command::keys(req, info).all(allowed) {
            None
        } else {
            Some(Failure::NopermKey)
        }
    }
}

/// Redis's NOPERM text for a refused command (`'config|get'` for a subcommand).
fn noperm_command(req: &Request, info: Option<&CommandInfo>) -> String {
    let name = info.map_or_else(
        || String::from_utf8_lossy(req.arg(0)).to_lowercase(),
        |i| i.name.to_string(),
    );
    format!("NOPERM this user has no permissions to run the '{name}' command")
}

impl Session {
    /// `auth = "users"`: logs in as `user` if `pass` is its password.
    pub(super) fn login_user(&mut self, user: &[u8], pass: &[u8]) -> Result<(), Bytes> {
        match self.pool.auth.login(user, pass) {
            Some(u) => {
                self.pool.auth.succeeded(self.entry.addr);
                self.entry.state().user = Some(u.name.clone());
                self.login = Some(Box::new(super::Login::User(u)));
                self.authed = true;
                Ok(())
            }
            None => {
                self.pool
                    .auth
                    .failed(Failure::WrongPass, self.entry.addr, user);
                Err(error_bytes(WRONGPASS))
            }
        }
    }

    /// `auth = "users"`: the refusal of `req` by the logged-in user's rights, if any (the
    /// caller has checked that the pool has users). A client whose user a reload removed
    /// (or whose password it changed) is refused and disconnected.
    pub(super) fn user_refusal(
        &mut self,
        req: &Request,
        info: Option<&'static CommandInfo>,
    ) -> Option<String> {
        let Some(super::Login::User(user)) = self.login.as_deref_mut() else {
            return None;
        };
        let auth = &self.pool.auth;
        if user.generation != auth.generation.load(Ordering::Acquire) {
            let users = auth.users.load();
            match users
                .iter()
                .find(|u| u.name == user.name && u.digest == user.digest)
            {
                Some(now) => *user = now.clone(),
                None => {
                    self.closing = true;
                    return Some(format!(
                        "ERR sluice: user '{}' was removed or its password changed by a config \
                         reload; log in again",
                        user.name
                    ));
                }
            }
        }
        let failure = user.refusal(req, info)?;
        let name = user.name.clone();
        self.pool
            .auth
            .failed(failure, self.entry.addr, name.as_bytes());
        Some(match failure {
            Failure::NopermKey => NOPERM_KEYS.to_string(),
            _ => noperm_command(req, info),
        })
    }

    /// `auth = "users"` (the caller checked [`PoolAuth::checks_commands`]): the reply to a
    /// request the logged-in user may not run (a refusal inside MULTI aborts the transaction
    /// at EXEC, as Redis does), or to `ACL WHOAMI`; `None` lets it run.
    pub(super) fn users_gate(
        &mut self,
        req: &Request,
        info: Option<&'static CommandInfo>,
    ) -> Option<Bytes> {
        if !self.tx.is_open() {
            if let Some(reply) = self.whoami(info) {
                self.pool.metrics.local.increment(1);
                return Some(reply);
            }
        }
        let refusal = self.user_refusal(req, info)?;
        self.pool.metrics.local.increment(1);
        match &mut self.tx {
            super::tx_state::Tx::Pinned(p) if p.in_multi => p.poisoned = true,
            super::tx_state::Tx::Deferred(d) => d.poisoned = true,
            _ => {}
        }
        Some(error_bytes(&refusal))
    }

    /// As [`Session::users_gate`] for any pool: a no-op unless the pool has users.
    pub(super) fn users_gate_any(
        &mut self,
        req: &Request,
        info: Option<&'static CommandInfo>,
    ) -> Option<Bytes> {
        if self.pool.auth.checks_commands() {
            self.users_gate(req, info)
        } else {
            None
        }
    }

    /// `ACL WHOAMI` of a logged-in user (users mode): the proxy's user, not the node's.
    fn whoami(&self, info: Option<&CommandInfo>) -> Option<Bytes> {
        if info.is_none_or(|i| i.name != "acl|whoami") {
            return None;
        }
        let Some(super::Login::User(user)) = self.login.as_deref() else {
            return None;
        };
        let mut out = bytes::BytesMut::new();
        crate::resp::encode::bulk(&mut out, user.name.as_bytes());
        Some(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::lookup_name;

    fn needs(name: &str) -> Access {
        needed(lookup_name(name.as_bytes()))
    }

    #[test]
    fn access_levels_follow_the_command_flags() {
        for read in [
            "get",
            "mget",
            "keys",
            "scan",
            "info",
            "ping",
            "select",
            "multi",
            "exec",
            "watch",
            "subscribe",
            "eval_ro",
            "client|setname",
            "acl|whoami",
            "xread",
        ] {
            assert_eq!(needs(read), Access::Read, "{read}");
        }
        for write in [
            "set",
            "del",
            "flushall",
            "eval",
            "evalsha",
            "fcall",
            "publish",
            "script|load",
            "xreadgroup",
            "blpop",
            "function|load",
        ] {
            assert_eq!(needs(write), Access::ReadWrite, "{write}");
        }
        for admin in [
            "client|list",
            "client|kill",
            "client|pause",
            "client|unblock",
            "monitor",
            "config|get",
            "acl|setuser",
            "debug",
        ] {
            assert_eq!(needs(admin), Access::Admin, "{admin}");
        }
        assert_eq!(needed(None), Access::ReadWrite);
    }

    fn user(access: Access, keys: &[&str]) -> User {
        User {
            name: Arc::new("u".to_string()),
            digest: sha256(b"p"),
            access,
            keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
            generation: 0,
        }
    }

    fn req(args: &[&str]) -> Request {
        let mut raw = bytes::BytesMut::new();
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        crate::resp::encode::command(&mut raw, &args);
        let limits = crate::resp::Limits::default();
        crate::resp::decode_request(&mut raw, &limits)
            .ok()
            .flatten()
            .expect("request")
    }

    fn check(u: &User, args: &[&str]) -> Option<Failure> {
        let r = req(args);
        u.refusal(&r, command::lookup(&r))
    }

    #[test]
    fn every_key_of_a_command_must_match_a_pattern() {
        let u = user(Access::ReadWrite, &["app:*", "session:?"]);
        assert_eq!(check(&u, &["SET", "app:1", "v"]), None);
        assert_eq!(check(&u, &["MGET", "app:1", "session:a"]), None);
        assert_eq!(
            check(&u, &["MGET", "app:1", "other"]),
            Some(Failure::NopermKey)
        );
        assert_eq!(
            check(&u, &["EVAL", "return 1", "2", "app:1", "x"]),
            Some(Failure::NopermKey)
        );
        assert_eq!(check(&u, &["EVAL", "return 1", "1", "app:1", "x"]), None);
        assert_eq!(check(&u, &["KEYS", "*"]), None);
        assert_eq!(check(&u, &["FLUSHALL"]), Some(Failure::NopermCommand));
        let all = user(Access::ReadWrite, &[]);
        assert_eq!(check(&all, &["FLUSHALL"]), None);
        let ro = user(Access::Read, &["app:*"]);
        assert_eq!(
            check(&ro, &["SET", "app:1", "v"]),
            Some(Failure::NopermCommand)
        );
        assert_eq!(check(&ro, &["GET", "other"]), Some(Failure::NopermKey));
        assert_eq!(
            check(&ro, &["CLIENT", "LIST"]),
            Some(Failure::NopermCommand)
        );
    }

    #[test]
    fn a_reload_names_removed_users_and_changed_passwords() {
        let cfg = |name: &str, pass: &str| UserConfig {
            name: name.into(),
            password_sha256: sha256(pass.as_bytes()),
            access: Access::Read,
            keys: Vec::new(),
        };
        let text = "[[pools]]\nname = \"t\"\nlisten = \"127.0.0.1:0\"\nmaster = \"127.0.0.1:1\"\n\
                    auth = \"users\"\n[[pools.users]]\nname = \"x\"\npassword = \"x\"\naccess = \"read\"\n";
        let mut pool = crate::config::Config::parse(text, std::path::Path::new("t.toml"))
            .expect("config")
            .pools
            .remove(0);
        pool.users = vec![cfg("a", "1"), cfg("b", "1"), cfg("c", "1")];
        let auth = PoolAuth::new(&pool);
        assert!(auth.login(b"a", b"1").is_some());
        assert!(auth.login(b"a", b"2").is_none());
        assert!(auth.login(b"zz", b"1").is_none());
        let gone = auth.set_users(&[cfg("a", "1"), cfg("b", "2")]);
        let gone: Vec<&str> = gone.iter().map(|n| n.as_str()).collect();
        assert_eq!(gone, ["b", "c"]);
        assert!(auth.login(b"b", b"2").is_some());
    }
}
