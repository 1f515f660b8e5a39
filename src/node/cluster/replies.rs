//! The read-only views in Redis 7.0's formats: CLUSTER NODES (also the config file's
//! body), SLOTS, SHARDS, INFO.

use std::fmt::Write;

use bytes::Bytes;

use super::state::{ClusterNode, ClusterState};
use crate::node::reply::Reply;

fn bulk(s: impl Into<String>) -> Reply {
    Reply::Bulk(Bytes::from(s.into()))
}

/// One CLUSTER NODES line (no newline).
pub(crate) fn node_line(c: &ClusterState, n: &ClusterNode) -> String {
    let master = n.master_of.as_deref().unwrap_or("-");
    // A replica reports its master's epoch, as Redis's `nodeEpoch` does.
    let epoch = n
        .master_of
        .as_ref()
        .and_then(|m| c.nodes.get(m))
        .map_or(n.config_epoch, |m| m.config_epoch);
    let link = if n.myself || n.connected {
        "connected"
    } else {
        "disconnected"
    };
    let mut line = format!(
        "{} {} {} {master} {} {} {epoch} {link}",
        n.id,
        n.addr_field(),
        n.flags_field(),
        n.ping_sent,
        if n.myself { 0 } else { n.pong_recv }
    );
    for (a, b) in c.ranges_of(&n.id) {
        if a == b {
            let _ = write!(line, " {a}");
        } else {
            let _ = write!(line, " {a}-{b}");
        }
    }
    if n.myself {
        for (slot, id) in &c.migrating {
            let _ = write!(line, " [{slot}->-{id}]");
        }
        for (slot, id) in &c.importing {
            let _ = write!(line, " [{slot}-<-{id}]");
        }
    }
    line
}

/// CLUSTER NODES: every node, one line each.
pub(crate) fn nodes(c: &ClusterState) -> String {
    let mut out = String::new();
    for n in c.nodes.values() {
        out.push_str(&node_line(c, n));
        out.push('\n');
    }
    out
}

/// One node of a CLUSTER SLOTS range: ip, port, id, (empty) metadata.
fn slots_node(n: &ClusterNode) -> Reply {
    Reply::Array(vec![
        bulk(n.ip.clone()),
        Reply::Int(i64::from(n.port)),
        bulk(n.id.clone()),
        Reply::Map(Vec::new()),
    ])
}

/// CLUSTER SLOTS.
pub(crate) fn slots(c: &ClusterState) -> Reply {
    let mut out = Vec::new();
    for n in c.nodes.values().filter(|n| n.is_master()) {
        for (a, b) in c.ranges_of(&n.id) {
            let mut entry = vec![
                Reply::Int(i64::from(a)),
                Reply::Int(i64::from(b)),
                slots_node(n),
            ];
            for r in c.replicas_of(&n.id) {
                if !r.fail {
                    entry.push(slots_node(r));
                }
            }
            out.push(Reply::Array(entry));
        }
    }
    Reply::Array(out)
}

fn shard_node(c: &ClusterState, n: &ClusterNode, my_offset: i64) -> Reply {
    let offset = if n.myself { my_offset } else { n.repl_offset };
    let health = if n.fail {
        "fail"
    } else if n.replica && offset == 0 {
        "loading"
    } else {
        "online"
    };
    let _ = c;
    Reply::Map(vec![
        (bulk("id"), bulk(n.id.clone())),
        (bulk("port"), Reply::Int(i64::from(n.port))),
        (bulk("ip"), bulk(n.ip.clone())),
        (bulk("endpoint"), bulk(n.ip.clone())),
        (
            bulk("role"),
            bulk(if n.replica { "replica" } else { "master" }),
        ),
        (bulk("replication-offset"), Reply::Int(offset)),
        (bulk("health"), bulk(health)),
    ])
}

/// CLUSTER SHARDS: one entry per master, its slot ranges and its nodes.
pub(crate) fn shards(c: &ClusterState, my_offset: i64) -> Reply {
    let mut out = Vec::new();
    for m in c.nodes.values().filter(|n| n.is_master() && !n.handshake) {
        let mut slots = Vec::new();
        for (a, b) in c.ranges_of(&m.id) {
            slots.push(Reply::Int(i64::from(a)));
            slots.push(Reply::Int(i64::from(b)));
        }
        let mut nodes = vec![shard_node(c, m, my_offset)];
        for r in c.replicas_of(&m.id) {
            nodes.push(shard_node(c, r, my_offset));
        }
        out.push(Reply::Map(vec![
            (bulk("slots"), Reply::Array(slots)),
            (bulk("nodes"), Reply::Array(nodes)),
        ]));
    }
    Reply::Array(out)
}

/// CLUSTER INFO's text.
pub(crate) fn info(c: &ClusterState) -> String {
    let assigned = c.assigned();
    let (mut pfail, mut fail) = (0, 0);
    for o in c.owner.iter().flatten() {
        if let Some(n) = c.nodes.get(o) {
            pfail += usize::from(n.pfail);
            fail += usize::from(n.fail);
        }
    }
    let mut s = String::new();
    let _ = write!(
        s,
        "cluster_state:{}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{}\r\n\
         cluster_slots_pfail:{pfail}\r\ncluster_slots_fail:{fail}\r\ncluster_known_nodes:{}\r\n\
         cluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{}\r\n",
        if c.ok { "ok" } else { "fail" },
        assigned - pfail - fail,
        c.nodes.len(),
        c.size(),
        c.current_epoch,
        c.nodes
            .get(&c.my_master_id())
            .map_or(c.me().config_epoch, |m| m.config_epoch),
    );
    let (mut sent, mut received) = (0, 0);
    for (k, v) in &c.stats.sent {
        let _ = write!(s, "cluster_stats_messages_{k}_sent:{v}\r\n");
        sent += v;
    }
    let _ = write!(s, "cluster_stats_messages_sent:{sent}\r\n");
    for (k, v) in &c.stats.received {
        let _ = write!(s, "cluster_stats_messages_{k}_received:{v}\r\n");
        received += v;
    }
    let _ = write!(
        s,
        "cluster_stats_messages_received:{received}\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n"
    );
    s
}
