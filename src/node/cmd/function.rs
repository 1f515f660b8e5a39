//! FUNCTION LOAD|DELETE|FLUSH|LIST|DUMP|RESTORE|STATS|KILL|HELP, FCALL and FCALL_RO.
//!
//! LOAD, DELETE, FLUSH and RESTORE count as changes, so they are propagated verbatim to
//! replicas and the AOF (as in Redis); replicas refuse them from clients.

use bytes::Bytes;

use super::scripting::{help, keys_and_args, kill_reply, prepare_refusal, read_only};
use super::{Args, Command, Ctx, Flags, Reply};
use crate::node::script::functions::parse_dump;
use crate::node::script::run::{run, RunOpts};

/// The functions family.
pub static COMMANDS: &[Command] = &[
    Command::new("function", function, -2, Flags::NOSCRIPT),
    Command::new("fcall", fcall, -3, Flags::NOSCRIPT.with(Flags::STALE)).runs_script(),
    Command::new(
        "fcall_ro",
        fcall_ro,
        -3,
        Flags::NOSCRIPT.with(Flags::STALE).with(Flags::READONLY),
    )
    .runs_script(),
];

fn fcall(ctx: &mut Ctx, args: &Args) -> Reply {
    fcall_generic(ctx, args, false)
}
fn fcall_ro(ctx: &mut Ctx, args: &Args) -> Reply {
    fcall_generic(ctx, args, true)
}

fn fcall_generic(ctx: &mut Ctx, args: &Args, ro: bool) -> Reply {
    let name = String::from_utf8_lossy(args.get(1)).into_owned();
    let Some((engine, func, fflags)) = ctx.store.scripting.functions.find(&name) else {
        return Reply::error("ERR Function not found");
    };
    if args.int(2).is_err() {
        return Reply::error("ERR Bad number of keys provided");
    }
    let input = match keys_and_args(args, 2) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if let Some(refusal) = prepare_refusal(ctx, fflags, ro) {
        return refusal;
    }
    let f = &ctx.store.scripting.functions;
    ctx.store
        .scripting
        .busy
        .set_function(Some(crate::node::script::busy::FunctionRun {
            name: name.clone(),
            command: args.from(0).map(bytes::Bytes::copy_from_slice).collect(),
            libraries: f.libraries.len(),
            functions: f.function_count(),
        }));
    let opts = RunOpts {
        eval: false,
        read_only: read_only(fflags, ro),
        name: &name,
        allow_oom: fflags & crate::node::script::flags::ALLOW_OOM != 0,
    };
    run(&engine, ctx, &func, input, opts)
}

const HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
];

fn function(ctx: &mut Ctx, args: &Args) -> Reply {
    let sub = String::from_utf8_lossy(args.get(1)).to_ascii_lowercase();
    let n = args.len();
    let writes = matches!(sub.as_str(), "load" | "delete" | "flush" | "restore");
    if writes && ctx.store.replica && !ctx.client.from_master {
        return Reply::error("READONLY You can't write against a read only replica.");
    }
    match sub.as_str() {
        "help" if n == 2 => help(HELP),
        "load" if n >= 3 => load(ctx, args),
        "delete" if n == 3 => {
            let name = String::from_utf8_lossy(args.get(2)).into_owned();
            if !ctx.store.scripting.functions.delete(&name) {
                return Reply::error("ERR Library not found");
            }
            ctx.dirty(1);
            Reply::Ok
        }
        "flush" if n <= 3 => {
            if n == 3 && !args.is(2, "sync") && !args.is(2, "async") {
                return Reply::error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
            }
            ctx.store.scripting.functions.flush();
            ctx.dirty(1);
            Reply::Ok
        }
        "list" => list(ctx, args),
        "dump" if n == 2 => Reply::Bulk(Bytes::from(ctx.store.scripting.functions.dump())),
        "restore" if n == 3 || n == 4 => restore(ctx, args),
        "stats" if n == 2 => stats(ctx),
        "kill" if n == 2 => kill_reply(ctx.store.scripting.busy.kill(false), false),
        "restore" | "flush" if n > 2 => Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try FUNCTION HELP."
        )),
        "help" | "load" | "delete" | "dump" | "restore" | "stats" | "kill" => {
            super::subcommand_arity(args)
        }
        _ => super::subcommand_error(args, "FUNCTION"),
    }
}

fn load(ctx: &mut Ctx, args: &Args) -> Reply {
    let mut replace = false;
    let mut at = 2;
    while at < args.len() - 1 {
        if args.is(at, "replace") {
            replace = true;
            at += 1;
            continue;
        }
        return Reply::error(format!(
            "ERR Unknown option given: {}",
            String::from_utf8_lossy(args.get(at))
        ));
    }
    let scripting = &mut ctx.store.scripting;
    let rand = scripting.rand48.clone();
    match scripting.functions.load(args.get(at), replace, &rand) {
        Ok(name) => {
            ctx.dirty(1);
            Reply::Bulk(Bytes::from(name))
        }
        Err(e) => Reply::error(e),
    }
}

fn list(ctx: &mut Ctx, args: &Args) -> Reply {
    let (mut with_code, mut pattern) = (false, None);
    let mut i = 2;
    while i < args.len() {
        if !with_code && args.is(i, "withcode") {
            with_code = true;
        } else if pattern.is_none() && args.is(i, "libraryname") {
            if i + 1 >= args.len() {
                return Reply::error("ERR library name argument was not given");
            }
            i += 1;
            pattern = Some(args.get(i));
        } else {
            return Reply::error(format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(args.get(i))
            ));
        }
        i += 1;
    }
    let mut out = Vec::new();
    for lib in ctx.store.scripting.functions.libraries.values() {
        if let Some(p) = pattern {
            if !crate::node::glob::matches_case(p, lib.name.as_bytes(), true) {
                continue;
            }
        }
        let functions = lib
            .functions
            .values()
            .map(|f| {
                let flag_names = crate::node::script::flags::NAMES
                    .iter()
                    .filter(|(bit, _)| f.flags & bit != 0)
                    .map(|(_, n)| Reply::simple(n))
                    .collect();
                Reply::Map(vec![
                    (Reply::bulk(b"name"), Reply::bulk(f.name.as_bytes())),
                    (
                        Reply::bulk(b"description"),
                        f.desc
                            .as_ref()
                            .map_or(Reply::Null, |d| Reply::bulk(d.as_bytes())),
                    ),
                    (Reply::bulk(b"flags"), Reply::Set(flag_names)),
                ])
            })
            .collect();
        let mut fields = vec![
            (
                Reply::bulk(b"library_name"),
                Reply::bulk(lib.name.as_bytes()),
            ),
            (Reply::bulk(b"engine"), Reply::bulk(b"LUA")),
            (Reply::bulk(b"functions"), Reply::Array(functions)),
        ];
        if with_code {
            fields.push((Reply::bulk(b"library_code"), Reply::Bulk(lib.code.clone())));
        }
        out.push(Reply::Map(fields));
    }
    Reply::Array(out)
}

fn restore(ctx: &mut Ctx, args: &Args) -> Reply {
    #[derive(PartialEq)]
    enum Policy {
        Append,
        Replace,
        Flush,
    }
    let policy = if args.len() == 4 {
        if args.is(3, "append") {
            Policy::Append
        } else if args.is(3, "replace") {
            Policy::Replace
        } else if args.is(3, "flush") {
            Policy::Flush
        } else {
            return Reply::error(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            );
        }
    } else {
        Policy::Append
    };
    let Some(codes) = parse_dump(args.get(2)) else {
        return Reply::error("ERR DUMP payload version or checksum are wrong");
    };
    let scripting = &mut ctx.store.scripting;
    let rand = scripting.rand48.clone();
    // Load into a scratch set first so a failure leaves the current libraries untouched.
    let mut fresh = crate::node::script::functions::Functions::default();
    for code in &codes {
        if let Err(e) = fresh.load(code, false, &rand) {
            return Reply::error(e);
        }
    }
    let current = &mut scripting.functions;
    if policy == Policy::Flush {
        current.flush();
    }
    let names: Vec<String> = fresh.libraries.keys().cloned().collect();
    if policy == Policy::Append {
        if let Some(dup) = names.iter().find(|n| current.libraries.contains_key(*n)) {
            return Reply::error(format!("ERR Library {dup} already exists"));
        }
    }
    let backup = current.codes();
    for code in &codes {
        if let Err(e) = current.load(code, true, &rand) {
            // Put back what was there (best effort: it loaded before).
            current.flush();
            for c in &backup {
                let _ = current.load(c, true, &rand);
            }
            return Reply::error(e);
        }
    }
    ctx.dirty(1);
    Reply::Ok
}

fn stats(ctx: &mut Ctx) -> Reply {
    let f = &ctx.store.scripting.functions;
    stats_reply(None, f.libraries.len(), f.function_count())
}

/// FUNCTION STATS: the running function (name, command, ms) if any, and the counts.
pub(crate) fn stats_reply(
    running: Option<(crate::node::script::busy::FunctionRun, u128)>,
    libraries: usize,
    functions: usize,
) -> Reply {
    let running = match running {
        None => Reply::Null,
        Some((run, ms)) => Reply::Map(vec![
            (Reply::bulk(b"name"), Reply::bulk(run.name.as_bytes())),
            (
                Reply::bulk(b"command"),
                Reply::Array(run.command.into_iter().map(Reply::Bulk).collect()),
            ),
            (
                Reply::bulk(b"duration_ms"),
                Reply::Int(i64::try_from(ms).unwrap_or(i64::MAX)),
            ),
        ]),
    };
    Reply::Map(vec![
        (Reply::bulk(b"running_script"), running),
        (
            Reply::bulk(b"engines"),
            Reply::Map(vec![(
                Reply::bulk(b"LUA"),
                Reply::Map(vec![
                    (
                        Reply::bulk(b"libraries_count"),
                        Reply::Int(libraries as i64),
                    ),
                    (
                        Reply::bulk(b"functions_count"),
                        Reply::Int(functions as i64),
                    ),
                ]),
            )]),
        ),
    ])
}
