//! One script run: `redis.call` / `redis.pcall` / `redis.setresp` / `redis.set_repl` bound
//! to the calling command's context for the duration of the run, the time-limit hook, and
//! the conversion of the result (or error) into the caller's reply.

use std::cell::RefCell;
use std::ops::Range;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mlua::{ffi, Function, HookTriggers, Lua, Table, Value};

use super::busy::Running;
use super::convert;
use super::engine::{Engine, HOOK_EVERY};
use super::rawcall;
use super::state::RunState;
use crate::node::args::Args;
use crate::node::client::ClientState;
use crate::node::cmd::Ctx;
use crate::node::reply::Reply;
use crate::resp::Protocol;

/// How a script runs.
pub(crate) struct RunOpts<'n> {
    /// EVAL (KEYS/ARGV globals) rather than FCALL (keys and args as arguments).
    pub(crate) eval: bool,
    /// Write commands are refused (`*_RO`, `no-writes`).
    pub(crate) read_only: bool,
    /// The script's SHA1 or the function's name, for error messages.
    pub(crate) name: &'n str,
    /// The script declared `allow-oom`: its writes pass even over `maxmemory`.
    pub(crate) allow_oom: bool,
}

/// A script's keys and arguments: two runs of the calling command's arguments.
pub(crate) struct ScriptInput<'a> {
    pub(crate) args: &'a Args<'a>,
    pub(crate) keys: Range<usize>,
    pub(crate) argv: Range<usize>,
}

impl ScriptInput<'_> {
    fn keys(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.keys.clone().map(|i| self.args.get(i))
    }
    fn argv(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.argv.clone().map(|i| self.args.get(i))
    }
}

/// Runs `func` for the command in `ctx` and returns the caller's reply.
pub(crate) fn run(
    engine: &Engine,
    ctx: &mut Ctx<'_>,
    func: &Function,
    input: ScriptInput<'_>,
    opts: RunOpts<'_>,
) -> Reply {
    // Cleared when dropped: at the end of the run, or if a command inside it panics.
    let running = start_busy(ctx, opts.eval);
    let busy = running.busy().clone();
    let caller_proto = ctx.proto();
    let in_exec = ctx.in_exec();
    let exec_open = in_exec && ctx.exec_open();
    let client = script_client(ctx);
    let inline = ctx.store.scripting.inline;
    // The script's writes stay on the feed until it ends (see `Ctx::finish`).
    let feed_mark = ctx.store.feed.len();
    let effects = Arc::new(AtomicBool::new(false));
    let aborted = Arc::new(AtomicBool::new(false));
    let st = RefCell::new(RunState {
        ctx,
        client,
        read_only: opts.read_only,
        allow_oom: opts.allow_oom,
        wrote: false,
        replicate: true,
        exec_open,
        busy: busy.clone(),
        effects: effects.clone(),
        aborted: aborted.clone(),
        pending: None,
        request: Default::default(),
        mark: std::time::Instant::now(),
    });
    let left_loop = Arc::new(AtomicBool::new(false));
    let hook = time_limit_hook(
        engine,
        busy.clone(),
        inline,
        effects,
        aborted.clone(),
        left_loop.clone(),
    );
    let _ = engine
        .lua
        .set_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), hook);
    let outcome = call_with_state(engine, &st, func, &input, opts.eval);
    engine.lua.remove_hook();
    let killed = busy.kill_requested();
    let st = st.into_inner();
    if left_loop.load(Ordering::Relaxed) {
        // Taken before the run's mark goes, so other connections never see the store free
        // while this batch still holds it; kept in the batch's context, which an unwinding
        // batch drops with it.
        st.ctx.hold_script_claim(busy.claim());
    }
    drop(running);
    if aborted.load(Ordering::Relaxed) {
        st.ctx.store.scripting.inline_aborted = true;
        return Reply::Null;
    }
    let resp3 = st.resp3();
    let (ctx, exec_open) = (st.ctx, st.exec_open);
    if killed && ctx.shared.shutdown.is_cancelled() {
        // Stopped by SHUTDOWN NOSAVE (or a signal) before its end: Redis exits inside the
        // script, before propagating any of it, so none of it reaches the AOF or replicas.
        ctx.store.feed.truncate(feed_mark);
    } else {
        close_transaction(ctx, exec_open, in_exec);
    }
    // An incremental collection step every few scripts keeps garbage from piling up
    // without a full cycle's latency (Redis steps every 50 scripts).
    if busy.tick_gc() {
        engine.gc_step();
    }
    let (reply, counted) = caller_reply(outcome, killed, resp3, caller_proto, opts.name);
    if let Some(counted) = counted {
        ctx.client.error_counted = counted;
    }
    reply
}

/// Marks a script running for the other connections (BUSY after `busy-reply-threshold`)
/// until the returned mark is dropped.
fn start_busy(ctx: &Ctx<'_>, eval: bool) -> Running {
    let busy = ctx.store.scripting.busy.clone();
    let threshold = ctx
        .store
        .settings
        .get("busy-reply-threshold")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(5000);
    busy.threshold_ms.store(threshold, Ordering::Relaxed);
    busy.start(eval, ctx.client.from_master)
}

/// The client a script's commands run as: the caller's database, READONLY and replication
/// origin, authenticated, RESP2 until `redis.setresp`.
fn script_client(ctx: &Ctx<'_>) -> ClientState {
    ClientState {
        id: ctx.client.id,
        db: ctx.client.db,
        authed: true,
        from_master: ctx.client.from_master,
        // As Redis checks a script's calls against the caller's READONLY: a read-only
        // script on a replica reads its master's slots.
        cluster_readonly: ctx.client.cluster_readonly,
        in_script: true,
        last_cmd: "NULL",
        ..ClientState::default()
    }
}

/// The hook Lua calls every [`HOOK_EVERY`] instructions. An inline script (`inline`) that
/// has had no effect yet is stopped, to run again off the event loop (where BUSY and
/// SCRIPT KILL work); one that already wrote must finish, so its thread hands the event
/// loop to another thread first (`left_loop`, see `handoff.rs`); the run then claims `busy`
/// until its connection has released the store. Any script stops once SCRIPT KILL (or SHUTDOWN)
/// asked it to.
fn time_limit_hook(
    engine: &Engine,
    busy: std::sync::Arc<super::busy::Busy>,
    inline: bool,
    effects: std::sync::Arc<std::sync::atomic::AtomicBool>,
    aborted: std::sync::Arc<std::sync::atomic::AtomicBool>,
    left_loop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> impl Fn(&Lua, &mlua::debug::Debug<'_>) -> mlua::Result<mlua::VmState> + Send + 'static {
    use std::sync::atomic::Ordering;
    let hooks = engine.hooks.clone();
    let _ = hooks.raw_set("killed", false);
    // Checked once: after one attempt the script runs on wherever it then is.
    let tried = std::sync::atomic::AtomicBool::new(false);
    move |_, _| {
        if inline && (aborted.load(Ordering::Relaxed) || !effects.load(Ordering::Relaxed)) {
            aborted.store(true, Ordering::Relaxed);
            return Err(mlua::Error::runtime(
                "Script stopped to run off the event loop",
            ));
        }
        if inline && !tried.swap(true, Ordering::Relaxed) && super::handoff::leave_event_loop() {
            left_loop.store(true, Ordering::Relaxed);
        }
        if busy.kill_requested() {
            let _ = hooks.raw_set("killed", true);
            return Err(mlua::Error::runtime(
                "Script killed by user with SCRIPT KILL...",
            ));
        }
        Ok(mlua::VmState::Continue)
    }
}

/// Closes the MULTI a script's writes opened on the feed, unless the script ran inside an
/// EXEC, whose own MULTI it joined (that EXEC closes it).
fn close_transaction(ctx: &mut Ctx<'_>, exec_open: bool, in_exec: bool) {
    if !exec_open {
        return;
    }
    if in_exec {
        ctx.set_exec_open(true);
    } else {
        let db = ctx.db_index();
        ctx.store.feed.push(db, &[b"EXEC"]);
        ctx.store.publish_feed();
    }
}

/// The caller's reply for the script's outcome, and whether its error was already counted
/// by the `redis.call` that met it (`None`: the run itself failed, nothing to say).
fn caller_reply(
    outcome: mlua::Result<(bool, Value)>,
    killed: bool,
    resp3: bool,
    caller_proto: Protocol,
    name: &str,
) -> (Reply, Option<bool>) {
    match outcome {
        Ok((true, v)) => {
            let reply = convert::lua_to_reply(&v, resp3, caller_proto);
            let counted = reply.is_error() && counted(&v);
            (reply, Some(counted))
        }
        Ok((false, v)) => {
            if let (true, Value::Table(t)) = (killed, &v) {
                let _ = t.raw_set("err", "ERR Script killed by user with SCRIPT KILL...");
            }
            (error_reply(&v, name), Some(counted(&v)))
        }
        Err(e) => (
            Reply::error(format!(
                "ERR Error running script {}, {:.100}",
                name,
                e.to_string()
            )),
            None,
        ),
    }
}

/// True for an error table whose error was counted when a `redis.call` met it.
fn counted(v: &Value) -> bool {
    matches!(v, Value::Table(t) if t.raw_get::<bool>("ignore_error_stats_update").unwrap_or(false))
}

/// Calls the runner with `st` installed for the C functions and hooks that need the run.
fn call_with_state(
    engine: &Engine,
    st: &RefCell<RunState>,
    func: &Function,
    input: &ScriptInput<'_>,
    eval: bool,
) -> mlua::Result<(bool, Value)> {
    let lua = &engine.lua;
    let keys_t = sequence(lua, input.keys())?;
    let args_t = sequence(lua, input.argv())?;
    let _installed = rawcall::install(st);
    if eval {
        engine.real_globals.raw_set("KEYS", keys_t)?;
        engine.real_globals.raw_set("ARGV", args_t)?;
        engine
            .runner
            .call::<(bool, Value)>((func, Value::Nil, Value::Nil))
    } else {
        engine.runner.call::<(bool, Value)>((func, keys_t, args_t))
    }
}

/// A Lua sequence of strings (KEYS, ARGV), built on the Lua stack in one protected call
/// rather than through one registry reference per element.
fn sequence<'i>(lua: &Lua, items: impl ExactSizeIterator<Item = &'i [u8]>) -> mlua::Result<Table> {
    // SAFETY: the closure pushes exactly one table (two slots at most, which `exec_raw`
    // checks for) and leaves it as the result.
    unsafe {
        lua.exec_raw((), |l| {
            ffi::lua_createtable(l, c_int::try_from(items.len()).unwrap_or(0), 0);
            for (i, item) in items.enumerate() {
                ffi::lua_pushlstring(l, item.as_ptr().cast(), item.len());
                ffi::lua_rawseti(l, -2, i as ffi::lua_Integer + 1);
            }
        })
    }
}

/// The caller's error reply for a script that raised `err` (Redis's `luaCallFunction`).
fn error_reply(err: &Value, name: &str) -> Reply {
    let Value::Table(t) = err else {
        let text = match err {
            Value::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
            _ => "execution failure".into(),
        };
        return Reply::error(format!("ERR Error running script {name}, {text:.100}"));
    };
    let msg = match t.raw_get::<Value>("err") {
        Ok(Value::String(s)) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
        _ => String::new(),
    };
    let mut text = msg;
    let source = t.raw_get::<Value>("source").ok();
    let line = t.raw_get::<Value>("line").ok();
    if let (Some(Value::String(src)), Some(line)) = (source, line) {
        let line = match line {
            Value::Number(n) => Some(format!("{}", n as i64)),
            Value::Integer(n) => Some(n.to_string()),
            Value::String(s) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
            _ => None,
        };
        if let Some(line) = line {
            text.push_str(&format!(
                " script: {name}, on {}:{line}.",
                String::from_utf8_lossy(&src.as_bytes())
            ));
        }
    }
    Reply::Error(text.replace(['\r', '\n'], " ").into())
}
