//! Failure detection and replica promotion, as Redis Cluster does them:
//! * a node silent for `cluster-node-timeout` is PFAIL for us; with PFAIL/FAIL reports from a
//!   majority of the slot-owning masters (ourselves included if we are one) it becomes FAIL
//!   and we tell everyone;
//! * a replica of a FAIL master waits 0–200 ms plus 500 ms per better-placed sibling (rank
//!   by replication offset), bumps the current epoch and sends every master the FAIL and
//!   then its vote request (Redis waits 500 ms more for the FAIL to spread on its own);
//! * a master votes once per epoch, not twice for the same master's replicas within twice
//!   the node timeout, and never for a claim older than the owners it knows;
//! * with a majority of votes the replica takes its master's slots at the election epoch.

use super::proto::{Header, Kind};
use super::state::mark_failed;
use super::state::{ClusterState, Election, Outgoing};

/// Random delay (ms, up to) before a replica asks for votes, so that two replicas of one
/// master with the same offset rarely run in the same epoch.
const ELECTION_JITTER_MS: u64 = 200;
/// Extra delay (ms) per sibling replica with a larger replication offset: the most
/// up-to-date replica runs first.
const RANK_DELAY_MS: i64 = 500;

/// Runs the periodic checks; returns requests to broadcast.
pub(crate) fn cron(c: &mut ClusterState, my_offset: i64, now: i64, rand: u64) -> Vec<Kind> {
    let mut out = Vec::new();
    let timeout = c.node_timeout;
    let handshake_ttl = timeout.max(1000);
    let stale: Vec<String> = c
        .nodes
        .values()
        .filter(|n| n.handshake && now - n.created > handshake_ttl)
        .map(|n| n.id.clone())
        .collect();
    for id in stale {
        c.nodes.shift_remove(&id);
    }
    c.blacklist.retain(|_, until| *until > now);
    for n in c.nodes.values_mut() {
        if !n.myself && !n.handshake && !n.fail && !n.pfail && now - n.pong_recv > timeout {
            n.pfail = true;
        }
        n.fail_reports.retain(|_, t| now - *t <= timeout * 2);
    }
    let suspects: Vec<String> = c
        .nodes
        .values()
        .filter(|n| n.pfail && !n.fail)
        .map(|n| n.id.clone())
        .collect();
    for id in suspects {
        if fail_if_agreed(c, &id, now) {
            out.push(Kind::Fail(id));
        }
    }
    out.extend(election(c, my_offset, now, rand));
    c.update_state();
    out
}

/// Marks `id` FAIL when we see it PFAIL and reports of a majority of masters agree (the
/// majority of the slot-owning masters' count); true when it was marked now.
pub(crate) fn fail_if_agreed(c: &mut ClusterState, id: &str, now: i64) -> bool {
    let Some(n) = c.nodes.get(id).filter(|n| n.pfail && !n.fail) else {
        return false;
    };
    let reports = n
        .fail_reports
        .keys()
        .filter(|r| c.nodes.get(*r).is_some_and(|m| m.is_master()))
        .count();
    // As Redis: reports of any master count, ours too when we are one.
    let me_counts = !c.me().replica;
    if reports + usize::from(me_counts) < c.quorum() {
        return false;
    }
    mark_failed(c, id, now);
    true
}

/// A replica's side of failover: schedule, ask for votes, win or time out. Returns the
/// requests to broadcast, in order.
fn election(c: &mut ClusterState, my_offset: i64, now: i64, rand: u64) -> Vec<Kind> {
    let me = c.me();
    let master = me.master_of.as_ref().and_then(|m| c.nodes.get(m));
    let Some(master) = master.filter(|_| me.replica) else {
        c.election = None;
        return Vec::new();
    };
    let manual = c.election.as_ref().is_some_and(|e| e.manual);
    let master_id = master.id.clone();
    if (!master.fail && !manual) || c.slot_count(&master_id) == 0 {
        c.election = None;
        return Vec::new();
    }
    if let Some(e) = &c.election {
        if e.manual && now > e.manual_deadline {
            c.election = None;
            return Vec::new();
        }
    }
    let auth_timeout = (c.node_timeout * 2).max(2000);
    if c.election.is_none() {
        let rank = c
            .replicas_of(&master_id)
            .iter()
            .filter(|r| !r.myself && !r.fail && r.repl_offset > my_offset)
            .count() as i64;
        // Redis waits 500 ms more so that the FAIL reaches the voters first; our vote
        // request is preceded by the FAIL itself on every link, so only the jitter that
        // keeps equally ranked siblings apart and the rank's turn remain.
        c.election = Some(Election {
            start_at: now + (rand % ELECTION_JITTER_MS) as i64 + rank * RANK_DELAY_MS,
            ..Election::default()
        });
    }
    let Some(e) = c.election.as_mut() else {
        return Vec::new();
    };
    if e.epoch == 0 {
        if now < e.start_at || e.awaiting_pause || e.wait_offset.is_some_and(|o| my_offset < o) {
            return Vec::new();
        }
        c.current_epoch += 1;
        let e = c.election.as_mut().expect("present");
        e.epoch = c.current_epoch;
        e.votes.clear();
        e.start_at = now;
        c.dirty = true;
        tracing::info!(epoch = c.current_epoch, "cluster: asking masters for votes");
        let mut out = Vec::new();
        if c.nodes.get(&master_id).is_some_and(|m| m.fail) {
            out.push(Kind::Fail(master_id));
        }
        out.push(Kind::AuthRequest);
        return out;
    }
    let (votes, epoch, started) = (e.votes.len(), e.epoch, e.start_at);
    if votes >= c.quorum() {
        promote(c, &master_id, epoch);
    } else if now - started > auth_timeout {
        // Lost or split vote: a new election later, at a new epoch.
        c.election = None;
    }
    Vec::new()
}

/// Becomes a master owning `old_master`'s slots at `epoch`.
pub(crate) fn promote(c: &mut ClusterState, old_master: &str, epoch: u64) {
    for slot in c.slots_of(old_master) {
        c.set_owner(slot, Some(c.myid.clone()));
    }
    let me = c.me_mut();
    me.replica = false;
    me.master_of = None;
    me.config_epoch = epoch;
    if c.current_epoch < epoch {
        c.current_epoch = epoch;
    }
    c.election = None;
    c.dirty = true;
    c.update_state();
    // Tell everyone now rather than at the next PINGs.
    c.tell_bus(Outgoing::Broadcast(Kind::Ping));
    tracing::info!(epoch, "cluster: promoted to master");
}

/// A master's answer to a replica's vote request: the epoch voted for, or `None`.
pub(crate) fn vote(c: &mut ClusterState, h: &Header, now: i64) -> Option<u64> {
    let me = c.me();
    if me.replica || c.slot_count(&c.myid) == 0 {
        return None;
    }
    if h.current_epoch < c.current_epoch || c.last_vote_epoch == c.current_epoch {
        return None;
    }
    let requester = c.nodes.get(&h.id)?;
    let master = requester.master_of.as_ref().and_then(|m| c.nodes.get(m))?;
    if !requester.replica || (!master.fail && !h.manual) {
        return None;
    }
    if now - master.voted_time < c.node_timeout * 2 {
        return None;
    }
    for &(a, b) in &h.slots {
        for slot in a..=b.min(16383) {
            if c.owner_of(slot)
                .is_some_and(|o| o.config_epoch > h.slots_epoch)
            {
                return None;
            }
        }
    }
    let master_id = master.id.clone();
    c.last_vote_epoch = c.current_epoch;
    if let Some(m) = c.nodes.get_mut(&master_id) {
        m.voted_time = now;
    }
    c.dirty = true;
    tracing::info!(
        replica = h.id,
        epoch = c.current_epoch,
        "cluster: failover vote granted"
    );
    Some(c.current_epoch)
}

/// Counts a vote from `voter` for our election at `epoch`.
pub(crate) fn count_vote(c: &mut ClusterState, voter: &str, epoch: u64) {
    let valid = c
        .nodes
        .get(voter)
        .is_some_and(|n| n.is_master() && c.slot_count(voter) > 0);
    if let Some(e) = c.election.as_mut() {
        if valid && e.epoch == epoch && !e.votes.iter().any(|v| v == voter) {
            e.votes.push(voter.to_string());
        }
    }
    // Won: take over now rather than at the next cron tick.
    let won = c
        .election
        .as_ref()
        .is_some_and(|e| e.epoch == epoch && e.votes.len() >= c.quorum());
    let master = c.me().master_of.clone();
    if let (true, Some(m)) = (won, master) {
        promote(c, &m, epoch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::cluster::gossip::header;
    use crate::node::cluster::state::{random_id, ClusterNode};

    #[test]
    fn a_replica_of_a_failed_master_sends_the_fail_then_asks_for_votes_at_once() {
        let mut r = ClusterState::new(random_id(), "127.0.0.1", 1, 2, "x".into(), 1000, 0);
        let m = random_id();
        r.nodes
            .insert(m.clone(), ClusterNode::new(m.clone(), "127.0.0.1", 3, 4, 0));
        r.set_owner(0, Some(m.clone()));
        r.me_mut().replica = true;
        r.me_mut().master_of = Some(m.clone());
        assert!(
            cron(&mut r, 0, 10, 0).is_empty(),
            "master alive: no election"
        );
        r.nodes.get_mut(&m).expect("m").fail = true;
        let out = cron(&mut r, 0, 20, 0);
        assert!(
            matches!(out.as_slice(), [Kind::Fail(id), Kind::AuthRequest] if *id == m),
            "{out:?}"
        );
        assert_eq!(r.election.as_ref().map(|e| e.epoch), Some(1));
    }

    #[test]
    fn one_vote_per_epoch_and_only_for_a_failed_master() {
        let mut voter = ClusterState::new(random_id(), "127.0.0.1", 1, 2, "x".into(), 1000, 0);
        let me = voter.myid.clone();
        voter.set_owner(0, Some(me));
        let (m, r) = (random_id(), random_id());
        let mut master = ClusterNode::new(m.clone(), "127.0.0.1", 3, 4, 0);
        master.config_epoch = 1;
        voter.nodes.insert(m.clone(), master);
        let mut replica = ClusterNode::new(r.clone(), "127.0.0.1", 5, 6, 0);
        replica.replica = true;
        replica.master_of = Some(m.clone());
        voter.nodes.insert(r.clone(), replica);
        voter.set_owner(1, Some(m.clone()));
        let mut h = header(&voter, 0, false);
        h.id = r;
        h.replica = true;
        h.current_epoch = 5;
        h.slots = vec![(1, 1)];
        h.slots_epoch = 1;
        voter.current_epoch = 5;
        assert_eq!(vote(&mut voter, &h, 10_000), None, "master is not failing");
        voter.nodes.get_mut(&m).expect("m").fail = true;
        assert_eq!(vote(&mut voter, &h, 10_000), Some(5));
        assert_eq!(
            vote(&mut voter, &h, 10_000),
            None,
            "already voted in epoch 5"
        );
    }
}
