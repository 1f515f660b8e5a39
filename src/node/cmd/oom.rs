//! `maxmemory`: the refusal Redis's `processCommand` makes when memory is over the limit.
//!
//! Every `maxmemory-policy` behaves as `noeviction` here: commands that may grow memory
//! (`denyoom`), anything queued in MULTI, an EXEC holding such a command and scripts that
//! declare they may write (a shebang without `allow-oom` or `no-writes`) get `-OOM`, and a
//! script without a shebang is refused its first write. Reads, deletions and
//! administration keep working so an operator can free memory. Used memory is the
//! process's resident set, as INFO's `used_memory` reports it; evicting keys would not
//! shrink it reliably (the allocator keeps freed pages), so the node does not evict.

use super::{lookup, Args, Command, Ctx, Flags, Reply};
use crate::node::script::flags;
use crate::node::store::Store;

/// Redis's `shared.oomerr`.
pub(crate) const OOM_ERR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// The OOM refusal for `cmd`, if memory is over `maxmemory`; also notes, for a script or
/// EXEC about to run, whether it started over the limit (Redis's `server.script_oom`).
pub(crate) fn refusal(ctx: &mut Ctx<'_>, cmd: &Command, args: &Args) -> Option<Reply> {
    let store = &mut *ctx.store;
    // A script's own commands were checked by `redis.call` (`script_call_refused`).
    if store.maxmemory == 0 || ctx.client.in_script || exempt(store, ctx.client.from_master) {
        return None;
    }
    let out_of_memory = used_memory(store) > store.maxmemory;
    if matches!(
        cmd.name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" | "exec"
    ) {
        store.script_oom = out_of_memory;
    }
    if !out_of_memory {
        return None;
    }
    let in_multi =
        ctx.client.multi.is_some() && !matches!(cmd.name, "exec" | "discard" | "quit" | "reset");
    let deny = in_multi
        || denies_oom(store, cmd, args)
        || (cmd.name == "exec"
            && ctx.client.multi.iter().flatten().any(|r| {
                let a = Args::new(r);
                lookup(a.get(0)).is_some_and(|c| denies_oom(store, c, &a))
            }));
    deny.then(|| Reply::error(OOM_ERR))
}

/// True when `redis.call` of a `denyoom` command must be refused: the script started over
/// the limit, has not written yet (it cannot be stopped halfway) and did not declare
/// `allow-oom` (Redis's `scriptVerifyOOM`).
pub(crate) fn script_call_refused(
    store: &Store,
    cmd: &Command,
    from_master: bool,
    allow_oom: bool,
    wrote: bool,
) -> bool {
    store.maxmemory != 0
        && store.script_oom
        && cmd.flags.has(Flags::DENYOOM)
        && !from_master
        && !allow_oom
        && !wrote
}

/// A replica ignores `maxmemory` for everything by default (`replica-ignore-maxmemory`),
/// and always for what its master sends.
fn exempt(store: &Store, from_master: bool) -> bool {
    from_master || (store.replica && store.settings.get("replica-ignore-maxmemory") != Some("no"))
}

/// `denyoom`, with the flags a script declares standing in for EVAL's and FCALL's own
/// (Redis's `evalGetCommandFlags`, `fcallGetCommandFlags`).
fn denies_oom(store: &Store, cmd: &Command, args: &Args) -> bool {
    let declared =
        |f: u32| f & flags::EVAL_COMPAT == 0 && f & (flags::ALLOW_OOM | flags::NO_WRITES) == 0;
    match cmd.name {
        "eval" | "eval_ro" => {
            crate::node::script::shebang(args.get(1), true).is_ok_and(|(f, _)| declared(f))
        }
        "evalsha" | "evalsha_ro" => crate::node::script::Sha::parse(args.get(1))
            .and_then(|sha| store.scripting.scripts.get(&sha))
            .is_some_and(|s| declared(s.flags)),
        "fcall" | "fcall_ro" => store
            .scripting
            .functions
            .find(&String::from_utf8_lossy(args.get(1)))
            .is_some_and(|(_, _, f)| declared(f)),
        _ => cmd.flags.has(Flags::DENYOOM),
    }
}

/// The resident set size, read at most once per command batch (the batch's clock).
fn used_memory(store: &mut Store) -> u64 {
    let (at, bytes) = store.used_memory;
    if at == store.now_ms {
        return bytes;
    }
    let bytes = crate::node::info::rss_bytes();
    store.used_memory = (store.now_ms, bytes);
    bytes
}
