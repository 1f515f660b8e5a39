//! `INFO replication`, in Redis 7.0's exact field order and names: sentinels and the proxy
//! parse it (`role`, `slaveN:`, `master_link_status`, offsets, replids).

use std::fmt::Write;
use std::time::Instant;

use super::repl::LinkState;
use super::store::Store;

/// The lines of the `# Replication` section (the header is the caller's), ending in CRLF.
pub fn replication_section(store: &Store) -> String {
    let r = &store.repl;
    let now = Instant::now();
    let mut s = String::new();
    match &r.master {
        Some(m) => {
            let up = m.state == LinkState::Connected;
            let _ = write!(
                s,
                "role:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\n",
                m.host,
                m.port,
                if up { "up" } else { "down" }
            );
            let last_io = m
                .last_io
                .filter(|_| up)
                .map_or(-1, |t| now.duration_since(t).as_secs() as i64);
            let _ = write!(
                s,
                "master_last_io_seconds_ago:{last_io}\r\nmaster_sync_in_progress:{}\r\n",
                u8::from(m.state == LinkState::Sync)
            );
            let _ = write!(
                s,
                "slave_read_repl_offset:{}\r\nslave_repl_offset:{}\r\n",
                m.read_offset.max(r.offset),
                r.offset
            );
            if !up {
                // -1 until the first sync completed, as Redis reports it.
                let down = match m.down_since {
                    Some(t) if m.ever_synced => now.duration_since(t).as_secs() as i64,
                    _ => -1,
                };
                let _ = write!(s, "master_link_down_since_seconds:{down}\r\n");
            }
            s.push_str("slave_priority:100\r\nslave_read_only:1\r\nreplica_announced:1\r\n");
        }
        None => s.push_str("role:master\r\n"),
    }
    let online: Vec<_> = r.replicas.iter().filter(|l| !l.killed).collect();
    let _ = write!(s, "connected_slaves:{}\r\n", online.len());
    for (i, l) in online.iter().enumerate() {
        let _ = write!(
            s,
            "slave{i}:ip={},port={},state={},offset={},lag={}\r\n",
            l.ip,
            l.port,
            if l.online { "online" } else { "send_bulk" },
            l.ack,
            now.duration_since(l.last_ack).as_secs()
        );
    }
    let (active, first, histlen) = match &r.backlog {
        Some(b) => (1, b.first_byte_offset(), b.histlen()),
        None => (0, 0, 0),
    };
    let _ = write!(
        s,
        "master_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\n\
         master_repl_offset:{}\r\nsecond_repl_offset:{}\r\nrepl_backlog_active:{active}\r\n\
         repl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{first}\r\n\
         repl_backlog_histlen:{histlen}\r\n",
        r.replid, r.replid2, r.offset, r.second_offset, r.backlog_size
    );
    s
}

/// `master` or `slave` (HELLO's `role`, ROLE).
pub fn role(store: &Store) -> &'static str {
    if store.repl.master.is_some() {
        "slave"
    } else {
        "master"
    }
}

/// The replication counters of `# Stats` (`sync_full`, `sync_partial_ok`,
/// `sync_partial_err`), lines ending in CRLF, for the INFO stats section to include.
pub fn stats_lines(store: &Store) -> String {
    let st = &store.repl.stats;
    format!(
        "sync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\n",
        st.sync_full, st.sync_partial_ok, st.sync_partial_err
    )
}

/// The AOF lines of `# Persistence` (`aof_enabled`, `aof_current_size`, and sluice's
/// `aof_fsynced_size`: the file size covered by the last fsync, so a test or an operator can
/// tell what would survive a crash).
pub fn persistence_lines(store: &Store) -> String {
    match &store.repl.aof {
        Some(a) => format!(
            "aof_enabled:1\r\naof_current_size:{}\r\naof_fsynced_size:{}\r\n",
            a.size, a.fsynced
        ),
        None => "aof_enabled:0\r\n".to_string(),
    }
}
