//! Per-connection state that commands read and change (SELECT, HELLO, AUTH, QUIT, ...).

use bytes::Bytes;
use indexmap::IndexSet;

use crate::resp::{Protocol, Request};

/// One client's session state, owned by its connection task and lent to every command.
#[derive(Debug, Default)]
pub struct ClientState {
    /// CLIENT ID: unique per process, increasing.
    pub id: u64,
    /// Selected database.
    pub db: usize,
    /// Negotiated protocol (HELLO).
    pub proto: Protocol,
    /// CLIENT SETNAME.
    pub name: Option<Bytes>,
    /// Passed AUTH (or no password is configured).
    pub authed: bool,
    /// Close the connection once the replies so far are written (QUIT, CLIENT KILL).
    pub close: bool,
    /// This is the link to our master: its writes are applied even on a replica, and expired
    /// keys stay visible to it until the master deletes them.
    pub from_master: bool,
    /// Subscribed channels (SUBSCRIBE).
    pub channels: IndexSet<Bytes>,
    /// Subscribed patterns (PSUBSCRIBE).
    pub patterns: IndexSet<Bytes>,
    /// Subscribed shard channels (SSUBSCRIBE).
    pub shard_channels: IndexSet<Bytes>,
    /// Commands queued since MULTI; `None` outside a transaction.
    pub multi: Option<Vec<Request>>,
    /// A command was refused while queueing: EXEC answers EXECABORT.
    pub multi_error: bool,
    /// WATCHed keys: (db, key, whether it had already expired when watched).
    pub watched: Vec<(usize, Bytes, bool)>,
    /// Name of the last command run (CLIENT LIST `cmd=`).
    pub last_cmd: &'static str,
    /// The last command looks its keys up as Redis's `lookupKeyRead` does (a missing key
    /// is a `keymiss` event): set with `last_cmd` by the dispatcher, so that key lookups
    /// below it need not consult the command table.
    pub last_cmd_reads: bool,
    /// The last command replies before it notifies (`Flags::REPLY_FIRST`): the client's
    /// own keyspace events follow its reply. Set with `last_cmd` by the dispatcher.
    pub last_cmd_reply_first: bool,
    /// CLIENT TRACKING on: keys read are remembered for invalidation pushes.
    pub tracking: bool,
    /// CLIENT REPLY mode: which replies the connection actually sends.
    pub reply_mode: ReplyMode,
    /// The port this client said it listens on (`REPLCONF listening-port`), if a replica.
    pub repl_port: u16,
    /// Set by PSYNC/SYNC: after the current replies are written, the connection stops
    /// serving commands and becomes a replication stream (`repl::master::serve_replica`).
    pub handoff: bool,
    /// This is a script's client (`redis.call`): SORT of a set then sorts its output.
    pub in_script: bool,
    /// The error the running command is about to reply was already counted in the error
    /// statistics (a script failing with a `redis.call` error; Redis's
    /// `ERR_REPLY_FLAG_NO_STATS_UPDATE`). Taken by the dispatcher.
    pub error_counted: bool,
    /// WAIT's deadline while it is blocked (re-runs must not restart the timeout).
    pub wait_until: Option<std::time::Instant>,
    /// Cluster mode: ASKING was sent; the next command may touch an importing slot.
    pub asking: bool,
    /// Cluster mode: READONLY was sent; a replica serves reads of its master's slots.
    pub cluster_readonly: bool,
}

/// CLIENT REPLY ON / OFF / SKIP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplyMode {
    /// Every reply is sent.
    #[default]
    On,
    /// No reply is sent until CLIENT REPLY ON.
    Off,
    /// The reply to the next command is dropped (set by CLIENT REPLY SKIP itself, which
    /// also gets none).
    SkipNext,
    /// Dropping this command's reply, then back to On.
    Skipping,
}

impl ClientState {
    /// Number of subscriptions of every kind (non-zero puts a RESP2 client in pub/sub mode).
    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shard_channels.len()
    }
}
