//! Leader election, as Redis's sentinels do it: one vote per sentinel per epoch, given to the
//! first sentinel that asks in that epoch (through `SENTINEL is-master-down-by-addr` with its
//! run id), and a leader needs both the group's quorum and a majority of all sentinels.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::ids;
use super::state::State;

/// A vote for another sentinel delays this sentinel's own attempt by up to this much, so
/// that sentinels do not all start failovers at once.
const MAX_DESYNC: Duration = Duration::from_millis(1000);

/// Votes for `candidate` in `epoch` if this sentinel has not voted in that epoch yet.
/// Returns whom this sentinel voted for and in which epoch (the reply to the asker).
pub(crate) fn vote(
    st: &mut State,
    group: &str,
    epoch: u64,
    candidate: &str,
) -> (Option<String>, u64) {
    st.observe_epoch(epoch);
    let current = st.current_epoch;
    let myid = st.myid.clone();
    let Some(m) = st.masters.get_mut(group) else {
        return (None, 0);
    };
    if m.config.leader_epoch < epoch && current <= epoch {
        m.leader = Some(candidate.to_string());
        m.config.leader_epoch = current;
        if candidate != myid {
            m.failover_start = Some(Instant::now() + ids::jitter(MAX_DESYNC));
        }
        let text = format!("{candidate} {current}");
        st.dirty = true;
        st.event("+vote-for-leader", text);
    }
    let Some(m) = st.masters.get(group) else {
        return (None, 0);
    };
    (m.leader.clone(), m.config.leader_epoch)
}

/// The leader of `epoch` for `group` if one has the votes, voting as Redis does: for the
/// sentinel with most votes, or for itself if nobody has any.
pub(crate) fn leader(st: &mut State, group: &str, epoch: u64) -> Option<String> {
    let m = st.masters.get(group)?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for p in m.sentinels.values() {
        if let Some(l) = &p.leader {
            if p.leader_epoch == epoch {
                *counts.entry(l.clone()).or_default() += 1;
            }
        }
    }
    let voters = m.voters();
    let quorum = m.config.quorum as usize;
    let best = |c: &BTreeMap<String, usize>| {
        c.iter()
            .max_by_key(|(_, n)| **n)
            .map(|(id, n)| (id.clone(), *n))
    };
    let candidate = best(&counts).map_or_else(|| st.myid.clone(), |(id, _)| id);
    let (mine, mine_epoch) = vote(st, group, epoch, &candidate);
    if let Some(mine) = mine.filter(|_| mine_epoch == epoch) {
        *counts.entry(mine).or_default() += 1;
    }
    let (winner, votes) = best(&counts)?;
    // A majority of all known sentinels, and at least the quorum.
    (votes > voters / 2 && votes >= quorum).then_some(winner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::sentinel::config::{MasterConfig, SentinelConfig};
    use crate::node::sentinel::state::{Addr, Master, Peer};

    fn state(votes: &[(&str, u64)], quorum: u32) -> State {
        let mut m = Master::new(MasterConfig::new("m", "127.0.0.1", 1, quorum));
        for (i, (leader, epoch)) in votes.iter().enumerate() {
            let mut p = Peer::new(Addr::new("127.0.0.1", 100 + i as u16));
            p.leader = Some(leader.to_string());
            p.leader_epoch = *epoch;
            m.sentinels.insert(format!("peer{i}"), p);
        }
        State {
            myid: "me".into(),
            current_epoch: 1,
            masters: [("m".to_string(), m)].into_iter().collect(),
            config: SentinelConfig::default(),
            announce_port: 1,
            events: tokio::sync::broadcast::channel(16).0,
            dirty: false,
            started: Instant::now(),
            shutdown: tokio_util::sync::CancellationToken::new(),
        }
    }

    #[test]
    fn a_leader_needs_a_majority_and_the_quorum() {
        // Both others voted for us in this epoch: we win (3 of 3).
        assert_eq!(
            leader(&mut state(&[("me", 1), ("me", 1)], 2), "m", 1).as_deref(),
            Some("me")
        );
        // Votes from another epoch do not count; our own vote alone is 1 of 3.
        assert_eq!(leader(&mut state(&[("me", 0), ("x", 0)], 2), "m", 1), None);
        // The others chose x: we vote for x too, and x leads.
        assert_eq!(
            leader(&mut state(&[("x", 1), ("x", 1)], 2), "m", 1).as_deref(),
            Some("x")
        );
        // A majority (2 of 3) but a quorum of 3: no leader.
        assert_eq!(leader(&mut state(&[("me", 1), ("y", 1)], 3), "m", 1), None);
    }

    #[test]
    fn one_vote_per_epoch() {
        let mut st = state(&[], 1);
        assert_eq!(vote(&mut st, "m", 2, "a"), (Some("a".into()), 2));
        assert_eq!(st.current_epoch, 2);
        // A second candidate in the same epoch gets the first one's name back.
        assert_eq!(vote(&mut st, "m", 2, "b"), (Some("a".into()), 2));
        // A later epoch gets a new vote.
        assert_eq!(vote(&mut st, "m", 3, "b"), (Some("b".into()), 3));
    }
}
