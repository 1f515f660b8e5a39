//! CLUSTER MEET / REPLICATE / REPLICAS / FAILOVER / RESET / FORGET / BUMPEPOCH /
//! SET-CONFIG-EPOCH / SAVECONFIG: the subcommands that change who is who.

use bytes::Bytes;

use super::args::disabled;
use super::manual::MANUAL_TIMEOUT_MS;
use super::proto::Kind;
use super::state::Outgoing;
use super::state::{random_id, ClusterNode, ClusterState, Election, FORGET_TTL_MS};
use super::{config_file, failover, replies};
use crate::node::args::parse_int;
use crate::node::args::Args;
use crate::node::cmd::command::subcommand_error;
use crate::node::cmd::ctx::Ctx;
use crate::node::reply::Reply;

/// Dispatches the subcommands of this file.
pub(crate) fn command(ctx: &mut Ctx<'_>, sub: &str, args: &Args<'_>) -> Reply {
    let keys = ctx.store.db(0).len();
    let now = ctx.now_ms();
    let Some(c) = ctx.store.cluster.as_mut() else {
        return disabled();
    };
    let arg = |i| String::from_utf8_lossy(args.get(i)).into_owned();
    let reply = match sub {
        "meet" => meet(c, args, now),
        "replicate" => replicate(c, &arg(2), keys),
        "replicas" | "slaves" => replicas(c, &arg(2)),
        "failover" => start_failover(c, args, now),
        "reset" => reset(c, args, keys),
        "forget" => forget(c, &arg(2), now),
        "bumpepoch" => {
            let mine = c.me().config_epoch;
            if mine == 0 || mine != c.max_config_epoch() {
                let e = c.bump_my_epoch();
                Reply::Simple(format!("BUMPED {e}").into())
            } else {
                Reply::Simple(format!("STILL {mine}").into())
            }
        }
        "set-config-epoch" => set_config_epoch(c, args),
        "saveconfig" => {
            let text = config_file::render(c);
            match config_file::write(&c.config_file, &text) {
                Ok(()) => Reply::Ok,
                Err(e) => Reply::error(format!("ERR error saving the cluster node config: {e}")),
            }
        }
        _ => subcommand_error(args, "CLUSTER"),
    };
    c.update_state();
    reply
}

fn meet(c: &mut ClusterState, args: &Args<'_>, now: i64) -> Reply {
    let ip = String::from_utf8_lossy(args.get(2)).into_owned();
    if ip.parse::<std::net::IpAddr>().is_err() {
        return Reply::error(format!(
            "ERR Invalid node address specified: {ip}:{}",
            String::from_utf8_lossy(args.get(3))
        ));
    }
    let port = |i: usize, what: &str| {
        parse_int(args.get(i))
            .and_then(|p| u16::try_from(p).ok())
            .filter(|&p| p > 0)
            .ok_or_else(|| {
                Reply::error(format!(
                    "ERR Invalid TCP {what} port specified: {}",
                    String::from_utf8_lossy(args.get(i))
                ))
            })
    };
    let port_n = match port(3, "base") {
        Ok(p) => p,
        Err(e) => return e,
    };
    let cport = match args.len() {
        4 => port_n.checked_add(10_000),
        5 => match port(4, "bus") {
            Ok(p) => Some(p),
            Err(e) => return e,
        },
        _ => return crate::node::args::syntax(),
    };
    let Some(cport) = cport else {
        return Reply::error("ERR Invalid TCP bus port specified");
    };
    if c.by_addr(&ip, port_n).is_some() {
        return Reply::Ok;
    }
    let mut n = ClusterNode::new(random_id(), &ip, port_n, cport, now);
    n.handshake = true;
    c.nodes.insert(n.id.clone(), n);
    Reply::Ok
}

fn replicate(c: &mut ClusterState, id: &str, keys: usize) -> Reply {
    let Some(target) = c.nodes.get(id) else {
        return Reply::error(format!("ERR Unknown node {id}"));
    };
    if id == c.myid {
        return Reply::error("ERR Can't replicate myself");
    }
    if target.replica {
        return Reply::error("ERR I can only replicate a master, not a replica.");
    }
    let me = c.me();
    if !me.replica && (c.slot_count(&c.myid) != 0 || keys != 0) {
        return Reply::error(
            "ERR To set a master the node must be empty and without assigned slots.",
        );
    }
    let me = c.me_mut();
    me.replica = true;
    me.master_of = Some(id.to_string());
    c.migrating.clear();
    c.importing.clear();
    c.dirty = true;
    Reply::Ok
}

fn replicas(c: &ClusterState, id: &str) -> Reply {
    match c.nodes.get(id) {
        None => Reply::error(format!("ERR Unknown node {id}")),
        Some(n) if n.replica => Reply::error("ERR The specified node is not a master"),
        Some(_) => Reply::Array(
            c.replicas_of(id)
                .into_iter()
                .map(|r| Reply::Bulk(Bytes::from(replies::node_line(c, r))))
                .collect(),
        ),
    }
}

/// CLUSTER FAILOVER [FORCE|TAKEOVER] on a replica.
fn start_failover(c: &mut ClusterState, args: &Args<'_>, now: i64) -> Reply {
    let (force, takeover) = match args.len() {
        2 => (false, false),
        3 if args.is(2, "force") => (true, false),
        3 if args.is(2, "takeover") => (true, true),
        _ => return crate::node::args::syntax(),
    };
    let me = c.me();
    if !me.replica {
        return Reply::error("ERR You should send CLUSTER FAILOVER to a replica");
    }
    let Some(master) = me.master_of.as_ref().and_then(|m| c.nodes.get(m)) else {
        return Reply::error("ERR I'm a replica but my master is unknown to me");
    };
    if !force && (master.fail || master.pfail) {
        return Reply::error("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE");
    }
    let master_id = master.id.clone();
    if takeover {
        // No agreement asked: a new epoch of our own, then the slots.
        c.current_epoch += 1;
        let epoch = c.current_epoch;
        failover::promote(c, &master_id, epoch);
        return Reply::Ok;
    }
    c.election = Some(Election {
        start_at: now,
        manual: true,
        manual_deadline: now + MANUAL_TIMEOUT_MS,
        awaiting_pause: !force,
        ..Election::default()
    });
    if !force {
        // Our master pauses its writes and tells us where its offset stopped (manual.rs).
        c.tell_bus(Outgoing::Send(master_id, Kind::MfStart));
    }
    Reply::Ok
}

fn reset(c: &mut ClusterState, args: &Args<'_>, keys: usize) -> Reply {
    let hard = match args.len() {
        2 => false,
        3 if args.is(2, "hard") => true,
        3 if args.is(2, "soft") => false,
        _ => return crate::node::args::syntax(),
    };
    let me = c.me();
    if !me.replica && keys != 0 {
        return Reply::error("ERR CLUSTER RESET can't be called with master nodes containing keys");
    }
    let mut mine = me.clone();
    mine.replica = false;
    mine.master_of = None;
    if hard {
        mine.id = random_id();
        mine.config_epoch = 0;
        c.current_epoch = 0;
        c.last_vote_epoch = 0;
    }
    c.nodes.clear();
    c.myid = mine.id.clone();
    c.nodes.insert(mine.id.clone(), mine);
    c.clear_owners();
    c.importing.clear();
    c.migrating.clear();
    c.election = None;
    c.dirty = true;
    Reply::Ok
}

fn forget(c: &mut ClusterState, id: &str, now: i64) -> Reply {
    if id == c.myid {
        return Reply::error("ERR I tried hard but I can't forget myself...");
    }
    if !c.nodes.contains_key(id) {
        return Reply::error(format!("ERR Unknown node {id}"));
    }
    if c.me().master_of.as_deref() == Some(id) {
        return Reply::error("ERR Can't forget my master!");
    }
    c.remove_node(id);
    c.blacklist.insert(id.to_string(), now + FORGET_TTL_MS);
    Reply::Ok
}

fn set_config_epoch(c: &mut ClusterState, args: &Args<'_>) -> Reply {
    let Some(epoch) = parse_int(args.get(2)) else {
        return Reply::error("ERR value is not an integer or out of range");
    };
    let Ok(epoch) = u64::try_from(epoch) else {
        return Reply::error(format!("ERR Invalid config epoch specified: {epoch}"));
    };
    if c.nodes.len() > 1 {
        return Reply::error(
            "ERR The user can assign a config epoch only when the node does not know any other node.",
        );
    }
    if c.me().config_epoch != 0 {
        return Reply::error("ERR Node config epoch is already non-zero");
    }
    c.me_mut().config_epoch = epoch;
    if c.current_epoch < epoch {
        c.current_epoch = epoch;
    }
    c.dirty = true;
    Reply::Ok
}
