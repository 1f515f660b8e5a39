//! The periodic checks of every group (10 times a second): subjective and objective down,
//! asking the other sentinels, starting and driving failovers, correcting replicas that
//! follow the wrong master, and writing the config file when the state changed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::config;
use super::failover;
use super::ids;
use super::link::{self, Auth};
use super::state::{Master, Role, State};
use super::Shared;
use crate::resp::Frame;

const TICK: Duration = Duration::from_millis(100);
/// The other sentinels are asked whether the master is down this often while it is SDOWN.
const ASK_PERIOD: Duration = Duration::from_secs(1);
/// An answer older than this no longer counts towards ODOWN.
const ANSWER_VALIDITY: Duration = Duration::from_secs(5);
/// A replica that reports the wrong role or master for this long is corrected.
const FIX_AFTER: Duration = Duration::from_secs(4);
/// Longest random delay between ODOWN and this sentinel's failover attempt.
const START_DESYNC: Duration = Duration::from_millis(1000);

/// Runs the checks until `token` is cancelled.
pub(crate) async fn run(sh: Arc<Shared>, token: CancellationToken) {
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        let write = {
            let mut st = sh.lock();
            let groups: Vec<String> = st.masters.keys().cloned().collect();
            for g in &groups {
                check(&sh, &mut st, g);
            }
            let dirty = std::mem::take(&mut st.dirty);
            match &st.config.path {
                Some(path) if dirty => Some((path.clone(), config::render(&st.snapshot_config()))),
                _ => None,
            }
        };
        if let Some((path, text)) = write {
            if let Err(e) = write_config(&path, &text).await {
                tracing::warn!(target: "sluice::sentinel", path = %path.display(), "cannot rewrite the config: {e}");
            }
        }
    }
}

/// Writes the file through a temporary one and a rename, so a crash never leaves half a file.
pub(crate) async fn write_config(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp-sluice");
    tokio::fs::write(&tmp, text).await?;
    tokio::fs::rename(&tmp, path).await
}

fn check(sh: &Arc<Shared>, st: &mut State, group: &str) {
    sdown(st, group);
    odown(st, group);
    ask_others(sh, st, group);
    let now = Instant::now();
    let Some(m) = st.masters.get_mut(group) else {
        return;
    };
    if m.odown_since.is_some() && failover::may_start(m, now) {
        // Sentinels that see ODOWN together would all start in the same epoch and split
        // the vote; a random delay lets one ask first and the others vote for it.
        let at = *m
            .start_after
            .get_or_insert_with(|| now + ids::jitter(START_DESYNC));
        if now >= at {
            m.start_after = None;
            failover::start(st, group, false);
            ask_others(sh, st, group);
        }
    } else {
        m.start_after = None;
    }
    failover::step(sh, st, group);
    correct_replicas(sh, st, group);
}

/// SDOWN of the master, its replicas and the other sentinels (`+sdown` / `-sdown`).
fn sdown(st: &mut State, group: &str) {
    let now = Instant::now();
    let Some(m) = st.masters.get_mut(group) else {
        return;
    };
    let after = m.config.down_after;
    let mut events = Vec::new();
    if let Some(up) = flip(&mut m.node, now, after) {
        events.push((up, m.describe()));
    }
    let mut changed = Vec::new();
    for (a, r) in m.replicas.iter_mut() {
        if let Some(up) = flip(&mut r.node, now, after) {
            changed.push((up, a.clone()));
        }
    }
    for (up, a) in changed {
        events.push((up, m.describe_replica(&a)));
    }
    let mut peers = Vec::new();
    for (id, p) in m.sentinels.iter_mut() {
        if let Some(up) = flip(&mut p.node, now, after) {
            peers.push((up, id.clone(), p.node.addr.clone()));
        }
    }
    for (up, id, a) in peers {
        events.push((up, m.describe_sentinel(&id, &a)));
    }
    for (up, text) in events {
        st.event(if up { "-sdown" } else { "+sdown" }, text);
    }
}

/// Some(true) when the node came back, Some(false) when it just went down.
fn flip(n: &mut super::state::Node, now: Instant, after: Duration) -> Option<bool> {
    let silent = n.silence(now) > after;
    match (silent, n.sdown_since.is_some()) {
        (true, false) => {
            n.sdown_since = Some(now);
            Some(false)
        }
        (false, true) => {
            n.sdown_since = None;
            Some(true)
        }
        _ => None,
    }
}

/// ODOWN: enough sentinels (this one included) say the master is down.
fn odown(st: &mut State, group: &str) {
    let now = Instant::now();
    let Some(m) = st.masters.get_mut(group) else {
        return;
    };
    for p in m.sentinels.values_mut() {
        if p.master_down_at
            .is_some_and(|t| now.saturating_duration_since(t) > ANSWER_VALIDITY)
        {
            p.master_down = false;
            p.master_down_at = None;
        }
    }
    let votes = 1 + m.sentinels.values().filter(|p| p.master_down).count();
    let quorum = m.config.quorum as usize;
    let down = m.node.is_sdown() && votes >= quorum;
    match (down, m.odown_since.is_some()) {
        (true, false) => {
            m.odown_since = Some(now);
            let text = format!("{} #quorum {votes}/{quorum}", m.describe());
            st.event("+odown", text);
        }
        (false, true) => {
            m.odown_since = None;
            let text = m.describe();
            st.event("-odown", text);
        }
        _ => {}
    }
}

/// While the master is SDOWN, asks the other sentinels every second whether they agree
/// (and, during an election, for their vote).
fn ask_others(sh: &Arc<Shared>, st: &mut State, group: &str) {
    let now = Instant::now();
    let (myid, epoch) = (st.myid.clone(), st.current_epoch);
    let Some(m) = st.masters.get_mut(group) else {
        return;
    };
    if !m.node.is_sdown()
        || m.last_ask
            .is_some_and(|t| now.duration_since(t) < ASK_PERIOD)
    {
        return;
    }
    m.last_ask = Some(now);
    let runid = if m.failover.is_some() {
        myid
    } else {
        "*".to_string()
    };
    let addr = m.addr().clone();
    for (id, p) in &m.sentinels {
        if p.node.is_sdown() {
            continue;
        }
        let (sh, group, id, peer) = (
            sh.clone(),
            group.to_string(),
            id.clone(),
            p.node.addr.clone(),
        );
        let (runid, addr) = (runid.clone(), addr.clone());
        let timeout = m
            .config
            .down_after
            .clamp(Duration::from_millis(500), Duration::from_secs(5));
        tokio::spawn(async move {
            let port = addr.port.to_string();
            let epoch = epoch.to_string();
            let cmd: Vec<&[u8]> = vec![
                b"SENTINEL",
                b"is-master-down-by-addr",
                addr.host.as_bytes(),
                port.as_bytes(),
                epoch.as_bytes(),
                runid.as_bytes(),
            ];
            let name = format!("sentinel-{}-cmd", sh.short_id());
            if let Ok(replies) = link::once(&peer, &Auth::default(), &name, timeout, &[cmd]).await {
                if let Some(Frame::Array(r)) = replies.first() {
                    answer(&sh, &group, &id, r);
                }
            }
        });
    }
}

/// Records a reply to is-master-down-by-addr: `[down, leader, leader_epoch]`.
fn answer(sh: &Shared, group: &str, id: &str, reply: &[Frame]) {
    let [Frame::Integer(down), leader, Frame::Integer(epoch)] = reply else {
        return;
    };
    let mut st = sh.lock();
    let Some(p) = st
        .masters
        .get_mut(group)
        .and_then(|m| m.sentinels.get_mut(id))
    else {
        return;
    };
    p.master_down = *down == 1;
    p.master_down_at = Some(Instant::now());
    if let Some(l) = link::text(leader).filter(|l| l != "*") {
        p.leader = Some(l);
        p.leader_epoch = (*epoch).max(0) as u64;
    }
}

/// A former master that came back as master, or a replica following another master, is
/// told to follow the group's master (`+convert-to-slave`, `+fix-slave-config`), once this
/// sentinel is sure of its own view (the master answers and reports itself master).
fn correct_replicas(sh: &Arc<Shared>, st: &mut State, group: &str) {
    let now = Instant::now();
    let Some(m) = st.masters.get_mut(group) else {
        return;
    };
    if m.failover.is_some() || m.node.is_sdown() || m.node.role != Role::Master {
        return;
    }
    let master = m.addr().clone();
    let mut fixes = Vec::new();
    for (a, r) in m.replicas.iter() {
        if r.node.is_sdown()
            || !r.node.link_up
            || r.last_fix
                .is_some_and(|t| now.duration_since(t) < FIX_AFTER)
        {
            continue;
        }
        let settled = now.saturating_duration_since(r.node.role_since) > FIX_AFTER;
        let kind = match r.node.role {
            Role::Master if settled => "+convert-to-slave",
            Role::Replica
                if settled
                    && r.master_host.is_some()
                    && (r.master_host.as_deref() != Some(master.host.as_str())
                        || r.master_port != master.port) =>
            {
                "+fix-slave-config"
            }
            _ => continue,
        };
        fixes.push((kind, a.clone()));
    }
    for (kind, a) in fixes {
        let Some(m) = st.masters.get_mut(group) else {
            return;
        };
        fix(sh, m, &a, &master);
        let text = m.describe_replica(&a);
        st.event(kind, text);
    }
}

fn fix(sh: &Arc<Shared>, m: &mut Master, a: &super::state::Addr, master: &super::state::Addr) {
    failover::replicaof(sh, m, a, Some(master));
    if let Some(r) = m.replicas.get_mut(a) {
        r.last_fix = Some(Instant::now());
    }
}
