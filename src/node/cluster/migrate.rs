//! MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw] [AUTH2 user pw] [KEYS k...]
//!
//! As in Redis, MIGRATE is synchronous: the node (its one lock) waits for the target, at most
//! `timeout` ms per step. Values travel as RESTORE-ASKING with Redis's own DUMP payload
//! (`crate::node::rdb`), so the target may be a sluice node or a redis-server.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;

use super::dump;
use crate::node::args::parse_int;
use crate::node::args::Args;
use crate::node::cmd::ctx::Ctx;
use crate::node::notify;
use crate::node::reply::Reply;

/// What MIGRATE was asked to do.
struct Plan {
    host: String,
    port: u16,
    db: i64,
    timeout: Duration,
    copy: bool,
    replace: bool,
    auth: Vec<Bytes>,
    keys: Vec<Bytes>,
}

fn parse(args: &Args<'_>) -> Result<Plan, Reply> {
    let port = parse_int(args.get(2))
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| Reply::error("ERR Invalid port"))?;
    let db = args.int(4)?;
    let timeout = args.int(5)?;
    let mut plan = Plan {
        host: String::from_utf8_lossy(args.get(1)).into_owned(),
        port,
        db,
        timeout: Duration::from_millis(u64::try_from(timeout).unwrap_or(0).max(1000)),
        copy: false,
        replace: false,
        auth: Vec::new(),
        keys: Vec::new(),
    };
    let mut i = 6;
    while i < args.len() {
        if args.is(i, "copy") {
            plan.copy = true;
        } else if args.is(i, "replace") {
            plan.replace = true;
        } else if args.is(i, "auth") && i + 1 < args.len() {
            plan.auth = vec![args.owned(i + 1)];
            i += 1;
        } else if args.is(i, "auth2") && i + 2 < args.len() {
            plan.auth = vec![args.owned(i + 1), args.owned(i + 2)];
            i += 2;
        } else if args.is(i, "keys") {
            if !args.get(3).is_empty() {
                return Err(Reply::error(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            plan.keys = (i + 1..args.len()).map(|j| args.owned(j)).collect();
            break;
        } else {
            return Err(crate::node::args::syntax());
        }
        i += 1;
    }
    if plan.keys.is_empty() && !args.get(3).is_empty() {
        plan.keys.push(args.owned(3));
    }
    Ok(plan)
}

fn encode_cmd(out: &mut Vec<u8>, parts: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", parts.len()).as_bytes());
    for p in parts {
        out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
}

/// MIGRATE.
pub(crate) fn migrate(ctx: &mut Ctx<'_>, args: &Args<'_>) -> Reply {
    let plan = match parse(args) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let now = ctx.now_ms();
    let mut out = Vec::new();
    if !plan.auth.is_empty() {
        let mut parts: Vec<&[u8]> = vec![b"AUTH"];
        parts.extend(plan.auth.iter().map(|a| a.as_ref()));
        encode_cmd(&mut out, &parts);
    }
    encode_cmd(&mut out, &[b"SELECT", plan.db.to_string().as_bytes()]);
    let mut moved = Vec::new();
    for key in &plan.keys {
        let ttl = ctx.expire_at(key).map_or(0, |at| (at - now).max(1));
        let Some(v) = ctx.lookup(key) else { continue };
        let payload = dump::encode(v);
        let ttl = ttl.to_string();
        let mut parts: Vec<&[u8]> = vec![b"RESTORE-ASKING", key, ttl.as_bytes(), &payload];
        if plan.replace {
            parts.push(b"REPLACE");
        }
        encode_cmd(&mut out, &parts);
        moved.push(key.clone());
    }
    if moved.is_empty() {
        return Reply::simple("NOKEY");
    }
    let replies = 1 + usize::from(!plan.auth.is_empty()) + moved.len();
    let answers = match exchange(&plan, &out, replies) {
        Ok(a) => a,
        Err(e) => return Reply::error(format!("IOERR error or timeout {e} target instance")),
    };
    let mut error = None;
    let first_restore = replies - moved.len();
    let mut done = Vec::new();
    for (i, line) in answers.iter().enumerate() {
        if let Some(e) = line.strip_prefix('-') {
            error.get_or_insert_with(|| format!("ERR Target instance replied with error: {e}"));
        } else if i >= first_restore {
            done.push(moved[i - first_restore].clone());
        }
    }
    if !plan.copy && !done.is_empty() {
        let mut del: Vec<Bytes> = vec![Bytes::from_static(b"DEL")];
        for k in &done {
            if ctx.delete(k) {
                ctx.changed(k, notify::GENERIC, "del");
                del.push(k.clone());
            }
        }
        ctx.propagate_as(del);
    }
    match error {
        Some(e) => Reply::error(e),
        None => Reply::Ok,
    }
}

/// Sends `out` and reads `n` one-line replies (RESTORE, SELECT and AUTH answer +OK or -ERR).
fn exchange(plan: &Plan, out: &[u8], n: usize) -> Result<Vec<String>, &'static str> {
    let addr = (plan.host.as_str(), plan.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or("connecting to")?;
    let mut s = TcpStream::connect_timeout(&addr, plan.timeout).map_err(|_| "connecting to")?;
    let _ = s.set_read_timeout(Some(plan.timeout));
    let _ = s.set_write_timeout(Some(plan.timeout));
    let _ = s.set_nodelay(true);
    s.write_all(out).map_err(|_| "writing to")?;
    let mut r = BufReader::new(s);
    let mut lines = Vec::with_capacity(n);
    for _ in 0..n {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return Err("reading from"),
            Ok(_) => lines.push(line.trim_end().to_string()),
        }
    }
    Ok(lines)
}
