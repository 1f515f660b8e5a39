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
//!
//! A RESP3 client may run WAIT while subscribed (Redis runs it there too): it is answered the
//! same way, and the messages that reach its subscription tunnel meanwhile are passed on at
//! once, as Redis delivers a blocked client's messages. (A RESP2 subscribed client gets
//! Redis's refusal, as for any command but the subscription ones.)

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::local::parse_int;
use super::{error_bytes, Io, Session};
use crate::backend::Patience;
use crate::backend::{DirectConn, Node};
use crate::resp::{encode, ClientError, Frame, Protocol, Request};
use crate::route::RouteError;
use crate::topology::health::ReplicationInfo;

/// What a WAIT waits for.
struct Waiting {
    /// The master whose replicas are counted.
    master: Arc<Node>,
    /// Replicas wanted.
    want: i64,
    /// The master's replication offset that covers the client's writes.
    target: u64,
    /// `None`: no timeout.
    deadline: Option<tokio::time::Instant>,
}

impl Session {
    /// WAIT numreplicas timeout (the reply queue is empty here).
    pub(super) async fn wait_replicas(&mut self, req: &Request, io: &mut Io) -> Bytes {
        // Without a tunnel nothing can be lost on the way.
        self.wait_acks(req, io, None).await.unwrap_or_default()
    }

    /// WAIT from a RESP3 client in subscribed mode, at a sync point (nothing is pending on
    /// its tunnel `conn`): answered as outside subscribed mode, the messages that arrive on
    /// the tunnel meanwhile relayed at once. `Err`: the tunnel was lost.
    pub(super) async fn subscribed_wait(
        &mut self,
        req: &Request,
        conn: &mut DirectConn,
        io: &mut Io,
    ) -> Result<(), String> {
        // Messages the sync point relayed before it are the client's now, not after WAIT.
        io.flush().await.map_err(|e| e.to_string())?;
        let reply = self.wait_acks(req, io, Some(conn)).await?;
        io.out.extend_from_slice(&reply);
        Ok(())
    }

    /// WAIT's answer; between rounds, `tunnel`'s messages are relayed to the client.
    async fn wait_acks(
        &mut self,
        req: &Request,
        io: &mut Io,
        mut tunnel: Option<&mut DirectConn>,
    ) -> Result<Bytes, String> {
        let w = match self.wait_setup(req).await {
            Ok(w) => w,
            Err(refusal) => return Ok(refusal),
        };
        loop {
            let acked = self.replication(&w.master).await.map_or(0, |i| {
                i.replicas.iter().filter(|r| r.offset >= w.target).count()
            });
            let timed_out = w.deadline.is_some_and(|d| tokio::time::Instant::now() >= d);
            if acked as i64 >= w.want || timed_out {
                let mut out = BytesMut::new();
                encode::integer(&mut out, acked as i64);
                return Ok(out.freeze());
            }
            if !io.read_available() {
                // The client left: nobody waits for the answer.
                self.closing = true;
                return Ok(Bytes::new());
            }
            match tunnel.as_deref_mut() {
                None => hurry_acks(&w.master).await,
                Some(conn) => hurry_acks_relaying(&w.master, conn, io).await?,
            }
        }
    }

    /// WAIT's arguments checked as Redis checks them, and what it waits for; `Err`: the
    /// refusal to answer.
    async fn wait_setup(&self, req: &Request) -> Result<Waiting, Bytes> {
        if req.len() != 3 {
            return Err(error_bytes(
                "ERR wrong number of arguments for 'wait' command",
            ));
        }
        let (Some(want), Some(ms)) = (parse_int(req.arg(1)), parse_int(req.arg(2))) else {
            return Err(error_bytes("ERR value is not an integer or out of range"));
        };
        if ms < 0 {
            return Err(error_bytes("ERR timeout is negative"));
        }
        let master = self
            .wait_master()
            .map_err(|e| ClientError::from(e).to_bytes())?;
        let Some(target) = self
            .replication(&master)
            .await
            .and_then(|i| i.master_repl_offset)
        else {
            return Err(error_bytes(&format!(
                "ERR sluice: INFO replication failed on {}",
                master.addr
            )));
        };
        let deadline =
            (ms > 0).then(|| tokio::time::Instant::now() + Duration::from_millis(ms as u64));
        Ok(Waiting {
            master,
            want,
            target,
            deadline,
        })
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

/// [`hurry_acks`], passing on the messages that arrive on a subscribed client's tunnel
/// meanwhile (nothing else can: no request of the client's is pending on it). `Err`: the
/// tunnel was lost.
async fn hurry_acks_relaying(
    master: &Node,
    conn: &mut DirectConn,
    io: &mut Io,
) -> Result<(), String> {
    let hurry = hurry_acks(master);
    tokio::pin!(hurry);
    loop {
        tokio::select! {
            () = &mut hurry => return Ok(()),
            frame = conn.read() => {
                let frame = frame.map_err(|e| e.to_string())?;
                io.out.extend_from_slice(&frame.raw);
                io.flush().await.map_err(|e| e.to_string())?;
            }
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
