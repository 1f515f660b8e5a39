//! `WAIT numreplicas timeout`, meaning what the client expects: once the client's own writes
//! were acknowledged (WAIT runs after every reply before it was written), the master's
//! replication offset is read; that offset covers those writes. WAIT then answers, as soon as
//! `numreplicas` replicas acknowledged that offset or at the timeout, how many did.
//!
//! Why not forward WAIT: on a shared connection it would block every other client multiplexed
//! on it for up to the timeout; on a dedicated connection (which wrote nothing) it would count
//! replicas that acknowledged nothing of this client's. Replicas acknowledge once a second by
//! themselves; each round here also sends `WAIT <huge> 10` on a dedicated connection, which
//! makes the master ask its replicas for an acknowledgement at once (and paces the rounds).
//!
//! Cluster pools: WAIT counts the replicas of the shard of the client's last keyed write
//! (a transaction's EXEC counts as a write on its slot).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::local::parse_int;
use super::{error_bytes, Io, Session};
use crate::backend::Node;
use crate::backend::Patience;
use crate::resp::{encode, ClientError, Frame, Protocol, Request};
use crate::route::RouteError;
use crate::topology::health::ReplicationInfo;

impl Session {
    /// WAIT numreplicas timeout (the reply queue is empty here).
    pub(super) async fn wait_replicas(&mut self, req: &Request, io: &mut Io) -> Bytes {
        if req.len() != 3 {
            return error_bytes("ERR wrong number of arguments for 'wait' command");
        }
        let (Some(want), Some(ms)) = (parse_int(req.arg(1)), parse_int(req.arg(2))) else {
            return error_bytes("ERR value is not an integer or out of range");
        };
        if ms < 0 {
            return error_bytes("ERR timeout is negative");
        }
        let master = match self.wait_master() {
            Ok(m) => m,
            Err(e) => return ClientError::from(e).to_bytes(),
        };
        let Some(target) = self
            .replication(&master)
            .await
            .and_then(|i| i.master_repl_offset)
        else {
            return error_bytes(&format!(
                "ERR sluice: INFO replication failed on {}",
                master.addr
            ));
        };
        let deadline =
            (ms > 0).then(|| tokio::time::Instant::now() + Duration::from_millis(ms as u64));
        loop {
            let acked = self.replication(&master).await.map_or(0, |i| {
                i.replicas.iter().filter(|r| r.offset >= target).count()
            });
            let timed_out = deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
            if acked as i64 >= want || timed_out {
                let mut out = BytesMut::new();
                encode::integer(&mut out, acked as i64);
                return out.freeze();
            }
            if !io.read_available() {
                // The client left: nobody waits for the answer.
                self.closing = true;
                return Bytes::new();
            }
            hurry_acks(&master).await;
        }
    }

    /// The master whose replicas WAIT counts: the pool's, or in a cluster pool the master of
    /// the shard of the client's last keyed write (the first shard's before any).
    fn wait_master(&self) -> Result<Arc<Node>, RouteError> {
        let topo = self.pool.topology.load();
        if !self.pool.routing.by_slot() {
            return self.pool.router.master(&topo);
        }
        let map = topo.cluster.as_ref().ok_or(RouteError::SlotNotServed)?;
        let shard = match self.last_write_slot {
            Some(slot) => map.shard(slot),
            None => map.shards.first(),
        };
        shard
            .map(|s| s.master.node.clone())
            .ok_or(RouteError::SlotNotServed)
    }

    /// The master's `INFO replication`, over the client's shared connection.
    async fn replication(&self, master: &Node) -> Option<ReplicationInfo> {
        let mut cmd = BytesMut::new();
        encode::command(&mut cmd, &[b"INFO", b"replication"]);
        let reply = master
            .send(cmd.freeze(), 0, self.id as usize, Patience::Bounded)
            .await
            .ok()?
            .ok()?;
        match Frame::parse(&reply.raw) {
            Ok(Some((Frame::Bulk(text), _))) | Ok(Some((Frame::Verbatim(_, text), _))) => {
                Some(ReplicationInfo::parse(&String::from_utf8_lossy(&text)))
            }
            _ => None,
        }
    }
}

/// Makes the master ask its replicas for an acknowledgement now, waiting about 10 ms (a WAIT
/// for more replicas than exist on a connection that wrote nothing); a plain pause when no
/// dedicated connection is free.
async fn hurry_acks(master: &Node) {
    let pause = Duration::from_millis(10);
    let checkout = tokio::time::timeout(pause, master.dedicated.checkout(Protocol::Resp2)).await;
    let Ok(Ok(mut conn)) = checkout else {
        tokio::time::sleep(pause).await;
        return;
    };
    let mut cmd = BytesMut::new();
    encode::command(&mut cmd, &[b"WAIT", b"1000000", b"10"]);
    match tokio::time::timeout(Duration::from_secs(1), conn.request(&cmd)).await {
        Ok(Ok(_)) => master.dedicated.checkin(conn),
        _ => tokio::time::sleep(pause).await,
    }
}
