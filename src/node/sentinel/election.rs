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
