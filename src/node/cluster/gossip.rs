//! What a node does with bus messages (all under the store lock): learn nodes, adopt
//! epochs, apply slot claims by config epoch, collect failure reports, answer votes.

use super::proto::{Gossip, Header, Kind, Pong, Request, Update};
use super::state::{mark_failed, ClusterNode, ClusterState, NodeId, Outgoing};

/// Our header, with our replication offset.
pub(crate) fn header(c: &ClusterState, offset: i64, manual: bool) -> Header {
    let me = c.me();
    let master = me.master_of.as_ref().and_then(|m| c.nodes.get(m));
    let slots_epoch = master.map_or(me.config_epoch, |m| m.config_epoch);
    let slots = c.header_slots();
    Header {
        id: me.id.clone(),
        ip: if me.ip == "0.0.0.0" || me.ip == "::" {
            String::new()
        } else {
            me.ip.clone()
        },
        port: me.port,
        cport: me.cport,
        replica: me.replica,
        master: me.master_of.clone(),
        current_epoch: c.current_epoch,
        config_epoch: me.config_epoch,
        slots,
        slots_epoch,
        offset,
        manual,
        paused: c.manual_pause.is_some(),
    }
}

/// Gossip about every node but ourselves, `to` and nodes still in handshake.
pub(crate) fn gossip(c: &ClusterState, to: &str) -> Vec<Gossip> {
    c.nodes
        .values()
        .filter(|n| !n.myself && !n.handshake && n.id != to)
        .map(|n| Gossip {
            id: n.id.clone(),
            ip: n.ip.clone(),
            port: n.port,
            cport: n.cport,
            pfail: n.pfail,
            fail: n.fail,
        })
        .collect()
}

/// Handles a request from a peer at `peer_ip` and builds the answer.
pub(crate) fn on_request(
    c: &mut ClusterState,
    peer_ip: &str,
    req: Request,
    offset: i64,
    now: i64,
) -> Pong {
    *c.stats.received.entry(req.kind.stat()).or_default() += 1;
    let mut h = req.h;
    if h.ip.is_empty() {
        h.ip = peer_ip.to_string();
    }
    if matches!(req.kind, Kind::Meet) && !c.nodes.contains_key(&h.id) && h.id != c.myid {
        c.blacklist.remove(&h.id);
        let mut n = ClusterNode::new(h.id.clone(), &h.ip, h.port, h.cport, now);
        n.replica = h.replica;
        c.nodes.insert(h.id.clone(), n);
        c.dirty = true;
    }
    let mut updates = Vec::new();
    let mut ack = None;
    if c.nodes.contains_key(&h.id) && h.id != c.myid {
        updates = on_header(c, &h, now);
        on_gossip(c, &h.id, &req.gossip, now);
        match &req.kind {
            Kind::Fail(id) => mark_failed(c, id, now),
            Kind::AuthRequest => ack = super::failover::vote(c, &h, now),
            Kind::MfStart => super::manual::pause_for(c, &h.id, now),
            Kind::Ping | Kind::Meet | Kind::Publish(..) => {}
        }
    }
    *c.stats.sent.entry("pong").or_default() += 1;
    Pong {
        h: header(c, offset, false),
        gossip: gossip(c, &h.id),
        updates,
        ack,
    }
}

/// Handles the answer from the node we know as `pinged` (a placeholder id while in
/// handshake).
pub(crate) fn on_pong(c: &mut ClusterState, pinged: &str, peer_ip: &str, pong: Pong, now: i64) {
    *c.stats.received.entry("pong").or_default() += 1;
    let mut h = pong.h;
    if h.ip.is_empty() {
        h.ip = peer_ip.to_string();
    }
    if h.id == c.myid {
        // We met ourselves (MEET of our own address): forget the placeholder.
        if pinged != c.myid {
            c.nodes.shift_remove(pinged);
        }
        return;
    }
    if pinged != h.id {
        // Handshake done: the placeholder becomes the real node (or goes, if known already).
        let Some(mut n) = c.nodes.shift_remove(pinged) else {
            return;
        };
        if !c.nodes.contains_key(&h.id) {
            n.id = h.id.clone();
            n.handshake = false;
            c.nodes.insert(h.id.clone(), n);
        }
        c.dirty = true;
    }
    if let Some(n) = c.nodes.get_mut(&h.id) {
        n.ping_sent = 0;
        n.connected = true;
    }
    let _ = on_header(c, &h, now);
    on_gossip(c, &h.id, &pong.gossip, now);
    for u in pong.updates {
        apply_update(c, &u);
    }
    if let Some(epoch) = pong.ack {
        super::failover::count_vote(c, &h.id, epoch);
    }
}

/// Applies what a known node says about itself; returns UPDATEs for slots it claims that a
/// newer configuration gives to someone else.
fn on_header(c: &mut ClusterState, h: &Header, now: i64) -> Vec<Update> {
    if h.current_epoch > c.current_epoch {
        c.current_epoch = h.current_epoch;
        c.dirty = true;
    }
    let timeout = c.node_timeout;
    let Some(n) = c.nodes.get_mut(&h.id) else {
        return Vec::new();
    };
    n.pong_recv = now;
    n.pfail = false;
    n.fail_reports.clear();
    n.repl_offset = h.offset;
    if h.paused {
        super::manual::master_paused(c, &h.id, h.offset);
    }
    let Some(n) = c.nodes.get_mut(&h.id) else {
        return Vec::new();
    };
    if !n.handshake && (n.ip != h.ip || n.port != h.port || n.cport != h.cport) {
        n.ip = h.ip.clone();
        n.port = h.port;
        n.cport = h.cport;
        c.dirty = true;
    }
    let n = c.nodes.get_mut(&h.id).expect("present");
    if n.config_epoch != h.config_epoch {
        n.config_epoch = h.config_epoch;
        c.dirty = true;
    }
    if n.replica != h.replica || n.master_of != h.master {
        n.replica = h.replica;
        n.master_of = h.master.clone();
        c.dirty = true;
    }
    let was_failed = n.fail;
    let id = h.id.clone();
    if was_failed {
        // Redis's clearNodeFailureIfNeeded: replicas and slotless masters at once, a master
        // with slots only after twice the node timeout (nobody took its slots meanwhile).
        let slots = c.slot_count(&id);
        let n = c.nodes.get_mut(&id).expect("present");
        if n.replica || slots == 0 || now - n.fail_time > timeout * 2 {
            n.fail = false;
            c.dirty = true;
        }
    }
    if h.replica {
        return Vec::new();
    }
    epoch_collision(c, h);
    update_slots(c, &id, h.config_epoch, &h.slots)
}

/// Redis's configEpoch collision handling: two masters with the same config epoch: the one
/// with the lower node id takes a new, higher epoch.
fn epoch_collision(c: &mut ClusterState, h: &Header) {
    let me = c.me();
    if me.replica || me.config_epoch != h.config_epoch || h.id.as_str() <= c.myid.as_str() {
        return;
    }
    c.bump_my_epoch();
}

/// Applies `sender`'s claim of `claimed` slots at `epoch`: a slot moves to it when its owner's
/// epoch is older. Returns UPDATEs about owners whose epoch is newer than the claim.
pub(crate) fn update_slots(
    c: &mut ClusterState,
    sender: &str,
    epoch: u64,
    claimed: &[(u16, u16)],
) -> Vec<Update> {
    // The common case, several times a second per node: nothing new. Checked first because
    // the full pass below counts slots (whole-table scans).
    let known = c.owns_exactly(sender, claimed)
        || claimed.iter().all(|&(a, b)| {
            (a..=b.min(16383)).all(|s| c.owner[usize::from(s)].as_deref() == Some(sender))
        });
    if known {
        return Vec::new();
    }
    let my_master = c.my_master_id();
    let had = c.slot_count(&my_master);
    let mut stale: Vec<NodeId> = Vec::new();
    let mut changed = false;
    for &(a, b) in claimed {
        for slot in a..=b.min(16383) {
            let cur = c.owner[usize::from(slot)].clone();
            if cur.as_deref() == Some(sender) || c.importing.contains_key(&slot) {
                continue;
            }
            let cur_epoch = cur
                .as_ref()
                .and_then(|id| c.nodes.get(id))
                .map(|n| n.config_epoch);
            match cur_epoch {
                Some(e) if e > epoch => {
                    if let Some(id) = cur {
                        if !stale.contains(&id) {
                            stale.push(id);
                        }
                    }
                }
                Some(e) if e == epoch && cur.is_some() => {}
                _ => {
                    c.set_owner(slot, Some(sender.to_string()));
                    changed = true;
                }
            }
        }
    }
    if changed && had > 0 && c.slot_count(&my_master) == 0 && sender != c.myid {
        // Our master (or we) lost its last slot to `sender`: follow the slots.
        let me = c.me_mut();
        me.replica = true;
        me.master_of = Some(sender.to_string());
        c.migrating.clear();
        c.dirty = true;
    }
    stale
        .into_iter()
        .filter_map(|id| {
            let n = c.nodes.get(&id)?;
            Some(Update {
                config_epoch: n.config_epoch,
                slots: c.ranges_of(&id),
                id,
            })
        })
        .collect()
}

/// An UPDATE: `u.id` owns `u.slots` at `u.config_epoch`.
fn apply_update(c: &mut ClusterState, u: &Update) {
    let Some(n) = c.nodes.get_mut(&u.id) else {
        return;
    };
    if n.config_epoch < u.config_epoch {
        n.config_epoch = u.config_epoch;
    }
    let epoch = n.config_epoch;
    let _ = update_slots(c, &u.id, epoch, &u.slots);
}

/// Learns unknown nodes and collects failure reports from a master's gossip.
fn on_gossip(c: &mut ClusterState, sender: &str, gossip: &[Gossip], now: i64) {
    let sender_is_master = c.nodes.get(sender).is_some_and(|n| n.is_master());
    for g in gossip {
        if g.id == c.myid {
            continue;
        }
        if let Some(n) = c.nodes.get_mut(&g.id) {
            if sender_is_master {
                if g.pfail || g.fail {
                    n.fail_reports.insert(sender.to_string(), now);
                    // Decide now rather than at the next cron tick (Redis does the same).
                    if super::failover::fail_if_agreed(c, &g.id, now) {
                        c.tell_bus(Outgoing::Broadcast(Kind::Fail(g.id.clone())));
                    }
                } else {
                    n.fail_reports.remove(sender);
                }
            }
            continue;
        }
        let blocked = c.blacklist.get(&g.id).is_some_and(|&until| until > now);
        if blocked || g.fail || c.by_addr(&g.ip, g.port).is_some() {
            continue;
        }
        c.nodes.insert(
            g.id.clone(),
            ClusterNode::new(g.id.clone(), &g.ip, g.port, g.cport, now),
        );
        c.dirty = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::cluster::state::random_id;

    fn node(port: u16) -> ClusterState {
        ClusterState::new(
            random_id(),
            "127.0.0.1",
            port,
            port + 1,
            "x".into(),
            1000,
            0,
        )
    }

    #[test]
    fn newer_epoch_wins_slots_and_stale_claims_get_updates() {
        let mut a = node(1);
        let b = node(3);
        let meet = Request {
            kind: Kind::Meet,
            h: header(&b, 0, false),
            gossip: vec![],
        };
        on_request(&mut a, "127.0.0.1", meet, 0, 0);
        assert_eq!(a.nodes.len(), 2);
        let bid = b.myid.clone();
        assert!(update_slots(&mut a, &bid, 0, &[(0, 9)]).is_empty());
        assert_eq!(a.slot_count(&bid), 10);
        // A third node claiming the same slots with a newer epoch takes them.
        let cid = random_id();
        a.nodes.insert(
            cid.clone(),
            ClusterNode::new(cid.clone(), "127.0.0.1", 5, 6, 0),
        );
        a.nodes.get_mut(&cid).expect("c").config_epoch = 2;
        assert!(update_slots(&mut a, &cid, 2, &[(0, 4)]).is_empty());
        assert_eq!(a.slot_count(&cid), 5);
        // B's stale claim does not win them back and gets an UPDATE about C.
        let ups = update_slots(&mut a, &bid, 0, &[(0, 9)]);
        assert_eq!(ups.len(), 1);
        assert_eq!(ups[0].id, cid);
        assert_eq!(a.slot_count(&cid), 5);
    }

    #[test]
    fn equal_epochs_make_the_lower_id_bump() {
        let mk =
            |id: &str| ClusterState::new(id.repeat(40), "127.0.0.1", 1, 2, "x".into(), 1000, 0);
        let (mut a, mut b) = (mk("1"), mk("2"));
        // a (lower id) hears b at the same epoch 0: a bumps; b hearing a does not.
        epoch_collision(&mut a, &header(&b, 0, false));
        assert_eq!(a.me().config_epoch, 1);
        a.me_mut().config_epoch = 0;
        epoch_collision(&mut b, &header(&a, 0, false));
        assert_eq!(b.me().config_epoch, 0);
    }
}
