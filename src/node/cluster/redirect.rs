//! The key-slot check every keyed command passes in cluster mode (Redis's
//! `getNodeByQuery`): MOVED, ASK, TRYAGAIN, CROSSSLOT, CLUSTERDOWN, and reads served by a
//! replica after READONLY.

use crate::cluster_slot;
use crate::node::args::Args;
use crate::node::cmd::command::Command;
use crate::node::cmd::ctx::Ctx;
use crate::node::reply::Reply;

/// What the slot check decided, before the key-existence part.
struct Target {
    slot: u16,
    owner: Option<(String, String)>,
    migrating_to: Option<String>,
    importing: bool,
}

/// The refusal for running `cmd` here, or `None` to run it. Commands from our master and
/// keyless commands always run.
pub(crate) fn check(ctx: &mut Ctx<'_>, cmd: &Command, args: &Args<'_>) -> Option<Reply> {
    let asking = std::mem::replace(&mut ctx.client.asking, false);
    if cmd.name == "asking" {
        ctx.client.asking = asking;
    }
    if ctx.client.from_master {
        return None;
    }
    if cmd.name == "exec" {
        return check_exec(ctx, asking);
    }
    if cmd.name == "select" && args.get(1) != b"0" {
        return Some(Reply::error("ERR SELECT is not allowed in cluster mode"));
    }
    let req = args.request();
    let info = crate::command::lookup_args(req)?;
    let keys: Vec<&[u8]> = crate::command::keys_args(req, info).collect();
    let restore_asking = cmd.name == "restore-asking";
    check_keys(ctx, &keys, cmd.is_write(), asking, restore_asking)
}

/// EXEC: the queued commands' keys, taken together, must still be served here (their slot
/// may have moved since they were queued), as Redis's `getNodeByQuery` checks a
/// transaction. The caller discards the transaction on a refusal.
fn check_exec(ctx: &mut Ctx<'_>, asking: bool) -> Option<Reply> {
    let queue = ctx.client.multi.take()?;
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut write = false;
    for req in &queue {
        let Some(info) = crate::command::lookup_args(req) else {
            continue;
        };
        keys.extend(crate::command::keys_args(req, info));
        write |= info.has(crate::command::flags::WRITE);
    }
    let refusal = check_keys(ctx, &keys, write, asking, false);
    drop(keys);
    ctx.client.multi = Some(queue);
    refusal
}

/// The slot part of the check for a command (or a transaction) touching `keys`.
fn check_keys(
    ctx: &mut Ctx<'_>,
    keys: &[&[u8]],
    write: bool,
    asking: bool,
    restore_asking: bool,
) -> Option<Reply> {
    let first = keys.first()?;
    let slot = cluster_slot::slot(first);
    if keys.iter().any(|k| cluster_slot::slot(k) != slot) {
        return Some(Reply::error(
            "CROSSSLOT Keys in request don't hash to the same slot",
        ));
    }
    let t = target(ctx, slot)?;
    let Some((owner_id, owner_addr)) = t.owner else {
        return Some(Reply::error("CLUSTERDOWN Hash slot not served"));
    };
    let c = ctx.store.cluster.as_ref()?;
    if !c.ok {
        return Some(Reply::error("CLUSTERDOWN The cluster is down"));
    }
    let me_replica_of_owner = c.me().master_of.as_deref() == Some(owner_id.as_str());
    let myself = owner_id == c.myid;
    let missing = if t.migrating_to.is_some() || t.importing {
        keys.iter().filter(|k| !ctx.exists(k)).count()
    } else {
        0
    };
    if let Some(to) = t.migrating_to {
        if missing > 0 {
            return Some(Reply::error(format!("ASK {} {to}", t.slot)));
        }
    }
    if t.importing && (asking || restore_asking) {
        if keys.len() > 1 && missing > 0 {
            return Some(Reply::error(
                "TRYAGAIN Multiple keys request during rehashing of slot",
            ));
        }
        return None;
    }
    if !write && ctx.client.cluster_readonly && me_replica_of_owner {
        return None;
    }
    if myself {
        return None;
    }
    Some(Reply::error(format!("MOVED {} {owner_addr}", t.slot)))
}

/// Who owns `slot` and whether it is moving, as this node sees it.
fn target(ctx: &Ctx<'_>, slot: u16) -> Option<Target> {
    let c = ctx.store.cluster.as_ref()?;
    let owner = c
        .owner_of(slot)
        .map(|n| (n.id.clone(), format!("{}:{}", n.ip, n.port)));
    let mine = owner.as_ref().is_some_and(|(id, _)| *id == c.myid);
    let migrating_to = if mine {
        c.migrating
            .get(&slot)
            .and_then(|id| c.nodes.get(id))
            .map(|n| format!("{}:{}", n.ip, n.port))
    } else {
        None
    };
    Some(Target {
        slot,
        owner,
        migrating_to,
        importing: c.importing.contains_key(&slot),
    })
}
