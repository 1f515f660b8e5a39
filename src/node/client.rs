//! Per-connection state that commands read and change (SELECT, HELLO, AUTH, QUIT, ...).

use bytes::Bytes;

use crate::resp::Protocol;

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
    /// The port this client said it listens on (`REPLCONF listening-port`), if a replica.
    pub repl_port: u16,
    /// Set by PSYNC/SYNC: after the current replies are written, the connection stops
    /// serving commands and becomes a replication stream (`repl::master::serve_replica`).
    pub handoff: bool,
    /// WAIT's deadline while it is blocked (re-runs must not restart the timeout).
    pub wait_until: Option<std::time::Instant>,
}
