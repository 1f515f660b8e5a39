//! The failover state machine, one step per tick of the group (Redis's states and events):
//!
//! `wait_start` (elected?) → `select_slave` → `send_slaveof_noone` → `wait_promotion`
//! (INFO says master) → `reconf_slaves` (REPLICAOF to the others, `parallel-syncs` at a time)
//! → `+failover-end`, `+switch-master`. Each step is bounded by `failover-timeout`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::election;
use super::link::{self, Auth};
use super::observe;
use super::state::{Addr, Failover, Master, Node, Role, State, Step, Target};
use super::Shared;

/// Redis gives up an election after at most this long.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// A replica told to follow the new master that has not done so by then counts as done.
const RECONF_TIMEOUT: Duration = Duration::from_secs(10);

/// The address clients should use: the promoted replica once it is master.
pub(crate) fn current_master_addr(m: &Master) -> Addr {
    match &m.failover {
        Some(Failover {
            step: Step::ReconfSlaves,
            promoted: Some(p),
            ..
        }) => p.clone(),
        _ => m.addr().clone(),
    }
}

/// Starts a failover attempt of `group` in a new epoch (`+new-epoch`, `+try-failover`).
pub(crate) fn start(st: &mut State, group: &str, forced: bool) {
    let epoch = st.current_epoch + 1;
    st.observe_epoch(epoch);
    let Some(m) = st.masters.get_mut(group) else {
        return;
    };
    let now = Instant::now();
    m.failover = Some(Failover {
        epoch,
        step: Step::WaitStart,
        step_since: now,
        forced,
        promoted: None,
    });
    m.failover_start = Some(now);
    // Ask the others for their votes at once.
    m.last_ask = None;
    let text = m.describe();
    st.dirty = true;
    st.event("+try-failover", text);
}

/// True when a new automatic failover of `m` may start (2 × failover-timeout after the last).
pub(crate) fn may_start(m: &Master, now: Instant) -> bool {
    m.failover.is_none()
        && m.failover_start
            .is_none_or(|t| now.saturating_duration_since(t) > m.config.failover_timeout * 2)
}

fn set_step(st: &mut State, group: &str, step: Step, event: Option<(&str, String)>) {
    if let Some(f) = st.masters.get_mut(group).and_then(|m| m.failover.as_mut()) {
        f.step = step;
        f.step_since = Instant::now();
    }
    if let Some((kind, text)) = event {
        st.event(kind, text);
    }
}

fn abort(st: &mut State, group: &str, why: &str) {
    let Some(m) = st.masters.get_mut(group) else {
        return;
    };
    m.failover = None;
    for r in m.replicas.values_mut() {
        r.reconf_sent = None;
        r.reconf_inprog = false;
        r.reconf_done = false;
    }
    let text = m.describe();
    st.event(why, text);
}

/// Runs one step of `group`'s failover, if one is in progress.
pub(crate) fn step(sh: &Arc<Shared>, st: &mut State, group: &str) {
    let Some(m) = st.masters.get(group) else {
        return;
    };
    let Some(f) = m.failover.clone() else { return };
    let in_step = Instant::now().saturating_duration_since(f.step_since);
    let timed_out = in_step > m.config.failover_timeout;
    match f.step {
        Step::WaitStart => wait_start(st, group, &f, in_step),
        Step::SelectSlave => select_slave(st, group),
        Step::SendSlaveofNoone => send_slaveof_noone(sh, st, group, &f, timed_out),
        Step::WaitPromotion => wait_promotion(st, group, &f, timed_out),
        Step::ReconfSlaves => reconf_replicas(sh, st, group, &f, timed_out),
    }
}

/// Elected (or forced)? Then on to choosing a replica; not elected in time: abort.
fn wait_start(st: &mut State, group: &str, f: &Failover, in_step: Duration) {
    let elected =
        f.forced || election::leader(st, group, f.epoch).as_deref() == Some(st.myid.as_str());
    let Some(m) = st.masters.get(group) else {
        return;
    };
    if !elected {
        if in_step > m.config.failover_timeout.min(ELECTION_TIMEOUT) {
            abort(st, group, "-failover-abort-not-elected");
        }
        return;
    }
    let text = m.describe();
    st.event("+elected-leader", text.clone());
    set_step(
        st,
        group,
        Step::SelectSlave,
        Some(("+failover-state-select-slave", text)),
    );
}

fn select_slave(st: &mut State, group: &str) {
    let Some(m) = st.masters.get(group) else {
        return;
    };
    let Some(a) = select_replica(m, Instant::now()) else {
        return abort(st, group, "-failover-abort-no-good-slave");
    };
    let text = m.describe_replica(&a);
    if let Some(f) = st.masters.get_mut(group).and_then(|m| m.failover.as_mut()) {
        f.promoted = Some(a);
    }
    st.event("+selected-slave", text.clone());
    set_step(
        st,
        group,
        Step::SendSlaveofNoone,
        Some(("+failover-state-send-slaveof-noone", text)),
    );
}

fn send_slaveof_noone(
    sh: &Arc<Shared>,
    st: &mut State,
    group: &str,
    f: &Failover,
    timed_out: bool,
) {
    let Some(m) = st.masters.get(group) else {
        return;
    };
    let Some(p) = f.promoted.clone() else {
        return abort(st, group, "-failover-abort-no-good-slave");
    };
    if !m.replicas.get(&p).is_some_and(|r| r.node.link_up) {
        if timed_out {
            abort(st, group, "-failover-abort-slave-timeout");
        }
        return;
    }
    replicaof(sh, m, &p, None);
    let text = m.describe_replica(&p);
    set_step(
        st,
        group,
        Step::WaitPromotion,
        Some(("+failover-state-wait-promotion", text)),
    );
}

/// The promoted replica's INFO (asked after the order) says master: the group's config
/// epoch becomes the failover's, and the other replicas are reconfigured next.
fn wait_promotion(st: &mut State, group: &str, f: &Failover, timed_out: bool) {
    let Some(m) = st.masters.get_mut(group) else {
        return;
    };
    let Some(p) = f.promoted.clone() else { return };
    let promoted = m.replicas.get(&p).is_some_and(|r| {
        r.node.role == Role::Master && r.node.info_refresh.is_some_and(|t| t > f.step_since)
    });
    if !promoted {
        if timed_out {
            abort(st, group, "-failover-abort-slave-timeout");
        }
        return;
    }
    let (text, master_text) = (m.describe_replica(&p), m.describe());
    m.config.config_epoch = f.epoch;
    // The others learn the new master from our hello at once: with the failover in
    // `reconf_slaves` (set below, under the same lock) it names the promoted replica.
    m.force_hello();
    st.dirty = true;
    st.event("+promoted-slave", text);
    set_step(
        st,
        group,
        Step::ReconfSlaves,
        Some(("+failover-state-reconf-slaves", master_text)),
    );
}

/// The replica to promote: reachable, recently heard from, priority not 0; then lowest
/// priority, highest offset, smallest run id.
pub(crate) fn select_replica(m: &Master, now: Instant) -> Option<Addr> {
    let info_validity = if m.node.is_sdown() {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(30)
    };
    let max_link_down = m
        .node
        .sdown_since
        .map(|t| now.saturating_duration_since(t) + m.config.down_after * 10);
    let mut good: Vec<_> = m
        .replicas
        .values()
        .filter(|r| {
            let n = &r.node;
            !n.is_sdown()
                && n.link_up
                && now.saturating_duration_since(n.last_avail) < Duration::from_secs(5)
                && r.priority != 0
                && n.info_refresh
                    .is_some_and(|t| now.saturating_duration_since(t) < info_validity)
                && max_link_down.is_none_or(|max| r.master_link_down <= max)
        })
        .collect();
    good.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.offset.cmp(&a.offset))
            .then_with(|| match (&a.node.run_id, &b.node.run_id) {
                (Some(x), Some(y)) => x.cmp(y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
    });
    good.first().map(|r| r.node.addr.clone())
}

/// Points the replicas other than the promoted one at it, `parallel-syncs` at a time, and
/// ends the failover when all follow (or the timeout passed).
fn reconf_replicas(sh: &Arc<Shared>, st: &mut State, group: &str, f: &Failover, timed_out: bool) {
    let Some(promoted) = f.promoted.clone() else {
        return;
    };
    let Some(m) = st.masters.get_mut(group) else {
        return;
    };
    let now = Instant::now();
    let mut events = Vec::new();
    let mut in_flight = 0;
    for (a, r) in m.replicas.iter_mut() {
        if *a == promoted || r.reconf_done {
            continue;
        }
        let Some(sent) = r.reconf_sent else { continue };
        let follows = r.master_host.as_deref() == Some(promoted.host.as_str())
            && r.master_port == promoted.port;
        if follows && !r.reconf_inprog {
            r.reconf_inprog = true;
            events.push(("+slave-reconf-inprog", a.clone()));
        }
        if follows && r.master_link_up && r.node.info_refresh.is_some_and(|t| t > sent) {
            r.reconf_done = true;
            events.push(("+slave-reconf-done", a.clone()));
        } else if now.saturating_duration_since(sent) > RECONF_TIMEOUT {
            r.reconf_done = true;
        } else {
            in_flight += 1;
        }
    }
    let parallel = m.config.parallel_syncs.max(1) as usize;
    let pending: Vec<Addr> = m
        .replicas
        .iter()
        .filter(|(a, r)| {
            **a != promoted && r.reconf_sent.is_none() && !r.reconf_done && !r.node.is_sdown()
        })
        .map(|(a, _)| a.clone())
        .collect();
    let room = if timed_out {
        pending.len()
    } else {
        parallel.saturating_sub(in_flight)
    };
    for a in pending.iter().take(room) {
        replicaof(sh, m, a, Some(&promoted));
        if let Some(r) = m.replicas.get_mut(a) {
            r.reconf_sent = Some(now);
        }
        events.push(("+slave-reconf-sent", a.clone()));
    }
    let all_done = m
        .replicas
        .iter()
        .all(|(a, r)| *a == promoted || r.reconf_done || r.node.is_sdown());
    for (kind, a) in events {
        let text = m.describe_replica(&a);
        tracing::info!(target: "sluice::sentinel", "{kind} {text}");
        let _ = st.events.send((kind.to_string(), text));
    }
    if all_done || timed_out {
        let Some(m) = st.masters.get(group) else {
            return;
        };
        if timed_out && !all_done {
            st.event("+failover-end-for-timeout", m.describe());
        }
        st.event("+failover-end", m.describe());
        switch_master(sh, st, group, promoted);
    }
}

/// Sends REPLICAOF (or REPLICAOF NO ONE) to `target`, then rewrites its config and drops
/// its clients so they reconnect to the right master, as Redis's sentinel does.
pub(crate) fn replicaof(sh: &Arc<Shared>, m: &Master, target: &Addr, master: Option<&Addr>) {
    let auth = Auth {
        user: m.config.auth_user.clone(),
        pass: m.config.auth_pass.clone(),
    };
    let (host, port) = match master {
        Some(a) => (a.host.clone(), a.port.to_string()),
        None => ("NO".to_string(), "ONE".to_string()),
    };
    let target = target.clone();
    let name = format!("sentinel-{}-cmd", sh.short_id());
    let timeout = m
        .config
        .down_after
        .clamp(Duration::from_millis(500), Duration::from_secs(5));
    tokio::spawn(async move {
        let cmds: Vec<Vec<&[u8]>> = vec![
            vec![b"MULTI"],
            vec![b"REPLICAOF", host.as_bytes(), port.as_bytes()],
            vec![b"CONFIG", b"REWRITE"],
            vec![b"CLIENT", b"KILL", b"TYPE", b"normal"],
            vec![b"CLIENT", b"KILL", b"TYPE", b"pubsub"],
            vec![b"EXEC"],
        ];
        if let Err(e) = link::once(&target, &auth, &name, timeout, &cmds).await {
            tracing::debug!(target: "sluice::sentinel", %target, "REPLICAOF {host} {port}: {e}");
        }
    });
}

/// Makes `new` the group's master (`+switch-master`): the old master and the other
/// replicas become its replicas, watched afresh.
pub(crate) fn switch_master(sh: &Arc<Shared>, st: &mut State, group: &str, new: Addr) {
    let Some(m) = st.masters.get_mut(group) else {
        return;
    };
    let old = m.addr().clone();
    let mut replicas: Vec<Addr> = m.replicas.keys().filter(|a| **a != new).cloned().collect();
    if old != new && !replicas.contains(&old) {
        replicas.push(old.clone());
    }
    let text = format!(
        "{group} {} {} {} {}",
        old.host, old.port, new.host, new.port
    );
    m.failover = None;
    m.odown_since = None;
    m.start_after = None;
    m.last_ask = None;
    // The others' answers were about the old master: they must not count for the new one.
    for p in m.sentinels.values_mut() {
        p.master_down = false;
        p.master_down_at = None;
    }
    m.replicas.clear();
    m.node = Node::new(new);
    sh.announce(group, Target::Master);
    for a in &replicas {
        observe::add_replica(sh, m, a);
    }
    m.force_hello();
    st.dirty = true;
    st.event("+switch-master", text);
    let Some(m) = st.masters.get(group) else {
        return;
    };
    let texts: Vec<String> = replicas.iter().map(|a| m.describe_replica(a)).collect();
    for t in texts {
        st.event("+slave", t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::sentinel::config::MasterConfig;
    use crate::node::sentinel::state::Replica;

    fn replica(port: u16, priority: u32, offset: u64, run_id: &str) -> Replica {
        let mut r = Replica::new(Addr::new("127.0.0.1", port));
        r.node.link_up = true;
        r.node.info_refresh = Some(Instant::now());
        r.node.run_id = Some(run_id.to_string());
        r.priority = priority;
        r.offset = offset;
        r
    }

    fn group(replicas: Vec<Replica>) -> Master {
        let mut m = Master::new(MasterConfig::new("m", "127.0.0.1", 1, 1));
        for r in replicas {
            m.replicas.insert(r.node.addr.clone(), r);
        }
        m
    }

    fn pick(m: &Master) -> Option<u16> {
        select_replica(m, Instant::now()).map(|a| a.port)
    }

    #[test]
    fn the_best_replica_is_lowest_priority_then_highest_offset_then_smallest_run_id() {
        let mut m = group(vec![replica(2, 100, 50, "b"), replica(3, 10, 10, "c")]);
        assert_eq!(pick(&m), Some(3), "lower priority first");
        m.replicas.values_mut().for_each(|r| r.priority = 100);
        assert_eq!(pick(&m), Some(2), "then the higher offset");
        let m2 = group(vec![replica(2, 100, 50, "b"), replica(4, 100, 50, "a")]);
        assert_eq!(pick(&m2), Some(4), "then the smaller run id");
    }

    #[test]
    fn unusable_replicas_are_never_promoted() {
        let mut zero = replica(2, 0, 99, "a");
        zero.priority = 0;
        let mut down = replica(3, 1, 99, "a");
        down.node.sdown_since = Some(Instant::now());
        let mut gone = replica(4, 1, 99, "a");
        gone.node.link_up = false;
        let mut stale = replica(5, 1, 99, "a");
        stale.node.info_refresh = None;
        let m = group(vec![zero, down, gone, stale]);
        assert_eq!(pick(&m), None);
        let m = group(vec![replica(6, 100, 0, "z")]);
        assert_eq!(pick(&m), Some(6));
    }
}
