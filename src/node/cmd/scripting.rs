//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (see `crate::node::script`).

use bytes::Bytes;

use super::{Args, Command, Ctx, Flags, Reply};
use crate::node::script::busy::KillOutcome;
use crate::node::script::run::{run, RunOpts, ScriptInput};
use crate::node::script::{flags, Scripting, Sha, FAST_RUN};

/// The scripting family.
pub static COMMANDS: &[Command] = &[
    Command::new("eval", eval, -3, Flags::NOSCRIPT.with(Flags::STALE)).runs_script(),
    Command::new("evalsha", evalsha, -3, Flags::NOSCRIPT.with(Flags::STALE)).runs_script(),
    Command::new(
        "eval_ro",
        eval_ro,
        -3,
        Flags::NOSCRIPT.with(Flags::STALE).with(Flags::READONLY),
    )
    .runs_script(),
    Command::new(
        "evalsha_ro",
        evalsha_ro,
        -3,
        Flags::NOSCRIPT.with(Flags::STALE).with(Flags::READONLY),
    )
    .runs_script(),
    Command::new("script", script, -2, Flags::NOSCRIPT),
];

fn eval(ctx: &mut Ctx, args: &Args) -> Reply {
    eval_generic(ctx, args, false, false)
}
fn evalsha(ctx: &mut Ctx, args: &Args) -> Reply {
    eval_generic(ctx, args, true, false)
}
fn eval_ro(ctx: &mut Ctx, args: &Args) -> Reply {
    eval_generic(ctx, args, false, true)
}
fn evalsha_ro(ctx: &mut Ctx, args: &Args) -> Reply {
    eval_generic(ctx, args, true, true)
}

const NOSCRIPT_ERR: &str = "NOSCRIPT No matching script. Please use EVAL.";

/// Parses `numkeys key... arg...` starting at argument `at`.
pub(crate) fn keys_and_args<'a>(args: &'a Args<'a>, at: usize) -> Result<ScriptInput<'a>, Reply> {
    let numkeys = args.int(at)?;
    let rest = args.len() - at - 1;
    if numkeys > rest as i64 {
        return Err(Reply::error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if numkeys < 0 {
        return Err(Reply::error("ERR Number of keys can't be negative"));
    }
    let split = at + 1 + numkeys as usize;
    Ok(ScriptInput {
        args,
        keys: at + 1..split,
        argv: split..args.len(),
    })
}

/// The refusals Redis makes before running a script with these shebang flags
/// (`scriptPrepareForRun`); `None` lets it run.
pub(crate) fn prepare_refusal(ctx: &Ctx, script_flags: u32, ro: bool) -> Option<Reply> {
    if script_flags & flags::EVAL_COMPAT != 0 || script_flags & flags::NO_WRITES != 0 {
        return None;
    }
    let replica_ro = ctx.store.settings.get("replica-read-only") != Some("no");
    if ctx.store.replica && replica_ro && !ctx.client.from_master {
        return Some(Reply::error(
            "READONLY Can not run script with write flag on readonly replica",
        ));
    }
    if ro {
        return Some(Reply::error(
            "ERR Can not execute a script with write flag using *_ro command.",
        ));
    }
    if too_few_replicas(ctx) {
        return Some(Reply::error(
            "NOREPLICAS Not enough good replicas to write.",
        ));
    }
    None
}

/// True on a master with `min-replicas-to-write` set and fewer good replicas than that.
pub(crate) fn too_few_replicas(ctx: &Ctx) -> bool {
    !ctx.store.replica && ctx.store.repl.too_few_replicas()
}

/// True if the script must not write (`*_RO`, or a `no-writes` shebang).
pub(crate) fn read_only(script_flags: u32, ro: bool) -> bool {
    ro || (script_flags & flags::EVAL_COMPAT == 0 && script_flags & flags::NO_WRITES != 0)
}

fn eval_generic(ctx: &mut Ctx, args: &Args, by_sha: bool, ro: bool) -> Reply {
    let input = match keys_and_args(args, 2) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let sha = if by_sha {
        match Sha::parse(args.get(1)) {
            Some(sha) => sha,
            None => return Reply::error(NOSCRIPT_ERR),
        }
    } else {
        let scripting = &mut ctx.store.scripting;
        let sha = scripting
            .inline_sha
            .take()
            .unwrap_or_else(|| Sha::of(args.get(1)));
        match scripting.load_script_as(sha, args.get(1)) {
            Ok(sha) => sha,
            Err(e) => return Reply::error(e),
        }
    };
    let Some((script_flags, func)) = ctx
        .store
        .scripting
        .scripts
        .get(&sha)
        .map(|s| (s.flags, s.func.clone()))
    else {
        return Reply::error(NOSCRIPT_ERR);
    };
    if let Some(refusal) = prepare_refusal(ctx, script_flags, ro) {
        return refusal;
    }
    let engine = match ctx.store.scripting.eval_engine() {
        Ok(e) => e,
        Err(e) => return Reply::error(e),
    };
    let opts = RunOpts {
        eval: true,
        read_only: read_only(script_flags, ro),
        name: sha.as_str(),
        allow_oom: script_flags & flags::ALLOW_OOM != 0,
    };
    let started = std::time::Instant::now();
    let reply = run(&engine, ctx, &func, input, opts);
    let fast = !ctx.store.scripting.inline_aborted && started.elapsed() < FAST_RUN;
    if let Some(s) = ctx.store.scripting.scripts.get_mut(&sha) {
        s.fast = fast;
    }
    reply
}

/// True if `args` (EVAL/EVALSHA and their `_RO` forms) name a cached script whose last run
/// was fast: the connection then runs it inline. An EVAL's SHA1 is kept for its run
/// ([`Scripting::inline_sha`]; the caller clears it after the request). FCALL is never
/// inline (functions keep no such record).
pub(crate) fn fast_script(scripting: &mut Scripting, args: &Args) -> bool {
    let name = args.get(0);
    if !name.first().is_some_and(|c| c.eq_ignore_ascii_case(&b'e')) {
        return false;
    }
    let by_sha = name.len() >= 7 && name[..7].eq_ignore_ascii_case(b"evalsha");
    let sha = if by_sha {
        Sha::parse(args.get(1))
    } else {
        Some(Sha::of(args.get(1)))
    };
    let fast = sha.is_some_and(|sha| scripting.scripts.get(&sha).is_some_and(|s| s.fast));
    if fast && !by_sha {
        scripting.inline_sha = sha;
    }
    fast
}

const SCRIPT_HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];

/// A HELP reply: each line as a status reply.
pub(crate) fn help(lines: &[&'static str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::simple(l)).collect())
}

fn script(ctx: &mut Ctx, args: &Args) -> Reply {
    let sub = String::from_utf8_lossy(args.get(1)).to_ascii_lowercase();
    let n = args.len();
    match sub.as_str() {
        "help" if n == 2 => help(SCRIPT_HELP),
        "flush" => {
            if n > 3 || (n == 3 && !args.is(2, "sync") && !args.is(2, "async")) {
                return Reply::error("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
            }
            ctx.store.scripting.flush_scripts();
            Reply::Ok
        }
        "exists" if n >= 3 => {
            let s: &Scripting = &ctx.store.scripting;
            Reply::Array(
                args.from(2)
                    .map(|sha| {
                        let known = Sha::parse(sha).is_some_and(|sha| s.scripts.contains_key(&sha));
                        Reply::Int(i64::from(known))
                    })
                    .collect(),
            )
        }
        "load" if n == 3 => match ctx.store.scripting.load_script(args.get(2)) {
            Ok(sha) => Reply::Bulk(Bytes::copy_from_slice(sha.as_str().as_bytes())),
            Err(e) => Reply::error(e),
        },
        "kill" if n == 2 => kill_reply(ctx.store.scripting.busy.kill(true), true),
        "debug" if n == 3 => Reply::error("ERR SCRIPT DEBUG is not supported by sluice node"),
        "help" | "exists" | "load" | "kill" | "debug" => super::subcommand_arity(args),
        _ => super::subcommand_error(args, "SCRIPT"),
    }
}

/// The reply to SCRIPT KILL / FUNCTION KILL.
pub(crate) fn kill_reply(outcome: KillOutcome, eval: bool) -> Reply {
    match outcome {
        KillOutcome::Killed => Reply::Ok,
        KillOutcome::NotBusy => Reply::error("NOTBUSY No scripts in execution right now."),
        KillOutcome::FromMaster => Reply::error("UNKILLABLE The busy script was sent by a master instance in the context of replication and cannot be killed."),
        KillOutcome::Wrote => Reply::error("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."),
        KillOutcome::OtherKind => busy_error(!eval),
    }
}

/// The BUSY refusal while a script runs past the threshold (`eval`: the script is an EVAL).
pub(crate) fn busy_error(eval: bool) -> Reply {
    if eval {
        Reply::error(
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
        )
    } else {
        Reply::error(
            "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.",
        )
    }
}
