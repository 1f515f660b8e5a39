//! Reply shapes: the field lists of SENTINEL MASTERS / MASTER / REPLICAS / SENTINELS and the
//! INFO text, with Redis 7.0's names and order (clients look fields up by name; people and
//! scripts compare them with Redis's output).

use std::fmt::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::failover;
use super::state::{Master, Node, Peer, Replica, State};
use crate::resp::Frame;

pub(crate) fn bulk(s: impl Into<String>) -> Frame {
    Frame::Bulk(Bytes::from(s.into()))
}

fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}

fn since(now: Instant, t: Option<Instant>) -> String {
    t.map_or_else(|| "0".to_string(), |t| ms(now.saturating_duration_since(t)))
}

type Fields = Vec<(&'static str, String)>;

fn to_map(fields: Fields) -> Frame {
    Frame::Map(
        fields
            .into_iter()
            .map(|(k, v)| (bulk(k), bulk(v)))
            .collect(),
    )
}

fn common(n: &Node, name: String, flags: String, now: Instant) -> Fields {
    let mut f: Fields = vec![
        ("name", name),
        ("ip", n.addr.host.clone()),
        ("port", n.addr.port.to_string()),
        ("runid", n.run_id.clone().unwrap_or_default()),
        ("flags", flags),
        (
            "link-pending-commands",
            u8::from(n.ping_pending.is_some()).to_string(),
        ),
        ("link-refcount", "1".into()),
        ("last-ping-sent", since(now, n.ping_pending)),
        (
            "last-ok-ping-reply",
            ms(now.saturating_duration_since(n.last_avail)),
        ),
        (
            "last-ping-reply",
            since(now, n.last_ping_reply.or(Some(n.last_avail))),
        ),
    ];
    if let Some(t) = n.sdown_since {
        f.push(("s-down-time", ms(now.saturating_duration_since(t))));
    }
    f
}

fn role_fields(f: &mut Fields, n: &Node, now: Instant) {
    f.push(("info-refresh", since(now, n.info_refresh)));
    f.push(("role-reported", n.role.as_str().into()));
    f.push((
        "role-reported-time",
        ms(now.saturating_duration_since(n.role_since)),
    ));
}

/// SENTINEL MASTER NAME.
pub(crate) fn master(m: &Master, now: Instant) -> Frame {
    let mut f = common(&m.node, m.config.name.clone(), m.flags(), now);
    if let Some(fo) = &m.failover {
        f.insert(5, ("failover-state", fo.step.name().into()));
    }
    if let Some(t) = m.odown_since {
        f.push(("o-down-time", ms(now.saturating_duration_since(t))));
    }
    f.push(("down-after-milliseconds", ms(m.config.down_after)));
    role_fields(&mut f, &m.node, now);
    f.extend([
        ("config-epoch", m.config.config_epoch.to_string()),
        ("num-slaves", m.replicas.len().to_string()),
        ("num-other-sentinels", m.sentinels.len().to_string()),
        ("quorum", m.config.quorum.to_string()),
        ("failover-timeout", ms(m.config.failover_timeout)),
        ("parallel-syncs", m.config.parallel_syncs.to_string()),
    ]);
    to_map(f)
}

/// One entry of SENTINEL REPLICAS NAME.
pub(crate) fn replica(m: &Master, r: &Replica, now: Instant) -> Frame {
    let n = &r.node;
    let mut flags = vec!["slave"];
    if n.is_sdown() {
        flags.push("s_down");
    }
    if !n.link_up {
        flags.push("disconnected");
    }
    let promoted = m.failover.as_ref().and_then(|f| f.promoted.as_ref()) == Some(&n.addr);
    if promoted {
        flags.push("promoted");
    }
    if r.reconf_sent.is_some() && !r.reconf_done {
        flags.push(if r.reconf_inprog {
            "reconf_inprog"
        } else {
            "reconf_sent"
        });
    }
    let mut f = common(n, n.addr.to_string(), flags.join(","), now);
    f.push(("down-after-milliseconds", ms(m.config.down_after)));
    role_fields(&mut f, n, now);
    f.extend([
        ("master-link-down-time", ms(r.master_link_down)),
        (
            "master-link-status",
            if r.master_link_up { "ok" } else { "err" }.into(),
        ),
        (
            "master-host",
            r.master_host.clone().unwrap_or_else(|| "?".into()),
        ),
        ("master-port", r.master_port.to_string()),
        ("slave-priority", r.priority.to_string()),
        ("slave-repl-offset", r.offset.to_string()),
        ("replica-announced", "1".into()),
    ]);
    to_map(f)
}

/// One entry of SENTINEL SENTINELS NAME.
pub(crate) fn sentinel(m: &Master, id: &str, p: &Peer, now: Instant) -> Frame {
    let n = &p.node;
    let mut flags = vec!["sentinel"];
    if n.is_sdown() {
        flags.push("s_down");
    }
    if !n.link_up {
        flags.push("disconnected");
    }
    if p.master_down {
        flags.push("master_down");
    }
    let mut f = common(n, id.to_string(), flags.join(","), now);
    f[3].1 = id.to_string();
    f.push(("down-after-milliseconds", ms(m.config.down_after)));
    f.extend([
        (
            "last-hello-message",
            ms(now.saturating_duration_since(p.last_hello)),
        ),
        (
            "voted-leader",
            p.leader.clone().unwrap_or_else(|| "?".into()),
        ),
        ("voted-leader-epoch", p.leader_epoch.to_string()),
    ]);
    to_map(f)
}

/// `ok`, `sdown` or `odown`, as INFO's `masterN:` lines say.
fn status(m: &Master) -> &'static str {
    if m.odown_since.is_some() {
        "odown"
    } else if m.node.is_sdown() {
        "sdown"
    } else {
        "ok"
    }
}

/// The INFO text for `section` (none = all of them).
pub(crate) fn info(st: &State, section: Option<&str>, clients: usize) -> String {
    let want = |s: &str| {
        section.is_none_or(|x| {
            x.eq_ignore_ascii_case(s)
                || x.eq_ignore_ascii_case("all")
                || x.eq_ignore_ascii_case("default")
                || x.eq_ignore_ascii_case("everything")
        })
    };
    let mut out = String::new();
    if want("server") {
        let up = st.started.elapsed().as_secs();
        let _ =
            write!(
            out,
            "# Server\r\nredis_version:7.0.15\r\nredis_mode:sentinel\r\nos:{}\r\narch_bits:64\r\n\
             process_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{up}\r\n\
             uptime_in_days:{}\r\nhz:10\r\nexecutable:sluice\r\nconfig_file:{}\r\n\r\n",
            std::env::consts::OS,
            std::process::id(),
            st.myid,
            st.announce_port,
            up / 86400,
            st.config.path.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        );
    }
    if want("clients") {
        let _ = write!(out, "# Clients\r\nconnected_clients:{clients}\r\n\r\n");
    }
    if want("sentinel") {
        let _ = write!(
            out,
            "# Sentinel\r\nsentinel_masters:{}\r\nsentinel_tilt:0\r\nsentinel_tilt_since_seconds:-1\r\n\
             sentinel_running_scripts:0\r\nsentinel_scripts_queue_length:0\r\n\
             sentinel_simulate_failure_flags:0\r\n",
            st.masters.len()
        );
        for (i, m) in st.masters.values().enumerate() {
            let a = failover::current_master_addr(m);
            let _ = write!(
                out,
                "master{i}:name={},status={},address={a},slaves={},sentinels={}\r\n",
                m.config.name,
                status(m),
                m.replicas.len(),
                m.voters()
            );
        }
    }
    let trimmed = out.trim_end_matches("\r\n").len();
    out.truncate(trimmed);
    out.push_str("\r\n");
    out
}
