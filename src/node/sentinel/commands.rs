//! The SENTINEL command and its subcommands, with Redis's replies and error texts.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::config::{self, MasterConfig};
use super::election;
use super::failover;
use super::monitor;
use super::observe;
use super::replies::{self, bulk};
use super::state::Target;
use super::state::{Master, Peer, State};
use super::tick;
use super::Shared;
use crate::node::glob;
use crate::resp::Frame;

/// A reply: a frame, or RESP2's null array (`*-1`, RESP3 `_`).
pub(crate) enum Out {
    Frame(Frame),
    NullArray,
}

impl From<Frame> for Out {
    fn from(f: Frame) -> Out {
        Out::Frame(f)
    }
}

pub(crate) fn err(text: impl Into<String>) -> Out {
    Out::Frame(Frame::Error(Bytes::from(text.into())))
}

fn ok() -> Out {
    Out::Frame(Frame::Simple(Bytes::from_static(b"OK")))
}

fn no_such_master() -> Out {
    err("ERR No such master with that name")
}

fn arity(sub: &str) -> Out {
    err(format!(
        "ERR wrong number of arguments for 'sentinel|{}' command",
        sub.to_ascii_lowercase()
    ))
}

/// `SENTINEL sub args...` (`args[0]` is the subcommand).
pub(crate) async fn sentinel(sh: &Arc<Shared>, args: &[String]) -> Out {
    let Some(sub) = args.first() else {
        return err("ERR wrong number of arguments for 'sentinel' command");
    };
    let lower = sub.to_ascii_lowercase();
    let rest = &args[1..];
    if lower == "flushconfig" {
        return flushconfig(sh).await;
    }
    let mut st = sh.lock();
    match lower.as_str() {
        "masters" => {
            let now = Instant::now();
            Frame::Array(
                st.masters
                    .values()
                    .map(|m| replies::master(m, now))
                    .collect(),
            )
            .into()
        }
        "get-master-addr-by-name" => {
            let [name] = rest else { return arity(sub) };
            match st.masters.get(name) {
                Some(m) => {
                    let a = failover::current_master_addr(m);
                    Frame::Array(vec![bulk(a.host), bulk(a.port.to_string())]).into()
                }
                None => Out::NullArray,
            }
        }
        "is-master-down-by-addr" => is_master_down(&mut st, rest).unwrap_or_else(|| arity(sub)),
        "monitor" => monitor_cmd(sh, &mut st, rest).unwrap_or_else(|| arity(sub)),
        "set" => set(&mut st, rest).unwrap_or_else(|| arity(sub)),
        "reset" => match rest {
            [pattern] => reset(sh, &mut st, pattern),
            _ => arity(sub),
        },
        "myid" => bulk(st.myid.clone()).into(),
        "master" | "replicas" | "slaves" | "sentinels" | "failover" | "remove" | "ckquorum" => {
            let [name] = rest else { return arity(sub) };
            if !st.masters.contains_key(name) {
                return no_such_master();
            }
            on_group(&mut st, &lower, name)
        }
        _ => err(format!(
            "ERR unknown subcommand '{sub}'. Try SENTINEL HELP."
        )),
    }
}

/// The subcommands that take one existing group's name.
fn on_group(st: &mut State, sub: &str, name: &str) -> Out {
    let now = Instant::now();
    let Some(m) = st.masters.get(name) else {
        return no_such_master();
    };
    match sub {
        "master" => replies::master(m, now).into(),
        "replicas" | "slaves" => {
            let list = m.replicas.values().map(|r| replies::replica(m, r, now));
            Frame::Array(list.collect()).into()
        }
        "sentinels" => {
            let list = m
                .sentinels
                .iter()
                .map(|(id, p)| replies::sentinel(m, id, p, now));
            Frame::Array(list.collect()).into()
        }
        "failover" => force_failover(st, name),
        "ckquorum" => ckquorum(m, now),
        _ => {
            if let Some(m) = st.masters.remove(name) {
                st.event("-monitor", m.describe());
            }
            st.dirty = true;
            ok()
        }
    }
}

/// `SENTINEL is-master-down-by-addr IP PORT EPOCH RUNID`: whether this sentinel thinks the
/// master at IP:PORT is down, and (RUNID not `*`) its vote for the asker in EPOCH.
fn is_master_down(st: &mut State, args: &[String]) -> Option<Out> {
    let [ip, port, epoch, runid] = args else {
        return None;
    };
    // Redis answers unparsable numbers here with its arity error.
    let (Ok(port), Ok(epoch)) = (port.parse::<u16>(), epoch.parse::<u64>()) else {
        return None;
    };
    let group = st
        .masters
        .iter()
        .find(|(_, m)| m.addr().host == *ip && m.addr().port == port)
        .map(|(n, m)| (n.clone(), m.node.is_sdown()));
    let (leader, leader_epoch, down) = match group {
        Some((g, down)) if runid != "*" => {
            let (l, e) = election::vote(st, &g, epoch, runid);
            (l, e, down)
        }
        Some((_, down)) => (None, 0, down),
        None => (None, 0, false),
    };
    Some(
        Frame::Array(vec![
            Frame::Integer(i64::from(down)),
            bulk(leader.unwrap_or_else(|| "*".into())),
            Frame::Integer(leader_epoch as i64),
        ])
        .into(),
    )
}

fn force_failover(st: &mut State, group: &str) -> Out {
    let m = &st.masters[group];
    if m.failover.is_some() {
        return err("INPROG Failover already in progress");
    }
    if failover::select_replica(m, Instant::now()).is_none() {
        return err("NOGOODSLAVE No suitable replica to promote");
    }
    failover::start(st, group, true);
    ok()
}

fn monitor_cmd(sh: &Arc<Shared>, st: &mut State, args: &[String]) -> Option<Out> {
    let [name, host, port, quorum] = args else {
        return None;
    };
    if st.masters.contains_key(name) {
        return Some(err("ERR Duplicate master name."));
    }
    let Ok(port) = port.parse::<u16>() else {
        return Some(err("ERR Invalid port"));
    };
    let Ok(quorum) = quorum.parse::<u32>() else {
        return Some(err("ERR Invalid quorum"));
    };
    if quorum == 0 {
        return Some(err("ERR Quorum must be 1 or greater."));
    }
    if host.parse::<std::net::IpAddr>().is_err() {
        return Some(err("ERR Invalid IP address or hostname specified"));
    }
    let mut m = Master::new(MasterConfig::new(name, host, port, quorum));
    monitor::watch_redis(sh, name, Target::Master, &mut m.node);
    let text = format!("{} #quorum {quorum}", m.describe());
    st.masters.insert(name.clone(), m);
    st.dirty = true;
    st.event("+monitor", text);
    Some(ok())
}

/// Options SENTINEL SET may change at run time.
const SETTABLE: &[&str] = &[
    "down-after-milliseconds",
    "failover-timeout",
    "parallel-syncs",
    "quorum",
    "auth-pass",
    "auth-user",
    "notification-script",
    "client-reconfig-script",
    "rename-command",
    "master-reboot-down-after-period",
];

fn set(st: &mut State, args: &[String]) -> Option<Out> {
    let (name, pairs) = args.split_first()?;
    if pairs.is_empty() || pairs.len() % 2 != 0 {
        return None;
    }
    let Some(m) = st.masters.get_mut(name) else {
        return Some(no_such_master());
    };
    let mut changed = Vec::new();
    for kv in pairs.chunks(2) {
        let key = kv[0].to_ascii_lowercase();
        if !SETTABLE.contains(&key.as_str()) {
            return Some(err(format!(
                "ERR Unknown option or number of arguments for SENTINEL SET '{}'",
                kv[0]
            )));
        }
        if config::master_option(&mut m.config, &key, &kv[1..]).is_err() {
            return Some(err(format!(
                "ERR Invalid argument '{}' for SENTINEL SET '{}'",
                kv[1], kv[0]
            )));
        }
        changed.push(format!("{} {key} {}", m.describe(), kv[1]));
    }
    st.dirty = true;
    for c in changed {
        st.event("+set", c);
    }
    Some(ok())
}

/// `SENTINEL RESET pattern`: forgets the replicas and sentinels of matching groups (they are
/// rediscovered), and any failover in progress. Replies how many groups matched.
fn reset(sh: &Arc<Shared>, st: &mut State, pattern: &str) -> Out {
    let names: Vec<String> = st
        .masters
        .keys()
        .filter(|n| glob::matches(pattern.as_bytes(), n.as_bytes()))
        .cloned()
        .collect();
    for n in &names {
        let Some(m) = st.masters.get_mut(n) else {
            continue;
        };
        let mut fresh = Master::new(m.config.clone());
        fresh.config.host = m.addr().host.clone();
        fresh.config.port = m.addr().port;
        fresh.node.addr = m.addr().clone();
        monitor::watch_redis(sh, n, Target::Master, &mut fresh.node);
        let text = fresh.describe();
        *m = fresh;
        st.event("+reset-master", text);
    }
    st.dirty = true;
    Frame::Integer(names.len() as i64).into()
}

fn ckquorum(m: &Master, now: Instant) -> Out {
    let usable = 1 + m
        .sentinels
        .values()
        .filter(|p| {
            !p.node.is_sdown()
                && now.saturating_duration_since(p.last_hello) < std::time::Duration::from_secs(30)
        })
        .count();
    let majority = m.voters() / 2 + 1;
    if usable < m.config.quorum as usize {
        return err(format!(
            "NOQUORUM {usable} usable Sentinels. Not enough available Sentinels to reach the specified quorum for this master"
        ));
    }
    if usable < majority {
        return err(format!(
            "NOQUORUM {usable} usable Sentinels. Not enough available Sentinels to reach the majority and authorize a failover"
        ));
    }
    Frame::Simple(Bytes::from(format!(
        "OK {usable} usable Sentinels. Quorum and failover authorization can be reached"
    )))
    .into()
}

async fn flushconfig(sh: &Arc<Shared>) -> Out {
    let job = {
        let st = sh.lock();
        st.config
            .path
            .clone()
            .map(|p| (p, config::render(&st.snapshot_config())))
    };
    let Some((path, text)) = job else {
        return err("ERR sentinel has no config file to write");
    };
    match tick::write_config(&path, &text).await {
        Ok(()) => ok(),
        Err(e) => err(format!(
            "ERR Failed to rewrite config file {}: {e}",
            path.display()
        )),
    }
}

/// Adds the replicas and sentinels a config file remembers (at start).
pub(crate) fn restore_known(sh: &Arc<Shared>, m: &mut Master) {
    let replicas = m.config.known_replicas.clone();
    for (h, p) in replicas {
        observe::add_replica(sh, m, &super::state::Addr::new(&h, p));
    }
    let peers = m.config.known_sentinels.clone();
    for (h, p, id) in peers {
        let mut peer = Peer::new(super::state::Addr::new(&h, p));
        monitor::watch_sentinel(sh, &m.config.name, &id, &mut peer.node);
        m.sentinels.insert(id, peer);
    }
}
