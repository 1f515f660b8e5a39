//! Node probes: a small connection per node of its own, asking `INFO replication`, so a probe
//! never queues behind client traffic and sees the node's own view of its replication link.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;

use super::Health;
use crate::backend::handshake::{self, Handshake};
use crate::config::ReplicaLag;
use crate::resp::{Frame, Protocol};
use crate::tls::{Connector, NodeStream};

/// Fields of `INFO replication` that decide health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReplicationInfo {
    /// `role:` (master / slave).
    pub(crate) role: String,
    /// `master_link_status:` (replicas).
    pub(crate) link_up: Option<bool>,
    /// `master_sync_in_progress:` (replicas).
    pub(crate) sync_in_progress: bool,
    /// `master_host:`/`master_port:` joined (replicas).
    pub(crate) master_addr: Option<String>,
    /// `master_repl_offset:`
    pub(crate) master_repl_offset: Option<u64>,
    /// `slave_repl_offset:` (replicas).
    pub(crate) slave_repl_offset: Option<u64>,
    /// `slaveN:` lines (masters): each connected replica as the master sees it.
    pub(crate) replicas: Vec<ReplicaEntry>,
}

/// One `slaveN:ip=...,port=...,state=...,offset=...,lag=...` line of a master's INFO.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReplicaEntry {
    /// `ip:port` the replica announced.
    pub(crate) addr: String,
    /// Offset the replica last acknowledged.
    pub(crate) offset: u64,
    /// Seconds since its last acknowledgement (replicas ack every second).
    pub(crate) lag_secs: u64,
}

impl ReplicaEntry {
    fn parse(value: &str) -> Option<ReplicaEntry> {
        let (mut ip, mut port, mut offset, mut lag) = (None, None, None, None);
        for field in value.split(',') {
            match field.split_once('=') {
                Some(("ip", v)) => ip = Some(v),
                Some(("port", v)) => port = Some(v),
                Some(("offset", v)) => offset = v.parse().ok(),
                Some(("lag", v)) => lag = v.parse().ok(),
                _ => {}
            }
        }
        Some(ReplicaEntry {
            addr: format!("{}:{}", ip?, port?),
            offset: offset?,
            lag_secs: lag.unwrap_or(0),
        })
    }
}

impl ReplicationInfo {
    /// Parses the text of `INFO replication` (`key:value` lines, `#` headers).
    pub(crate) fn parse(text: &str) -> ReplicationInfo {
        let mut info = ReplicationInfo::default();
        let (mut host, mut port) = (None, None);
        for line in text.lines() {
            let Some((k, v)) = line.trim_end().split_once(':') else {
                continue;
            };
            match k {
                "role" => info.role = v.to_string(),
                "master_link_status" => info.link_up = Some(v == "up"),
                "master_sync_in_progress" => info.sync_in_progress = v == "1",
                "master_host" => host = Some(v.to_string()),
                "master_port" => port = Some(v.to_string()),
                "master_repl_offset" => info.master_repl_offset = v.parse().ok(),
                "slave_repl_offset" => info.slave_repl_offset = v.parse().ok(),
                k if k.starts_with("slave") && k[5..].bytes().all(|b| b.is_ascii_digit()) => {
                    info.replicas.extend(ReplicaEntry::parse(v));
                }
                _ => {}
            }
        }
        if let (Some(h), Some(p)) = (host, port) {
            info.master_addr = Some(format!("{h}:{p}"));
        }
        info
    }

    /// Health of a node expected to be a replica.
    pub(crate) fn replica_health(&self) -> Health {
        if self.role != "slave" {
            return Health::WrongRole(self.role.clone());
        }
        if self.sync_in_progress {
            return Health::Syncing;
        }
        if self.link_up != Some(true) {
            return Health::LinkDown;
        }
        Health::Healthy
    }
}

/// A reusable probe connection to one node.
pub(crate) struct Prober {
    addr: String,
    handshake: Handshake,
    timeout: Duration,
    conn: Option<(NodeStream, BytesMut)>,
}

/// Result of one probe.
pub(crate) enum ProbeResult {
    /// The node answered INFO.
    Info(ReplicationInfo),
    /// The node answered `LOADING`.
    Loading,
    /// The node could not be asked.
    Down(String),
}

impl Prober {
    /// A prober for `addr` using RESP2 and the pool's node credentials.
    pub(crate) fn new(
        addr: &str,
        username: Option<String>,
        password: Option<String>,
        tls: Option<Arc<Connector>>,
        timeout: Duration,
    ) -> Prober {
        Prober {
            addr: addr.to_string(),
            handshake: Handshake {
                username,
                password,
                protocol: Protocol::Resp2,
                readonly: false,
                tls,
                for_client: false,
            },
            timeout,
            conn: None,
        }
    }

    /// Asks the node `INFO replication`, reconnecting if needed; drops the connection on failure.
    pub(crate) async fn probe(&mut self) -> ProbeResult {
        let res = tokio::time::timeout(self.timeout, self.ask()).await;
        match res {
            Ok(Ok(Frame::Bulk(text))) | Ok(Ok(Frame::Verbatim(_, text))) => {
                ProbeResult::Info(ReplicationInfo::parse(&String::from_utf8_lossy(&text)))
            }
            Ok(Ok(Frame::Error(e))) if e.starts_with(b"LOADING") => ProbeResult::Loading,
            Ok(Ok(other)) => {
                self.conn = None;
                ProbeResult::Down(format!("unexpected INFO reply: {other:?}"))
            }
            Ok(Err(e)) => {
                self.conn = None;
                ProbeResult::Down(e)
            }
            Err(_) => {
                self.conn = None;
                ProbeResult::Down(format!(
                    "probe timed out after {} ms",
                    self.timeout.as_millis()
                ))
            }
        }
    }

    async fn ask(&mut self) -> Result<Frame, String> {
        if self.conn.is_none() {
            let mut buf = BytesMut::new();
            let stream = handshake::connect(&self.addr, &self.handshake, self.timeout, &mut buf)
                .await
                .map_err(|e| e.to_string())?;
            self.conn = Some((stream, buf));
        }
        let Some((stream, buf)) = self.conn.as_mut() else {
            return Err("no connection".into());
        };
        handshake::request_frame(stream, buf, &[b"INFO", b"replication"])
            .await
            .map_err(|e| e.to_string())
    }
}

/// Applies `max_replica_lag` to a replica that is otherwise healthy. Byte lag compares the
/// replica's own offset with the master's (probed together, so nearly the same instant); time
/// lag uses the master's `lag=` for it (seconds since its last ack; replicas ack every second).
/// Without a master view the replica is left in: lag cannot be judged, and dropping every
/// replica when only the master's probe failed would push all reads onto a master in trouble.
pub(crate) fn lag_health(
    max: Option<ReplicaLag>,
    master: Option<&ReplicationInfo>,
    addr: &str,
    info: &ReplicationInfo,
) -> Health {
    let (Some(max), Some(master)) = (max, master) else {
        return Health::Healthy;
    };
    match max {
        ReplicaLag::Bytes(limit) => match (master.master_repl_offset, info.slave_repl_offset) {
            (Some(m), Some(r)) if m.saturating_sub(r) > limit => {
                Health::Lagging(format!("{} bytes behind (max {limit})", m - r))
            }
            _ => Health::Healthy,
        },
        ReplicaLag::Time(limit) => match master.replicas.iter().find(|e| e.addr == addr) {
            Some(e) if e.lag_secs > limit.as_secs() => Health::Lagging(format!(
                "last ack {} s ago (max {} s)",
                e.lag_secs,
                limit.as_secs()
            )),
            _ => Health::Healthy,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_replica_info() {
        let text = "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:6379\r\n\
                    master_link_status:up\r\nmaster_sync_in_progress:0\r\nslave_repl_offset:42\r\n\
                    master_repl_offset:42\r\n";
        let info = ReplicationInfo::parse(text);
        assert_eq!(info.role, "slave");
        assert_eq!(info.master_addr.as_deref(), Some("127.0.0.1:6379"));
        assert_eq!(info.slave_repl_offset, Some(42));
        assert_eq!(info.replica_health(), Health::Healthy);
    }

    #[test]
    fn link_down_and_sync_are_unhealthy() {
        let down = ReplicationInfo::parse(
            "role:slave\nmaster_link_status:down\nmaster_sync_in_progress:0\n",
        );
        assert_eq!(down.replica_health(), Health::LinkDown);
        let sync = ReplicationInfo::parse(
            "role:slave\nmaster_link_status:down\nmaster_sync_in_progress:1\n",
        );
        assert_eq!(sync.replica_health(), Health::Syncing);
        let master = ReplicationInfo::parse("role:master\nmaster_repl_offset:10\n");
        assert_eq!(master.replica_health(), Health::WrongRole("master".into()));
    }

    #[test]
    fn parses_the_masters_view_of_its_replicas() {
        let text = "role:master\r\nconnected_slaves:2\r\n\
                    slave0:ip=127.0.0.1,port=6381,state=online,offset=100,lag=0\r\n\
                    slave1:ip=127.0.0.1,port=6382,state=online,offset=90,lag=3\r\nmaster_repl_offset:120\r\n";
        let info = ReplicationInfo::parse(text);
        assert_eq!(info.master_repl_offset, Some(120));
        assert_eq!(
            info.replicas,
            vec![
                ReplicaEntry {
                    addr: "127.0.0.1:6381".into(),
                    offset: 100,
                    lag_secs: 0
                },
                ReplicaEntry {
                    addr: "127.0.0.1:6382".into(),
                    offset: 90,
                    lag_secs: 3
                },
            ]
        );
    }
}
