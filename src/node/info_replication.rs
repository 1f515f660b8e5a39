//! INFO `replication` section and the node's role name (HELLO, INFO).
//!
//! Replication owns this file: it renders what a master with no replicas reports until the
//! replication side replaces it with the real state. The API it must keep:
//! [`replication_section`] (the section's `field:value\r\n` lines, without the header) and
//! [`role`] (`"master"` or `"slave"`, as HELLO and INFO `role:` say).

use std::sync::OnceLock;

use crate::node::server::Shared;
use crate::node::store::Store;

/// The replication ID this node reports: 40 hex digits, fixed for the process's life.
pub fn replid() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(crate::node::info::random_hex40)
}

/// The node's role: `master` or `slave`.
pub fn role(_store: &Store) -> &'static str {
    "master"
}

/// The lines of INFO `replication` (each `field:value\r\n`), in Redis 7.0's order.
pub fn replication_section(_shared: &Shared, _store: &Store) -> String {
    format!(
        "role:master\r\n\
         connected_slaves:0\r\n\
         master_failover_state:no-failover\r\n\
         master_replid:{}\r\n\
         master_replid2:0000000000000000000000000000000000000000\r\n\
         master_repl_offset:0\r\n\
         second_repl_offset:-1\r\n\
         repl_backlog_active:0\r\n\
         repl_backlog_size:1048576\r\n\
         repl_backlog_first_byte_offset:0\r\n\
         repl_backlog_histlen:0\r\n",
        replid()
    )
}
