//! Node mode: a Redis-compatible data server (`sluice node`), so the proxy's backends can be
//! run from the same binary.
//!
//! # Architecture
//!
//! ```text
//! accept (server.rs) ─► one task per client (conn.rs)
//!   read all the socket has ─► decode every complete request (crate::resp, the proxy's codec)
//!   ─► lock the Store once ─► cmd::execute each request (cmd/) ─► encode each Reply (reply.rs)
//!   ─► unlock ─► write all replies with one flush
//! ```
//!
//! * **One lock, held per batch.** All data lives in one [`store::Store`] behind a
//!   `std::sync::Mutex`, taken once per batch of pipelined requests and never across an
//!   `.await`. Commands therefore run atomically, one after the other, exactly as in
//!   single-threaded Redis, and MULTI/EXEC and blocking commands need no extra locking.
//! * **Keyspace.** [`store::Store`] holds 16 [`db::Db`]s (key → [`value::Value`], key →
//!   expiry in unix ms), the clock commands see, the write feed ([`feed::Feed`], consumed by
//!   replication and the AOF) and the clients blocked on keys ([`blocking::Waiters`]).
//!   Expiry is lazy on access (typed lookups in [`cmd::Ctx`]) plus a Redis-style active
//!   sampling task every 100 ms; replicas hide expired keys but only delete them on the
//!   master's DEL.
//! * **Commands.** Each family is a file in `cmd/` exporting a static slice of
//!   [`cmd::Command`] (name, handler, arity, flags, key positions); `cmd/mod.rs` documents
//!   the contract (typed lookups, empty-container deletion, propagation, blocking).
//! * **Replies** are values ([`reply::Reply`]) encoded for the client's protocol (RESP2 or
//!   RESP3) at the end, so handlers never care which protocol a client speaks.
//! * **Other clients.** The store also holds the client registry ([`clients::Clients`]:
//!   CLIENT LIST/KILL, each connection's mailbox), pub/sub subscriptions ([`pubsub`]),
//!   WATCHed keys ([`watch`]) and client-side caching ([`tracking`]). Messages for another
//!   client (PUBLISH, invalidations, MONITOR lines, CLIENT KILL) go through its mailbox, so
//!   no command ever waits on another client's socket. [`store::Store::signal`] is the one
//!   place a changed key wakes blocked clients, breaks WATCHes and invalidates caches.
//! * **Transactions.** MULTI queues requests in the client's state (`cmd::execute`); EXEC
//!   runs them back to back under the batch's lock and wraps their writes in MULTI ... EXEC
//!   on the feed.
//! * **Introspection.** INFO ([`info`], replication section in [`info_replication`]),
//!   counters ([`stats`]) and CONFIG parameters ([`settings`]) live in the store too.
//! * **Layers.** Data types (the store and what it holds, [`shared::Shared`], [`clock`],
//!   [`aof_buffer`], [`aof_file`], the under-the-lock halves of replication: [`repl::attach`],
//!   [`repl::role`]) sit below the commands (`cmd/`); the tasks that drive them (the AOF
//!   loader and writer thread in [`aof`], the replication links in [`repl::master`] and
//!   [`repl::replica`], connections, the listener in [`server`]) sit above. `.ci/import_cycles.py`
//!   lists what still imports in a circle.

pub(crate) mod access;
pub mod aof;
pub mod aof_buffer;
pub mod aof_file;
pub mod aof_rewrite;
pub mod args;
pub mod blocking;
pub mod client;
pub mod clients;
pub mod clock;
pub mod cluster;
pub mod cmd;
pub mod conn;
pub mod db;
mod db_key;
pub mod encoding;
pub mod error;
pub mod feed;
pub mod glob;
pub mod info;
pub mod info_replication;
pub mod latency;
pub mod mailbox;
pub mod notify;
pub mod output_limit;
pub mod pause;
pub mod pubsub;
pub(crate) mod rdb;
pub mod repl;
pub mod reply;
pub mod script;
pub mod sentinel;
pub mod server;
pub mod settings;
mod settings_kind;
mod settings_redis;
pub mod shared;
pub mod slowlog;
pub mod stats;
pub mod store;
pub mod tracking;
pub mod value;
pub mod watch;

pub use error::NodeError;
pub use server::run;
pub use shared::{NodeConfig, NodeTls, Shared};
