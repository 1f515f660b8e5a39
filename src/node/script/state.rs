//! What `redis.call` does during a run: the run's state (the caller's context, the script's
//! own client, read-only and replication switches) and the checks Redis makes before a
//! script's command runs. `run.rs` runs scripts; `rawcall.rs` and `run.rs`'s mlua
//! functions call into this.

use super::busy::Busy;
use crate::node::client::ClientState;
use crate::node::cmd::{self, Ctx};
use crate::node::reply::Reply;
use crate::resp::request::RequestBuilder;
use crate::resp::{Protocol, Request};

/// A `redis.call` result the C function left for the pending function to convert.
pub(super) enum Pending {
    /// Bad arguments: raise this message.
    Args(&'static str),
    /// Refused before running: raise this message (not counted again in errorstats).
    Failed(String),
    /// A reply of a shape the C function does not push itself.
    Reply(Reply),
}

/// The state `redis.call` works with during a run.
pub(super) struct RunState<'r, 'a> {
    pub(super) ctx: &'r mut Ctx<'a>,
    /// The script's own client: its db (SELECT inside a script does not change the
    /// caller's) and protocol (`redis.setresp`).
    pub(super) client: ClientState,
    pub(super) read_only: bool,
    /// `allow-oom`: `redis.call` skips the `maxmemory` check.
    pub(super) allow_oom: bool,
    /// A write command ran: a script that wrote cannot be refused halfway for memory.
    pub(super) wrote: bool,
    /// Propagate writes (`redis.set_repl(redis.REPL_NONE)` turns it off).
    pub(super) replicate: bool,
    /// A MULTI is open on the feed for this run's writes.
    pub(super) exec_open: bool,
    pub(super) busy: std::sync::Arc<Busy>,
    /// A command other than a read ran (see `Scripting::inline`); shared with the hook.
    pub(super) effects: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The inline run was stopped: every further `redis.call` is refused.
    pub(super) aborted: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// What the C `redis.call` left for the pending function (see `rawcall.rs`).
    pub(super) pending: Option<Pending>,
    /// Where `redis.call` encodes its command, reused from one call to the next.
    pub(super) request: RequestBuilder,
    /// When the previous `redis.call` ended (or the run started): the next one's start for
    /// commandstats, so each call costs one clock read instead of two.
    pub(super) mark: std::time::Instant,
}

const NOT_ALLOWED: &str = "This Redis command is not allowed from script";

/// Commands Redis refuses inside scripts (`noscript`); a `match`, not a list scan: it
/// runs on every `redis.call`.
fn noscript(name: &str) -> bool {
    matches!(
        name,
        "cluster"
            | "auth"
            | "hello"
            | "quit"
            | "reset"
            | "wait"
            | "blmove"
            | "blpop"
            | "brpop"
            | "brpoplpush"
            | "bzpopmax"
            | "bzpopmin"
            | "psubscribe"
            | "punsubscribe"
            | "ssubscribe"
            | "subscribe"
            | "sunsubscribe"
            | "unsubscribe"
            | "eval"
            | "evalsha"
            | "evalsha_ro"
            | "eval_ro"
            | "fcall"
            | "fcall_ro"
            | "bgrewriteaof"
            | "bgsave"
            | "debug"
            | "failover"
            | "monitor"
            | "psync"
            | "replconf"
            | "replicaof"
            | "role"
            | "save"
            | "shutdown"
            | "slaveof"
            | "sync"
            | "discard"
            | "exec"
            | "multi"
            | "unwatch"
            | "watch"
            | "client"
            | "config"
            | "function"
            | "script"
            | "acl"
            | "latency"
            | "module"
    )
}

impl RunState<'_, '_> {
    /// Runs one `redis.call`: Redis's checks, then the command through the dispatcher.
    pub(super) fn call(&mut self, req: &Request) -> Result<Reply, String> {
        use std::sync::atomic::Ordering;
        if self.aborted.load(Ordering::Relaxed) {
            return Err("Script stopped to run off the event loop".into());
        }
        let Some((idx, cmd)) = cmd::lookup_indexed(req.arg(0)) else {
            // Commands the node lacks but Redis refuses in scripts get Redis's refusal.
            let name = String::from_utf8_lossy(req.arg(0)).to_ascii_lowercase();
            let text = if noscript(&name) {
                NOT_ALLOWED
            } else {
                "Unknown Redis command called from script"
            };
            return Err(self.rejected(None, text.into()));
        };
        if let Some(text) = self.refusal(cmd, req.len()) {
            return Err(self.rejected(Some(idx), text));
        }
        if cmd.is_write() {
            self.busy.wrote();
            self.wrote = true;
        }
        if !cmd.flags.has(crate::node::cmd::Flags::READONLY) {
            self.effects.store(true, Ordering::Relaxed);
        }
        let store = &mut *self.ctx.store;
        let feed_enabled = store.feed.enabled;
        if !self.replicate {
            store.feed.enabled = false;
        }
        let mut child = Ctx::new_at(store, &mut self.client, self.ctx.shared, false, self.mark);
        child.begin_exec();
        child.set_exec_open(self.exec_open);
        let reply = cmd::execute_found(&mut child, req, idx, cmd);
        self.mark = child.last_mark();
        if self.replicate {
            self.exec_open = child.exec_open();
        }
        drop(child);
        self.ctx.store.feed.enabled = feed_enabled;
        Ok(reply)
    }

    /// Why Redis's `scriptCall` would refuse `cmd` before running it, if it would.
    fn refusal(&self, cmd: &cmd::Command, argc: usize) -> Option<String> {
        if noscript(cmd.name) {
            return Some(NOT_ALLOWED.into());
        }
        if !cmd.arity_ok(argc) {
            return Some("Wrong number of args calling Redis command from script".into());
        }
        // PUBLISH, SPUBLISH and PFCOUNT are flagged may-replicate in Redis: refused from
        // read-only scripts like writes (what CLIENT PAUSE WRITE relies on).
        let may_replicate = matches!(cmd.name, "publish" | "spublish" | "pfcount");
        if self.read_only && (cmd.is_write() || may_replicate) {
            return Some("Write commands are not allowed from read-only scripts.".into());
        }
        let from_master = self.ctx.client.from_master;
        if cmd.is_write() {
            if self.ctx.store.replica && !from_master {
                return Some("-READONLY You can't write against a read only replica.".into());
            }
            if !from_master && !self.ctx.store.replica && self.ctx.store.repl.too_few_replicas() {
                return Some("-NOREPLICAS Not enough good replicas to write.".into());
            }
        }
        let store = &*self.ctx.store;
        if cmd::oom::script_call_refused(store, cmd, from_master, self.allow_oom, self.wrote) {
            return Some(format!("-{}", cmd::oom::OOM_ERR));
        }
        None
    }

    /// Counts a refused `redis.call` as Redis's `afterErrorReply` and
    /// `incrCommandStatsOnError` do (the script's own error is then not counted again).
    fn rejected(&mut self, idx: Option<usize>, text: String) -> String {
        let stats = &mut self.ctx.store.stats;
        match text.strip_prefix('-') {
            Some(coded) => stats.error(coded),
            None => stats.error("ERR"),
        }
        if let Some(i) = idx {
            stats.cmd(i).rejected += 1;
        }
        text
    }

    pub(super) fn resp3(&self) -> bool {
        self.client.proto == Protocol::Resp3
    }
}
