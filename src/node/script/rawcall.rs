//! `redis.call` as a plain Lua C function: the arguments are read straight off the Lua
//! stack and the common replies (status, integer, bulk string) pushed straight back, without
//! mlua's per-call machinery (a lock, a registry reference per argument and per result).
//! A script calls it once per command, so that machinery was most of a short command's
//! cost. Anything else (argument errors, command errors, other reply shapes) is left in
//! [`RunState::pending`] and converted by the mlua function `hooks.pending`, exactly as
//! before.
//!
//! The run's state reaches the C function through a thread-local pointer, set for the
//! duration of one run by [`install`] (a script runs on one thread, start to end).

use std::cell::{Cell, RefCell};
use std::os::raw::c_int;

use mlua::ffi;

use super::convert::number_text;
use super::state::{Pending, RunState};
use crate::node::reply::Reply;

thread_local! {
    static CURRENT: Cell<*const ()> = const { Cell::new(std::ptr::null()) };
}

/// Makes `st` the state [`raw_call`] works with until the guard is dropped.
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

/// One `redis.call` argument: a Lua string's bytes (on the stack for the whole call) or a
/// number's text.
enum Arg<'l> {
    Lua(&'l [u8]),
    Owned(Vec<u8>),
}

impl AsRef<[u8]> for Arg<'_> {
    fn as_ref(&self) -> &[u8] {
        match self {
            Arg::Lua(b) => b,
            Arg::Owned(v) => v,
        }
    }
}

/// `hooks.call(...)`: returns `reply, raise` when it could convert the reply itself, or
/// `nil, false, true` when `hooks.pending()` is to make the result.
///
/// # Safety
/// Called by Lua only, as a C function, during a run set up with [`install`].
pub(super) unsafe extern "C-unwind" fn raw_call(l: *mut ffi::lua_State) -> c_int {
    let p = CURRENT.with(Cell::get);
    if !p.is_null() {
        // SAFETY: `install` stored a pointer to the run's state, which outlives the run;
        // the lifetimes are erased only for the time of this call.
        let st = unsafe { &*(p as *const RefCell<RunState<'static, 'static>>) };
        if unsafe { call(l, st) } {
            unsafe { ffi::lua_pushboolean(l, 0) };
            return 2;
        }
    }
    unsafe {
        ffi::lua_pushnil(l);
        ffi::lua_pushboolean(l, 0);
        ffi::lua_pushboolean(l, 1);
    }
    3
}

/// Runs the command; true if its reply was pushed.
unsafe fn call(l: *mut ffi::lua_State, st: &RefCell<RunState<'static, 'static>>) -> bool {
    let Ok(mut run) = st.try_borrow_mut() else {
        return false; // hooks.pending() finds nothing pending and reports the recursion
    };
    let n = unsafe { ffi::lua_gettop(l) };
    if n < 1 {
        run.pending = Some(Pending::Args(
            "Please specify at least one argument for this redis lib call",
        ));
        return false;
    }
    let mut argv: Vec<Arg> = Vec::with_capacity(n as usize);
    for i in 1..=n {
        match unsafe { ffi::lua_type(l, i) } {
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                let ptr = unsafe { ffi::lua_tolstring(l, i, &mut len) };
                // SAFETY: a Lua string on the stack stays alive and unchanged for the call.
                argv.push(Arg::Lua(unsafe {
                    std::slice::from_raw_parts(ptr.cast(), len)
                }));
            }
            ffi::LUA_TNUMBER => {
                let n = unsafe { ffi::lua_tonumber(l, i) };
                argv.push(Arg::Owned(number_text(n).into_bytes()));
            }
            _ => {
                run.pending = Some(Pending::Args(
                    "Lua redis lib command arguments must be strings or integers",
                ));
                return false;
            }
        }
    }
    let reply = match run.call(&argv) {
        Ok(r) => r,
        Err(text) => {
            run.pending = Some(Pending::Failed(text));
            return false;
        }
    };
    drop(argv);
    drop(run);
    // The pushes below allocate in Lua; they do not fail short of the process running out
    // of memory (the VM has no memory limit).
    match &reply {
        Reply::Ok => unsafe { push_status(l, b"OK") },
        Reply::Simple(s) => unsafe { push_status(l, s.as_bytes()) },
        Reply::Int(n) => unsafe { ffi::lua_pushnumber(l, *n as f64) },
        Reply::Bulk(b) => unsafe {
            ffi::lua_pushlstring(l, b.as_ptr().cast(), b.len());
        },
        _ => {
            if let Ok(mut run) = st.try_borrow_mut() {
                run.pending = Some(Pending::Reply(reply));
            }
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
