//! One node's view of the cluster: who exists, who owns which slot, epochs, failure marks.
//!
//! Everything here is plain data changed under the store lock; the bus (`bus.rs`) and the
//! commands (`commands.rs`) are the only writers.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use indexmap::IndexMap;

use super::proto::Kind;
use crate::cluster_slot::SLOTS;

/// A node id: 40 lower-case hex characters.
pub(crate) type NodeId = String;

/// Who owns what, derived from the slot table and rebuilt only when it changes: the
/// periodic checks and every bus message ask for slot counts and ranges, and a pass over
/// the 16384 slots each time kept an idle debug-build node busy (six of them: half a core).
#[derive(Debug, Default)]
pub(crate) struct SlotIndex {
    /// The `slots_version` this was built at (`u64::MAX`: never).
    version: u64,
    /// Each owner's slots as inclusive ranges, in order.
    ranges: HashMap<NodeId, Vec<(u16, u16)>>,
    /// How many slots each owner has.
    counts: HashMap<NodeId, usize>,
    /// Slots with an owner.
    assigned: usize,
}

impl SlotIndex {
    fn build(owner: &[Option<NodeId>], version: u64) -> SlotIndex {
        let mut index = SlotIndex {
            version,
            ..SlotIndex::default()
        };
        let mut slot = 0;
        while slot < owner.len() {
            let Some(id) = &owner[slot] else {
                slot += 1;
                continue;
            };
            let start = slot;
            while slot + 1 < owner.len() && owner[slot + 1].as_ref() == Some(id) {
                slot += 1;
            }
            let (a, b) = (start as u16, slot as u16);
            index.ranges.entry(id.clone()).or_default().push((a, b));
            *index.counts.entry(id.clone()).or_default() += slot - start + 1;
            index.assigned += slot - start + 1;
            slot += 1;
        }
        index
    }
}

/// One node as this node knows it.
#[derive(Debug, Clone)]
pub(crate) struct ClusterNode {
    pub id: NodeId,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub myself: bool,
    /// The master this node replicates, when it is a replica.
    pub master_of: Option<NodeId>,
    /// Known to be a replica (its master may not be known yet).
    pub replica: bool,
    pub pfail: bool,
    pub fail: bool,
    /// Being met: the id is a random placeholder until the first answer.
    pub handshake: bool,
    pub config_epoch: u64,
    /// When the last PING to it went out without an answer yet (ms, 0 = none outstanding).
    pub ping_sent: i64,
    /// When it last answered (ms).
    pub pong_recv: i64,
    /// Our outgoing link to it is up.
    pub connected: bool,
    /// Masters that reported it PFAIL/FAIL, with when (ms).
    pub fail_reports: HashMap<NodeId, i64>,
    /// When it was marked FAIL (ms).
    pub fail_time: i64,
    /// Its replication offset, as it last told us.
    pub repl_offset: i64,
    /// When it was added (ms): handshakes time out from here.
    pub created: i64,
    /// When we last voted for a replica of this master (ms).
    pub voted_time: i64,
}

impl ClusterNode {
    /// A node known by address only, at `now`.
    pub fn new(id: NodeId, ip: &str, port: u16, cport: u16, now: i64) -> ClusterNode {
        ClusterNode {
            id,
            ip: ip.to_string(),
            port,
            cport,
            myself: false,
            master_of: None,
            replica: false,
            pfail: false,
            fail: false,
            handshake: false,
            config_epoch: 0,
            ping_sent: 0,
            pong_recv: now,
            connected: false,
            fail_reports: HashMap::new(),
            fail_time: 0,
            repl_offset: 0,
            created: now,
            voted_time: 0,
        }
    }
    /// True for a master (not a replica).
    pub fn is_master(&self) -> bool {
        !self.replica
    }
    /// `ip:port@cport`, as CLUSTER NODES prints it.
    pub fn addr_field(&self) -> String {
        format!("{}:{}@{}", self.ip, self.port, self.cport)
    }
    /// CLUSTER NODES's flags field.
    pub fn flags_field(&self) -> String {
        let mut f = Vec::new();
        if self.myself {
            f.push("myself");
        }
        f.push(if self.replica { "slave" } else { "master" });
        if self.pfail {
            f.push("fail?");
        }
        if self.fail {
            f.push("fail");
        }
        if self.handshake {
            f.push("handshake");
        }
        f.join(",")
    }
}

/// A replica's election in progress.
#[derive(Debug, Clone, Default)]
pub(crate) struct Election {
    /// When to ask for votes (ms); 0 = not scheduled.
    pub start_at: i64,
    /// Votes were requested for this epoch (0 = not yet).
    pub epoch: u64,
    /// Masters that voted for us in `epoch`.
    pub votes: Vec<NodeId>,
    /// Manual failover (CLUSTER FAILOVER [FORCE]): masters vote although our master is up.
    pub manual: bool,
    /// When a manual failover gives up (ms).
    pub manual_deadline: i64,
    /// Default manual failover: our master has not yet said it paused its writes.
    pub awaiting_pause: bool,
    /// Default manual failover: wait until our offset reaches this (our master's offset
    /// once paused) before the election.
    pub wait_offset: Option<i64>,
}

/// A master's write pause for a replica's manual failover (Redis's `mf_end` on a master).
#[derive(Debug, Clone)]
pub(crate) struct ManualPause {
    /// The replica taking over.
    pub replica: NodeId,
    /// When the pause ends if the failover has not happened by then (ms).
    pub until: i64,
}

/// Bus message counters (CLUSTER INFO).
#[derive(Debug, Clone, Default)]
pub(crate) struct MsgStats {
    pub sent: BTreeMap<&'static str, u64>,
    pub received: BTreeMap<&'static str, u64>,
}

/// The whole cluster view of this node.
#[derive(Debug)]
pub struct ClusterState {
    pub(crate) myid: NodeId,
    pub(crate) current_epoch: u64,
    pub(crate) last_vote_epoch: u64,
    pub(crate) nodes: IndexMap<NodeId, ClusterNode>,
    /// Slot → owning master.
    pub(crate) owner: Vec<Option<NodeId>>,
    pub(crate) importing: BTreeMap<u16, NodeId>,
    pub(crate) migrating: BTreeMap<u16, NodeId>,
    /// `cluster-node-timeout` in ms.
    pub(crate) node_timeout: i64,
    pub(crate) config_file: PathBuf,
    /// `cluster_state:ok`.
    pub(crate) ok: bool,
    /// Forgotten nodes (CLUSTER FORGET) and until when gossip may not re-add them (ms).
    pub(crate) blacklist: HashMap<NodeId, i64>,
    /// The config file needs rewriting.
    pub(crate) dirty: bool,
    pub(crate) stats: MsgStats,
    pub(crate) election: Option<Election>,
    /// Our writes are paused for a replica's manual failover.
    pub(crate) manual_pause: Option<ManualPause>,
    /// `cluster-require-full-coverage`.
    pub(crate) full_coverage: bool,
    /// Per-owner ranges and counts (see [`SlotIndex`]).
    slot_index: std::cell::RefCell<SlotIndex>,
    /// Bumped by every slot assignment (invalidates `slot_index`).
    slots_version: u64,
    /// Requests to the bus's cron task (broadcasts, an early run); `None` until the bus runs.
    pub(crate) outbox: Option<tokio::sync::mpsc::UnboundedSender<Outgoing>>,
    /// Slots that left the shard this node serves since [`super::sync_role`] last ran: their
    /// shard channels are to be dropped.
    pub(crate) lost_slots: Vec<u16>,
}

/// What code running under the store lock asks of the bus's cron task, which owns the links.
#[derive(Debug, Clone)]
pub(crate) enum Outgoing {
    /// Send this to every node now (a PUBLISH, a FAIL, a PING announcing a new role).
    Broadcast(Kind),
    /// Send this to one node now.
    Send(NodeId, Kind),
    /// Run the periodic checks now rather than at the next tick (a node was just marked
    /// FAIL: a replica of it starts its election without waiting).
    Wake,
}

/// How many ms a forgotten node stays out of gossip (Redis: 60 s).
pub(crate) const FORGET_TTL_MS: i64 = 60_000;

impl ClusterState {
    /// A fresh node that knows only itself.
    pub(crate) fn new(
        myid: NodeId,
        ip: &str,
        port: u16,
        cport: u16,
        config_file: PathBuf,
        node_timeout: i64,
        now: i64,
    ) -> ClusterState {
        let mut me = ClusterNode::new(myid.clone(), ip, port, cport, now);
        me.myself = true;
        let mut nodes = IndexMap::new();
        nodes.insert(myid.clone(), me);
        ClusterState {
            myid,
            current_epoch: 0,
            last_vote_epoch: 0,
            nodes,
            owner: vec![None; SLOTS],
            importing: BTreeMap::new(),
            migrating: BTreeMap::new(),
            node_timeout,
            config_file,
            ok: false,
            blacklist: HashMap::new(),
            dirty: true,
            stats: MsgStats::default(),
            election: None,
            manual_pause: None,
            full_coverage: true,
            outbox: None,
            slot_index: std::cell::RefCell::new(SlotIndex {
                version: u64::MAX,
                ..SlotIndex::default()
            }),
            slots_version: 0,
            lost_slots: Vec::new(),
        }
    }

    /// This node.
    pub(crate) fn me(&self) -> &ClusterNode {
        &self.nodes[&self.myid]
    }
    /// This node, mutably.
    pub(crate) fn me_mut(&mut self) -> &mut ClusterNode {
        let id = self.myid.clone();
        self.nodes
            .get_mut(&id)
            .expect("myself is always in the table")
    }
    /// The node owning `slot`.
    pub(crate) fn owner_of(&self, slot: u16) -> Option<&ClusterNode> {
        self.owner[usize::from(slot)]
            .as_ref()
            .and_then(|id| self.nodes.get(id))
    }
    /// The slot index, rebuilt first if the slot table changed since.
    fn index(&self) -> std::cell::Ref<'_, SlotIndex> {
        if self.slot_index.borrow().version != self.slots_version {
            *self.slot_index.borrow_mut() = SlotIndex::build(&self.owner, self.slots_version);
        }
        self.slot_index.borrow()
    }
    /// Slots owned by `id`, in order.
    pub(crate) fn slots_of(&self, id: &str) -> Vec<u16> {
        self.ranges_of(id)
            .into_iter()
            .flat_map(|(a, b)| a..=b)
            .collect()
    }
    /// Slots owned by `id` as inclusive ranges.
    pub(crate) fn ranges_of(&self, id: &str) -> Vec<(u16, u16)> {
        self.index().ranges.get(id).cloned().unwrap_or_default()
    }
    /// True when `id` owns exactly the slots `claimed` (inclusive ranges, in order).
    pub(crate) fn owns_exactly(&self, id: &str, claimed: &[(u16, u16)]) -> bool {
        let index = self.index();
        let mine = index.ranges.get(id).map_or(&[][..], Vec::as_slice);
        mine == claimed
    }
    /// Number of slots `id` owns.
    pub(crate) fn slot_count(&self, id: &str) -> usize {
        self.index().counts.get(id).copied().unwrap_or(0)
    }
    /// Number of slots with an owner.
    pub(crate) fn assigned(&self) -> usize {
        self.index().assigned
    }
    /// The master whose slots this node serves: itself, or the master it replicates.
    pub(crate) fn my_master_id(&self) -> NodeId {
        self.me()
            .master_of
            .clone()
            .unwrap_or_else(|| self.myid.clone())
    }
    /// Masters owning at least one slot (Redis's `cluster->size`).
    pub(crate) fn size(&self) -> usize {
        self.index().counts.len()
    }
    /// Votes or reports needed for a decision: a majority of the slot-owning masters.
    pub(crate) fn quorum(&self) -> usize {
        self.size() / 2 + 1
    }
    /// The replicas of `master`, in table order.
    pub(crate) fn replicas_of(&self, master: &str) -> Vec<&ClusterNode> {
        self.nodes
            .values()
            .filter(|n| n.master_of.as_deref() == Some(master))
            .collect()
    }
    /// Assigns `slot` to `id` (None = unassigned).
    pub(crate) fn set_owner(&mut self, slot: u16, id: Option<NodeId>) {
        // A slot leaves our shard when its owner was the master we serve and the new owner
        // is another node (a replica promoted in its master's place keeps the slot's
        // channels, as in Redis, where it is no longer its old master's replica by then).
        let new = id.as_deref();
        let leaves = new != Some(self.myid.as_str())
            && self.owner[usize::from(slot)].as_deref() != new
            && self.serves(self.owner[usize::from(slot)].as_deref());
        if leaves {
            self.lost_slots.push(slot);
        }
        self.owner[usize::from(slot)] = id;
        self.dirty = true;
        self.slots_version += 1;
    }
    /// Unassigns every slot (CLUSTER RESET).
    pub(crate) fn clear_owners(&mut self) {
        for slot in 0..SLOTS as u16 {
            self.set_owner(slot, None);
        }
    }
    /// True if `owner` is the master whose slots this node serves (itself or its master).
    fn serves(&self, owner: Option<&str>) -> bool {
        // While the config file loads, myself may not be in the table yet: nothing is
        // served then.
        let Some(me) = self.nodes.get(&self.myid) else {
            return false;
        };
        owner == Some(me.master_of.as_deref().unwrap_or(&self.myid))
    }
    /// The slots of the master we serve (ourselves or our master), as ranges: what every
    /// bus message of ours claims.
    pub(crate) fn header_slots(&self) -> Vec<(u16, u16)> {
        self.ranges_of(&self.my_master_id())
    }
    /// Makes the config epoch of this node unique-ish: a new, higher epoch than any seen.
    pub(crate) fn bump_my_epoch(&mut self) -> u64 {
        self.current_epoch += 1;
        let e = self.current_epoch;
        self.me_mut().config_epoch = e;
        self.dirty = true;
        e
    }
    /// The highest config epoch of any node.
    pub(crate) fn max_config_epoch(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| n.config_epoch)
            .max()
            .unwrap_or(0)
    }
    /// Recomputes `cluster_state`: ok when every slot is served by a master not marked FAIL
    /// (unless full coverage is not required) and we are not cut off from the majority.
    pub(crate) fn update_state(&mut self) {
        let index = self.index();
        let covered = index.assigned == SLOTS
            && index
                .counts
                .keys()
                .all(|id| self.nodes.get(id).is_some_and(|n| !n.fail));
        let ok = !self.full_coverage || covered;
        // A master in a minority partition stops serving (Redis: reachable masters < quorum).
        let size = index.counts.len();
        let reachable = index
            .counts
            .keys()
            .filter_map(|id| self.nodes.get(id))
            .filter(|n| n.is_master() && !n.pfail && !n.fail)
            .count();
        drop(index);
        let majority = size == 0 || reachable > size / 2;
        self.ok = ok && majority && size > 0;
    }
    /// Removes a node and everything that points at it (FORGET, a failed handshake).
    pub(crate) fn remove_node(&mut self, id: &str) {
        self.nodes.shift_remove(id);
        for o in self.owner.iter_mut() {
            if o.as_deref() == Some(id) {
                *o = None;
            }
        }
        self.slots_version += 1;
        self.importing.retain(|_, v| v != id);
        self.migrating.retain(|_, v| v != id);
        for n in self.nodes.values_mut() {
            n.fail_reports.remove(id);
            if n.master_of.as_deref() == Some(id) {
                n.master_of = None;
            }
        }
        self.dirty = true;
    }
    /// Asks the bus's cron task for `what` (dropped when the bus is not running: tests).
    pub(crate) fn tell_bus(&self, what: Outgoing) {
        if let Some(tx) = &self.outbox {
            let _ = tx.send(what);
        }
    }
    /// A node with address `ip:port` (real or in handshake), if known.
    pub(crate) fn by_addr(&self, ip: &str, port: u16) -> Option<&ClusterNode> {
        self.nodes.values().find(|n| n.ip == ip && n.port == port)
    }
}

/// A random node id (40 hex characters).
pub(crate) fn random_id() -> NodeId {
    let mut id = crate::node::repl::new_replid();
    id.truncate(40);
    id
}

/// Marks `id` FAIL (a FAIL message, or our own decision).
pub(crate) fn mark_failed(c: &mut ClusterState, id: &str, now: i64) {
    if id == c.myid {
        return;
    }
    if let Some(n) = c.nodes.get_mut(id) {
        if !n.fail {
            n.fail = true;
            n.pfail = false;
            n.fail_time = now;
            c.dirty = true;
            // A replica of it starts its election without waiting for the next tick.
            c.tell_bus(Outgoing::Wake);
            tracing::info!(node = id, "cluster: node marked FAIL");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_quorum() {
        let mut c = ClusterState::new(random_id(), "127.0.0.1", 1, 2, "x".into(), 1000, 0);
        let other = random_id();
        for s in [1, 2, 3, 7, 9, 10, 16383] {
            c.set_owner(s, Some(other.clone()));
        }
        assert_eq!(
            c.ranges_of(&other),
            vec![(1, 3), (7, 7), (9, 10), (16383, 16383)]
        );
        assert_eq!(c.slot_count(&other), 7);
        assert!(c.owns_exactly(&other, &[(1, 3), (7, 7), (9, 10), (16383, 16383)]));
        assert!(!c.owns_exactly(&other, &[(1, 3)]));
        c.set_owner(2, None);
        assert_eq!(c.slots_of(&other), vec![1, 3, 7, 9, 10, 16383]);
        c.clear_owners();
        assert_eq!(c.size(), 0);
        let me = c.myid.clone();
        c.set_owner(5, Some(me.clone()));
        assert_eq!(c.size(), 1);
        assert_eq!(c.quorum(), 1);
        assert_eq!(c.ranges_of(&me), vec![(5, 5)]);
        c.full_coverage = false;
        c.update_state();
        assert!(c.ok);
        c.full_coverage = true;
        c.update_state();
        assert!(!c.ok, "slots uncovered");
    }

    #[test]
    fn slots_leaving_our_shard_are_noted_for_their_channels() {
        let mut c = ClusterState::new(random_id(), "127.0.0.1", 1, 2, "x".into(), 1000, 0);
        let (me, other, master) = (c.myid.clone(), random_id(), random_id());
        c.set_owner(1, Some(me.clone()));
        c.set_owner(2, Some(other.clone()));
        c.set_owner(1, Some(me.clone()));
        // Another master's slot moving is none of our business.
        c.set_owner(2, Some(master.clone()));
        assert!(c.lost_slots.is_empty());
        c.set_owner(1, Some(other.clone()));
        assert_eq!(std::mem::take(&mut c.lost_slots), vec![1]);
        // As a replica: our master's slots are ours, until we are promoted in its place.
        c.me_mut().master_of = Some(master.clone());
        c.set_owner(3, Some(master.clone()));
        c.set_owner(2, None);
        c.set_owner(3, Some(me.clone()));
        assert_eq!(std::mem::take(&mut c.lost_slots), vec![2]);
    }
}
