//! `redis.call` and `redis.pcall` as plain Lua C functions, as Redis has them: the arguments
//! are read straight off the Lua stack into the run's reused request buffer, the command runs,
//! and the common replies (status, integer, bulk string) are pushed straight back, without
//! mlua's per-call machinery (a lock, a registry reference per argument and per result) or
//! a Lua wrapper frame. A script calls them once per command, so that machinery was most
//! of a short command's cost. Anything else (outside a run, argument errors, command errors,
//! other reply shapes) is left in [`RunState::pending`] and converted by the mlua function
//! registered as [`PENDING`], which also says whether `redis.call` is to raise it.
//!
//! The run's state reaches the C functions through a thread-local pointer, set for the
//! duration of one run by [`install`] (a script runs on one thread, start to end).

use std::cell::{Cell, RefCell};
use std::os::raw::c_int;

use mlua::{ffi, Lua, MultiValue, Value};

use super::convert::{self, number_text};
use super::state::{Pending, RunState};
use crate::node::reply::Reply;
use crate::resp::Protocol;

/// Registry key of the function converting what a call left pending: `(value, raise)`.
pub(super) const PENDING: &std::ffi::CStr = c"sluice.pending";

thread_local! {
    static CURRENT: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
}

/// Makes `st` the state the C functions work with until the guard is dropped.
pub(super) fn install(st: &RefCell<RunState<'_, '_>>) -> Installed {
    CURRENT.with(|c| c.set(st as *const RefCell<RunState<'_, '_>> as *const ()));
    Installed
}

/// Clears the run's state pointer when the run ends (or unwinds).
pub(super) struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(std::ptr::null()));
    }
}

/// The running script's state, if a run is installed on this thread.
pub(super) fn current() -> Option<&'static RefCell<RunState<'static, 'static>>> {
    let p = CURRENT.with(Cell::get);
    // SAFETY: `install` stored a pointer to the run's state, which outlives the run and is
    // cleared when the run ends; callers use it only during the Lua call it was installed
    // for, and the erased lifetimes never escape that call.
    (!p.is_null()).then(|| unsafe { &*(p as *const RefCell<RunState<'static, 'static>>) })
}

/// `redis.call` (`RAISE`) and `redis.pcall`: the command's reply, an error reply raised by
/// `redis.call` as Redis's `luaError` does.
///
/// # Safety
/// Called by Lua only, as a C function.
pub(super) unsafe extern "C-unwind" fn redis_call<const RAISE: bool>(
    l: *mut ffi::lua_State,
) -> c_int {
    if let Some(st) = current() {
        if unsafe { call(l, st) } {
            return 1;
        }
    }
    // SAFETY: a C function has LUA_MINSTACK free slots on entry; no Rust value that needs
    // dropping is alive when `lua_error` unwinds out of this frame.
    unsafe {
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, PENDING.as_ptr());
        ffi::lua_call(l, 0, 2);
        let raise = ffi::lua_toboolean(l, -1) != 0;
        ffi::lua_settop(l, -2);
        if RAISE && raise {
            ffi::lua_error(l);
        }
    }
    1
}

/// Runs the command; true if its reply was pushed.
unsafe fn call(l: *mut ffi::lua_State, st: &RefCell<RunState<'static, 'static>>) -> bool {
    let Ok(mut run) = st.try_borrow_mut() else {
        return false; // the pending function finds nothing pending and reports the recursion
    };
    let run = &mut *run;
    let n = unsafe { ffi::lua_gettop(l) };
    if n < 1 {
        run.pending = Some(Pending::Args(
            "Please specify at least one argument for this redis lib call",
        ));
        return false;
    }
    run.request.begin(n as usize);
    for i in 1..=n {
        match unsafe { ffi::lua_type(l, i) } {
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                let ptr = unsafe { ffi::lua_tolstring(l, i, &mut len) };
                // SAFETY: a Lua string on the stack stays alive and unchanged for the call.
                run.request
                    .arg(unsafe { std::slice::from_raw_parts(ptr.cast(), len) });
            }
            ffi::LUA_TNUMBER => {
                let n = unsafe { ffi::lua_tonumber(l, i) };
                run.request.arg(number_text(n).as_bytes());
            }
            _ => {
                run.pending = Some(Pending::Args(
                    "Lua redis lib command arguments must be strings or integers",
                ));
                return false;
            }
        }
    }
    let req = run.request.finish();
    let reply = match run.call(&req) {
        Ok(r) => r,
        Err(text) => {
            run.pending = Some(Pending::Failed(text));
            return false;
        }
    };
    // Dropped now, so the next call's arguments reuse its bytes.
    drop(req);
    // The pushes below allocate in Lua; they do not fail short of the process running out
    // of memory (the VM has no memory limit).
    match &reply {
        Reply::Ok => unsafe { push_status(l, b"OK") },
        Reply::Simple(s) => unsafe { push_status(l, s.as_bytes()) },
        Reply::Int(n) => unsafe { ffi::lua_pushnumber(l, *n as f64) },
        Reply::Bulk(b) => unsafe {
            ffi::lua_pushlstring(l, b.as_ptr().cast(), b.len());
        },
        Reply::Short(s) => unsafe {
            let b = s.as_bytes();
            ffi::lua_pushlstring(l, b.as_ptr().cast(), b.len());
        },
        _ => {
            run.pending = Some(Pending::Reply(reply));
            return false;
        }
    }
    true
}

/// Pushes `{ok = text}`.
unsafe fn push_status(l: *mut ffi::lua_State, text: &[u8]) {
    unsafe {
        ffi::lua_createtable(l, 0, 1);
        ffi::lua_pushlstring(l, text.as_ptr().cast(), text.len());
        ffi::lua_setfield(l, -2, c"ok".as_ptr());
    }
}

/// The function registered as [`PENDING`]: converts what the C function left pending, as
/// Redis converts a reply; `(value, raise)`.
pub(super) fn pending(lua: &Lua) -> mlua::Result<(Value, bool)> {
    let Some(st) = current() else {
        return outside(lua);
    };
    let Ok(mut run) = st.try_borrow_mut() else {
        let e = convert::error_table(lua, "redis.call/pcall called recursively")?;
        return Ok((Value::Table(e), true));
    };
    let proto = if run.resp3() {
        Protocol::Resp3
    } else {
        Protocol::Resp2
    };
    match run.pending.take() {
        None => {
            let e = convert::error_table(lua, "redis.call/pcall called recursively")?;
            Ok((Value::Table(e), true))
        }
        Some(Pending::Args(text)) => Ok((Value::Table(convert::error_table(lua, text)?), true)),
        Some(Pending::Failed(text)) => {
            let e = convert::error_table(lua, &text)?;
            e.raw_set("ignore_error_stats_update", true)?;
            Ok((Value::Table(e), true))
        }
        Some(Pending::Reply(reply)) => {
            drop(run);
            let failed = reply.is_error();
            Ok((convert::reply_to_lua(lua, &reply, proto)?, failed))
        }
    }
}

/// What the per-run functions give outside a run (a function library's top level, a
/// function a script stored and something calls later): `(error, raise)`.
pub(super) fn outside(lua: &Lua) -> mlua::Result<(Value, bool)> {
    let e = convert::error_table(
        lua,
        "redis.call/pcall can only be called inside a script invocation",
    )?;
    Ok((Value::Table(e), true))
}

/// `redis.setresp(2|3)`: (error, raise?).
pub(super) fn setresp(lua: &Lua, args: MultiValue) -> mlua::Result<(Value, bool)> {
    let Some(st) = current() else {
        return outside(lua);
    };
    let resp = match args.iter().next() {
        Some(Value::Number(n)) if args.len() == 1 => *n as i64,
        Some(Value::Integer(n)) if args.len() == 1 => *n,
        _ if args.len() != 1 => {
            let e = convert::error_table(lua, "redis.setresp() requires one argument.")?;
            return Ok((Value::Table(e), true));
        }
        _ => 0,
    };
    let proto = match resp {
        2 => Protocol::Resp2,
        3 => Protocol::Resp3,
        _ => {
            let e = convert::error_table(lua, "RESP version must be 2 or 3.")?;
            return Ok((Value::Table(e), true));
        }
    };
    if let Ok(mut s) = st.try_borrow_mut() {
        s.client.proto = proto;
    }
    Ok((Value::Nil, false))
}

/// `redis.set_repl(flags)`: (error, raise?).
pub(super) fn set_repl(lua: &Lua, args: MultiValue) -> mlua::Result<(Value, bool)> {
    let Some(st) = current() else {
        return outside(lua);
    };
    let flags = match args.iter().next() {
        Some(Value::Number(n)) if args.len() == 1 => *n as i64,
        Some(Value::Integer(n)) if args.len() == 1 => *n,
        _ if args.len() != 1 => {
            let e = convert::error_table(lua, "redis.set_repl() requires two arguments.")?;
            return Ok((Value::Table(e), true));
        }
        _ => 0,
    };
    if flags & !3 != 0 {
        let e = convert::error_table(
            lua,
            "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
        )?;
        return Ok((Value::Table(e), true));
    }
    if let Ok(mut s) = st.try_borrow_mut() {
        s.replicate = flags != 0;
    }
    Ok((Value::Nil, false))
}
