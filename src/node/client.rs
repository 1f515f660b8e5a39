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
}
