//! Manual failover (CLUSTER FAILOVER without FORCE), as Redis does it, so that no write the
//! old master acknowledged is missing on the new one:
//! 1. the replica asks its master to pause writes (an MFSTART message);
//! 2. the master stops running write commands (the clients that send them wait, see
//!    [`hold`]) and tells the replica its replication offset at that moment (the `paused`
//!    flag of its headers);
//! 3. the replica waits until it has processed that much, then runs an election the masters
//!    vote in although its master is up (`failover.rs`);
//! 4. the old master learns of the newer configuration, turns replica, and the writes it
//!    held run again: they get MOVED to the new master.
//!
//! Either side gives up after [`MANUAL_TIMEOUT_MS`]; the pause then ends and the held
//! writes run on the old master. Writes inside scripts are not held (Redis holds the whole
//! EVAL); a script writing during the pause can lose that write.

use std::time::Duration;

use bytes::Bytes;

use super::state::{ClusterState, ManualPause};
use crate::node::cmd::command::Command;
use crate::node::cmd::ctx::Ctx;
use crate::node::reply::{Block, Reply};

/// How long a manual failover may take (Redis's CLUSTER_MF_TIMEOUT).
pub(crate) const MANUAL_TIMEOUT_MS: i64 = 5000;

/// The key held clients wait on. Nobody writes it: they are woken when the pause ends
/// (`sync_role`).
const PAUSE_KEY: &[u8] = b"\0sluice:cluster-manual-failover";

/// Master side: our replica `replica` asks us to pause for its manual failover.
pub(crate) fn pause_for(c: &mut ClusterState, replica: &str, now: i64) {
    let ours = c
        .nodes
        .get(replica)
        .is_some_and(|n| n.master_of.as_deref() == Some(c.myid.as_str()));
    if c.me().replica || !ours {
        return;
    }
    c.manual_pause = Some(ManualPause {
        replica: replica.to_string(),
        until: now + MANUAL_TIMEOUT_MS,
    });
    tracing::info!(replica, "cluster: manual failover: writes paused");
}

/// Replica side: our master `master` says it paused its writes at `offset`.
pub(crate) fn master_paused(c: &mut ClusterState, master: &str, offset: i64) {
    if c.me().master_of.as_deref() != Some(master) {
        return;
    }
    if let Some(e) = c.election.as_mut().filter(|e| e.manual && e.awaiting_pause) {
        e.awaiting_pause = false;
        e.wait_offset = Some(offset);
    }
}

/// Ends our pause once its failover happened (we are a replica now) or timed out; true
/// when it ended now (the caller wakes the held clients).
pub(crate) fn pause_over(c: &mut ClusterState, now: i64) -> bool {
    let over = c
        .manual_pause
        .as_ref()
        .is_some_and(|p| c.me().replica || now > p.until);
    if over {
        let p = c.manual_pause.take();
        tracing::info!(
            replica = p.map(|p| p.replica),
            "cluster: manual failover: pause over"
        );
    }
    over
}

/// While our writes are paused, the answer that parks a client sending a write (or EXEC)
/// until the pause ends; `None` to run the command. Our master's stream and commands
/// inside scripts are not held.
pub(crate) fn hold(ctx: &Ctx<'_>, cmd: &Command) -> Option<Reply> {
    let pause = ctx.store.cluster.as_ref()?.manual_pause.as_ref()?;
    let writes = cmd.is_write() || cmd.name == "exec";
    if !writes || ctx.client.from_master || ctx.client.in_script {
        return None;
    }
    let left = u64::try_from(pause.until - ctx.now_ms()).unwrap_or(0);
    Some(Reply::Block(Box::new(Block {
        keys: vec![Bytes::from_static(PAUSE_KEY)],
        // The pause ends by `until` and wakes the client first: this is a safety net.
        timeout: Some(Duration::from_millis(left + 1000)),
        on_timeout: Reply::error("TRYAGAIN the manual failover's write pause did not end"),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::cluster::state::{random_id, ClusterNode, Election};

    fn state() -> ClusterState {
        ClusterState::new(random_id(), "127.0.0.1", 1, 2, "x".into(), 1000, 0)
    }

    #[test]
    fn a_master_pauses_only_for_its_own_replica_until_it_turns_replica_or_times_out() {
        let mut m = state();
        let (mine, other) = (random_id(), random_id());
        let mut r = ClusterNode::new(mine.clone(), "127.0.0.1", 3, 4, 0);
        r.replica = true;
        r.master_of = Some(m.myid.clone());
        m.nodes.insert(mine.clone(), r);
        m.nodes.insert(
            other.clone(),
            ClusterNode::new(other.clone(), "127.0.0.1", 5, 6, 0),
        );
        pause_for(&mut m, &other, 0);
        assert!(m.manual_pause.is_none(), "not our replica");
        pause_for(&mut m, &mine, 0);
        assert!(m.manual_pause.is_some());
        assert!(!pause_over(&mut m, MANUAL_TIMEOUT_MS));
        assert!(pause_over(&mut m, MANUAL_TIMEOUT_MS + 1), "timed out");
        pause_for(&mut m, &mine, 0);
        m.me_mut().replica = true;
        assert!(pause_over(&mut m, 1), "the failover happened");
        assert!(m.manual_pause.is_none());
    }

    #[test]
    fn a_replica_waits_for_the_offset_its_own_master_paused_at() {
        let mut r = state();
        let master = random_id();
        r.me_mut().replica = true;
        r.me_mut().master_of = Some(master.clone());
        r.election = Some(Election {
            manual: true,
            awaiting_pause: true,
            ..Election::default()
        });
        master_paused(&mut r, &random_id(), 7);
        assert!(r.election.as_ref().is_some_and(|e| e.awaiting_pause));
        master_paused(&mut r, &master, 42);
        let e = r.election.as_ref().expect("election");
        assert!(!e.awaiting_pause);
        assert_eq!(e.wait_offset, Some(42));
    }
}
