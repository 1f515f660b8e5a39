//! CLUSTER ADDSLOTS / ADDSLOTSRANGE / DELSLOTS / DELSLOTSRANGE / FLUSHSLOTS / SETSLOT.

use super::args::{disabled, slot_arg};
use super::state::ClusterState;
use crate::cluster_slot::{self, SLOTS};
use crate::node::args::Args;
use crate::node::cmd::ctx::Ctx;
use crate::node::reply::Reply;

/// The slots named by ADDSLOTS/DELSLOTS (single slots) or the *RANGE forms (pairs).
fn parse_slots(sub: &str, args: &Args<'_>) -> Result<Vec<u16>, Reply> {
    let invalid = || Reply::error("ERR Invalid or out of range slot");
    let mut out = Vec::new();
    if sub.ends_with("range") {
        if !args.len().is_multiple_of(2) {
            return Err(crate::node::cmd::command::subcommand_arity(args));
        }
        for i in (2..args.len()).step_by(2) {
            let a = slot_arg(args.get(i)).ok_or_else(invalid)?;
            let b = slot_arg(args.get(i + 1)).ok_or_else(invalid)?;
            if a > b {
                return Err(Reply::error(format!(
                    "ERR start slot number {a} is greater than end slot number {b}"
                )));
            }
            out.extend(a..=b);
        }
    } else {
        for a in args.from(2) {
            out.push(slot_arg(a).ok_or_else(invalid)?);
        }
    }
    let mut seen = vec![false; SLOTS];
    for &s in &out {
        if std::mem::replace(&mut seen[usize::from(s)], true) {
            return Err(Reply::error(format!(
                "ERR Slot {s} specified multiple times"
            )));
        }
    }
    Ok(out)
}

/// ADDSLOTS, ADDSLOTSRANGE, DELSLOTS, DELSLOTSRANGE, FLUSHSLOTS.
pub(crate) fn assign(ctx: &mut Ctx<'_>, sub: &str, args: &Args<'_>) -> Reply {
    let keys = ctx.store.db(0).len();
    let Some(c) = ctx.store.cluster.as_mut() else {
        return disabled();
    };
    if sub == "flushslots" {
        if keys != 0 {
            return Reply::error("ERR DB must be empty to perform CLUSTER FLUSHSLOTS.");
        }
        let me = c.myid.clone();
        for s in c.slots_of(&me) {
            c.set_owner(s, None);
        }
        c.update_state();
        return Reply::Ok;
    }
    let slots = match parse_slots(sub, args) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let adding = sub.starts_with("add");
    for &s in &slots {
        let owned = c.owner[usize::from(s)].is_some();
        if adding && owned {
            return Reply::error(format!("ERR Slot {s} is already busy"));
        }
        if !adding && !owned {
            return Reply::error(format!("ERR Slot {s} is already unassigned"));
        }
    }
    let me = c.myid.clone();
    for s in slots {
        c.set_owner(s, adding.then(|| me.clone()));
        c.importing.remove(&s);
    }
    c.update_state();
    Reply::Ok
}

/// CLUSTER SETSLOT slot IMPORTING id | MIGRATING id | NODE id | STABLE.
pub(crate) fn setslot(ctx: &mut Ctx<'_>, args: &Args<'_>) -> Reply {
    let Some(slot) = slot_arg(args.get(2)) else {
        return Reply::error("ERR Invalid or out of range slot");
    };
    let action = String::from_utf8_lossy(args.get(3)).to_ascii_lowercase();
    // A pass over the whole keyspace: only NODE needs it.
    let keys_in_slot = action == "node"
        && ctx
            .store
            .db(0)
            .iter()
            .any(|(k, _)| cluster_slot::slot(k) == slot);
    let Some(c) = ctx.store.cluster.as_mut() else {
        return disabled();
    };
    if c.me().replica {
        return Reply::error("ERR Please use SETSLOT only with masters.");
    }
    let id = String::from_utf8_lossy(args.get(4)).into_owned();
    let bad = || {
        Reply::error("ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")
    };
    let mine = c.owner[usize::from(slot)].as_deref() == Some(c.myid.as_str());
    let reply = match (action.as_str(), args.len()) {
        ("migrating", 5) => {
            if !mine {
                return Reply::error(format!("ERR I'm not the owner of hash slot {slot}"));
            }
            match master_node(c, &id, "ERR I don't know about node") {
                Ok(()) => {
                    c.migrating.insert(slot, id);
                    Reply::Ok
                }
                Err(e) => e,
            }
        }
        ("importing", 5) => {
            if mine {
                return Reply::error(format!("ERR I'm already the owner of hash slot {slot}"));
            }
            match master_node(c, &id, "ERR I don't know about node") {
                Ok(()) => {
                    c.importing.insert(slot, id);
                    Reply::Ok
                }
                Err(e) => e,
            }
        }
        ("stable", 4) => {
            c.importing.remove(&slot);
            c.migrating.remove(&slot);
            Reply::Ok
        }
        ("node", 5) => set_node(c, slot, id, mine && keys_in_slot),
        _ => bad(),
    };
    c.dirty = true;
    c.update_state();
    reply
}

/// `id` names a known master, or the error (`what id`, or "not a master").
fn master_node(c: &ClusterState, id: &str, what: &str) -> Result<(), Reply> {
    match c.nodes.get(id) {
        None => Err(Reply::error(format!("{what} {id}"))),
        Some(n) if n.replica => Err(Reply::error("ERR Target node is not a master")),
        Some(_) => Ok(()),
    }
}

/// SETSLOT NODE: the slot belongs to `id` from now on.
fn set_node(c: &mut ClusterState, slot: u16, id: String, still_hold_keys: bool) -> Reply {
    if let Err(e) = master_node(c, &id, "ERR Unknown node") {
        return e;
    }
    if still_hold_keys && id != c.myid {
        return Reply::error(format!(
            "ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
        ));
    }
    if c.migrating.get(&slot).is_some_and(|_| id != c.myid) {
        c.migrating.remove(&slot);
    }
    let finishing_import = id == c.myid && c.importing.remove(&slot).is_some();
    c.set_owner(slot, Some(id));
    if finishing_import {
        // Redis's clusterBumpConfigEpochWithoutConsensus: the slot's new owner must win it
        // against the old owner's claim, so it takes a new epoch unless already the highest.
        let mine = c.me().config_epoch;
        if mine == 0
            || mine != c.max_config_epoch()
            || c.nodes.values().filter(|n| n.config_epoch == mine).count() > 1
        {
            c.bump_my_epoch();
        }
    }
    Reply::Ok
}
