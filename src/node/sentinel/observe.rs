//! Recording what the links saw: link state, PING replies and INFO, including the replicas
//! a master's INFO names (discovery) and the role and replication state of each replica.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::state::Target;
use super::state::{Addr, Master, Replica, Role};
use super::Shared;
use crate::resp::Frame;

fn with_node(sh: &Shared, group: &str, target: &Target, f: impl FnOnce(&mut super::state::Node)) {
    let mut st = sh.lock();
    let Some(m) = st.masters.get_mut(group) else {
        return;
    };
    let node = match target {
        Target::Master => Some(&mut m.node),
        Target::Replica(a) => m.replicas.get_mut(a).map(|r| &mut r.node),
        Target::Sentinel(id) => m.sentinels.get_mut(id).map(|p| &mut p.node),
    };
    if let Some(n) = node {
        f(n);
    }
}

/// The command link connected (`up`) or was lost.
pub(crate) fn link(sh: &Shared, group: &str, target: &Target, up: bool) {
    with_node(sh, group, target, |n| {
        if n.link_up && !up {
            // Silence is now measured from the last time it answered.
            n.ping_pending = None;
        }
        if up && !n.link_up {
            // The handshake was answered: the instance is alive (a CLIENT KILL during a
            // failover drops healthy links). The new link PINGs at once.
            n.last_avail = Instant::now();
            n.last_ping_sent = None;
        }
        n.link_up = up;
    });
}

pub(crate) fn ping_sent(sh: &Shared, group: &str, target: &Target) {
    with_node(sh, group, target, |n| {
        let now = Instant::now();
        n.last_ping_sent = Some(now);
        n.ping_pending.get_or_insert(now);
    });
}

/// A PING reply: PONG, LOADING and MASTERDOWN count as alive, as in Redis.
pub(crate) fn pong(sh: &Shared, group: &str, target: &Target, reply: &Frame) {
    let ok = match reply {
        Frame::Simple(s) => s.eq_ignore_ascii_case(b"PONG"),
        Frame::Error(e) => e.starts_with(b"LOADING") || e.starts_with(b"MASTERDOWN"),
        _ => false,
    };
    with_node(sh, group, target, |n| {
        let now = Instant::now();
        n.last_ping_reply = Some(now);
        if ok {
            n.last_ok_ping = Some(now);
            n.last_avail = now;
            n.ping_pending = None;
        }
    });
}

/// The fields of INFO this sentinel uses.
#[derive(Debug, Default)]
pub(crate) struct Info {
    pub run_id: Option<String>,
    pub role: Option<Role>,
    pub replicas: Vec<Addr>,
    pub master_host: Option<String>,
    pub master_port: u16,
    pub master_link_up: bool,
    pub master_link_down: Duration,
    pub priority: Option<u32>,
    pub offset: u64,
}

pub(crate) fn parse_info(text: &str) -> Info {
    let mut i = Info::default();
    for line in text.lines() {
        let Some((k, v)) = line.trim_end().split_once(':') else {
            continue;
        };
        match k {
            "run_id" if v.len() == 40 => i.run_id = Some(v.to_string()),
            "role" => {
                i.role = Some(if v == "master" {
                    Role::Master
                } else {
                    Role::Replica
                });
            }
            "master_host" => i.master_host = Some(v.to_string()),
            "master_port" => i.master_port = v.parse().unwrap_or(0),
            "master_link_status" => i.master_link_up = v == "up",
            "master_link_down_since_seconds" => {
                i.master_link_down =
                    Duration::from_secs(v.parse::<i64>().unwrap_or(0).max(0) as u64);
            }
            "slave_priority" | "replica_priority" => i.priority = v.parse().ok(),
            "slave_repl_offset" => i.offset = v.parse().unwrap_or(0),
            k if k.starts_with("slave") && k[5..].bytes().all(|b| b.is_ascii_digit()) => {
                // slaveN:ip=...,port=...,state=...,offset=...,lag=...
                let field = |name: &str| {
                    v.split(',')
                        .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
                };
                if let (Some(ip), Some(Ok(port))) = (field("ip"), field("port").map(str::parse)) {
                    i.replicas.push(Addr::new(ip, port));
                }
            }
            _ => {}
        }
    }
    i
}

/// Records an INFO reply.
pub(crate) fn info(sh: &Arc<Shared>, group: &str, target: &Target, text: &str) {
    let info = parse_info(text);
    let mut st = sh.lock();
    let st = &mut *st;
    let Some(m) = st.masters.get_mut(group) else {
        return;
    };
    let now = Instant::now();
    let (node, expected) = match target {
        Target::Master => (&mut m.node, Role::Master),
        Target::Replica(a) => match m.replicas.get_mut(a) {
            Some(r) => (&mut r.node, Role::Replica),
            None => return,
        },
        Target::Sentinel(_) => return,
    };
    node.info_refresh = Some(now);
    // An INFO reply proves the instance alive as much as a PONG (the PING before it on this
    // link was answered, so none is pending).
    node.last_avail = now;
    if info.run_id.is_some() {
        node.run_id = info.run_id.clone();
    }
    let role = info.role.unwrap_or(Role::Unknown);
    let changed = node.role != role && node.role != Role::Unknown;
    if node.role != role {
        node.role = role;
        node.role_since = now;
    }
    let described = match target {
        Target::Replica(a) => m.describe_replica(a),
        _ => m.describe(),
    };
    if changed {
        let kind = if role == expected {
            "+role-change"
        } else {
            "-role-change"
        };
        st_event(
            &st.events,
            kind,
            format!("{described} new reported role is {}", role.as_str()),
        );
    }
    let mut added = false;
    match target {
        Target::Master if role == Role::Master => {
            added = discover(sh, &st.events, m, &info.replicas)
        }
        Target::Replica(a) => {
            if let Some(r) = m.replicas.get_mut(a) {
                update_replica(r, &info);
            }
        }
        _ => {}
    }
    // The replicas learned here go into the config file too.
    if changed || added {
        st.dirty = true;
    }
}

fn st_event(tx: &tokio::sync::broadcast::Sender<(String, String)>, kind: &str, text: String) {
    tracing::info!(target: "sluice::sentinel", "{kind} {text}");
    let _ = tx.send((kind.to_string(), text));
}

fn update_replica(r: &mut Replica, info: &Info) {
    r.master_host = info.master_host.clone();
    r.master_port = info.master_port;
    r.master_link_up = info.master_link_up;
    r.master_link_down = info.master_link_down;
    if let Some(p) = info.priority {
        r.priority = p;
    }
    r.offset = info.offset;
}

/// Adds the replicas a master's INFO names that this sentinel did not know (`+slave`).
fn discover(
    sh: &Arc<Shared>,
    events: &tokio::sync::broadcast::Sender<(String, String)>,
    m: &mut Master,
    found: &[Addr],
) -> bool {
    let mut added = false;
    for a in found {
        if m.replicas.contains_key(a) || a == m.addr() {
            continue;
        }
        m.replicas.insert(a.clone(), Replica::new(a.clone()));
        sh.announce(&m.config.name, Target::Replica(a.clone()));
        st_event(events, "+slave", m.describe_replica(a));
        added = true;
    }
    added
}

/// Adds a replica known from the config file or a failover (no event).
pub(crate) fn add_replica(sh: &Arc<Shared>, m: &mut Master, a: &Addr) {
    if m.replicas.contains_key(a) || a == m.addr() {
        return;
    }
    m.replicas.insert(a.clone(), Replica::new(a.clone()));
    sh.announce(&m.config.name, Target::Replica(a.clone()));
}
