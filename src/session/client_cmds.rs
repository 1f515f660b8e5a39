//! CLIENT LIST, CLIENT INFO and CLIENT KILL over the clients of the caller's pool (the
//! registry in `clients`), with Redis 7.0's filters, replies and error texts.

use bytes::{Bytes, BytesMut};

use super::clients::{ClientEntry, ClientType};
use super::local::parse_int;
use super::{error_bytes, Io, Session};
use crate::command::CommandInfo;
use crate::resp::{encode, Protocol, Request};

/// The one user a pool without configured users has.
const USER: &str = "default";

/// What CLIENT KILL's filters select.
#[derive(Default)]
struct KillFilter {
    id: Option<u64>,
    addr: Option<Vec<u8>>,
    laddr: Option<Vec<u8>>,
    user: Option<Vec<u8>>,
    kind: Option<ClientType>,
    skipme: bool,
}

impl Session {
    /// Writes what this client is doing into its registry entry (once per batch of requests:
    /// one uncontended lock).
    pub(super) fn note_activity(&self, last: Option<&'static CommandInfo>, io: &Io) {
        // Not kept up to date per request: a batch's last command is what CLIENT LIST shows.
        let mut s = self.entry.state();
        if let Some(info) = last {
            s.cmd = info.name;
        }
        s.db = self.db;
        s.resp = if self.proto == Protocol::Resp3 { 3 } else { 2 };
        s.last_active = super::seconds_since_start();
        s.qbuf = io.rbuf.len();
        s.qbuf_free = io.rbuf.capacity() - io.rbuf.len();
        s.obl = io.out.len();
    }

    /// This client's name (CLIENT SETNAME / HELLO SETNAME).
    pub(super) fn client_name(&self) -> Option<Bytes> {
        self.entry.state().name.clone()
    }

    pub(super) fn set_client_name(&self, name: Option<Bytes>) {
        self.entry.state().name = name;
    }

    /// Sets the flag CLIENT LIST shows for this client (`P`, `x`, `b`, `O`; None: `N`).
    pub(super) fn set_client_flag(&self, flag: Option<char>) {
        self.entry.state().flag = flag;
    }

    /// CLIENT INFO.
    pub(super) fn client_info(&self, req: &Request) -> Bytes {
        self.sync_own_entry("client|info", req);
        let mut out = BytesMut::new();
        let line = self.entry.line(Some("client|info"), USER);
        encode::verbatim(&mut out, self.proto, line.as_bytes());
        out.freeze()
    }

    /// CLIENT LIST [TYPE type] [ID id ...]: the pool's clients.
    pub(super) fn client_list(&self, req: &Request) -> Bytes {
        self.sync_own_entry("client|list", req);
        let mut ids: Option<Vec<u64>> = None;
        let mut kind = None;
        if req.len() == 4 && req.arg(2).eq_ignore_ascii_case(b"type") {
            match ClientType::parse(req.arg(3)) {
                Some(t) => kind = Some(t),
                None => return unknown_type(req.arg(3)),
            }
        } else if req.len() > 3 && req.arg(2).eq_ignore_ascii_case(b"id") {
            let mut list = Vec::new();
            for i in 3..req.len() {
                // Any integer: ids that match no client (0, negatives) list nothing.
                match parse_int(req.arg(i)) {
                    Some(id) => list.push(id as u64),
                    None => return error_bytes("ERR Invalid client ID"),
                }
            }
            ids = Some(list);
        } else if req.len() != 2 {
            return error_bytes("ERR syntax error");
        }
        let mut text = String::new();
        for e in self.pool.registry.snapshot() {
            if ids.as_ref().is_some_and(|l| !l.contains(&e.id)) {
                continue;
            }
            if kind.is_some_and(|t| !e.is_type(t)) {
                continue;
            }
            let own = (e.id == self.id).then_some("client|list");
            text.push_str(&e.line(own, USER));
        }
        let mut out = BytesMut::new();
        encode::verbatim(&mut out, self.proto, text.as_bytes());
        out.freeze()
    }

    /// CLIENT KILL addr:port | CLIENT KILL <filter value> ...
    pub(super) fn client_kill(&mut self, req: &Request) -> Bytes {
        if req.len() == 3 {
            let target = req.arg(2);
            let found = self
                .pool
                .registry
                .snapshot()
                .into_iter()
                .find(|e| e.addr.to_string().as_bytes() == target);
            return match found {
                Some(e) => {
                    self.kill_one(&e);
                    Bytes::from_static(b"+OK\r\n")
                }
                None => error_bytes("ERR No such client"),
            };
        }
        if req.len() < 3 {
            return error_bytes("ERR wrong number of arguments for 'client|kill' command");
        }
        let filter = match parse_kill_filter(req, |u| self.pool.auth.knows_user(u)) {
            Ok(f) => f,
            Err(e) => return e,
        };
        let mut killed = 0;
        for e in self.pool.registry.snapshot() {
            if filter.selects(&e, self.id) {
                self.kill_one(&e);
                killed += 1;
            }
        }
        let mut out = BytesMut::new();
        encode::integer(&mut out, killed);
        out.freeze()
    }

    /// Closes one client; this very client gets its reply first, as Redis does.
    fn kill_one(&mut self, e: &ClientEntry) {
        if e.id == self.id {
            self.closing = true;
        } else {
            self.pool.registry.kill(e.id);
        }
    }

    /// Brings this client's own entry up to date before it is listed. As on Redis, whose
    /// query buffer still holds the running command, `qbuf` counts the request itself (the
    /// buffer's size, `rbs`, stays what it was).
    fn sync_own_entry(&self, cmd: &'static str, req: &Request) {
        let mut s = self.entry.state();
        let size = s.qbuf + s.qbuf_free;
        s.qbuf = req.raw().len();
        s.qbuf_free = size.saturating_sub(s.qbuf);
        s.cmd = cmd;
        s.db = self.db;
        s.resp = if self.proto == Protocol::Resp3 { 3 } else { 2 };
        s.last_active = super::seconds_since_start();
    }
}

impl KillFilter {
    fn selects(&self, e: &ClientEntry, me: u64) -> bool {
        (!self.skipme || e.id != me)
            && self.id.is_none_or(|id| id == e.id)
            && self
                .addr
                .as_ref()
                .is_none_or(|a| e.addr.to_string().as_bytes() == a.as_slice())
            && self.laddr.as_ref().is_none_or(|a| {
                e.laddr()
                    .is_some_and(|l| l.to_string().as_bytes() == a.as_slice())
            })
            && self.kind.is_none_or(|t| e.is_type(t))
            && self.user.as_ref().is_none_or(|u| {
                let user = e.state().user.clone();
                user.as_deref().map_or(USER, String::as_str).as_bytes() == u.as_slice()
            })
    }
}

/// Parses CLIENT KILL's `<filter> <value>` pairs (Redis 7.0's errors).
/// `known_user`: whether the pool has a user of that name (USER filter).
fn parse_kill_filter(
    req: &Request,
    known_user: impl Fn(&[u8]) -> bool,
) -> Result<KillFilter, Bytes> {
    let mut f = KillFilter {
        skipme: true,
        ..KillFilter::default()
    };
    let mut i = 2;
    while i < req.len() {
        if i + 1 >= req.len() {
            return Err(error_bytes("ERR syntax error"));
        }
        let (opt, val) = (req.arg(i).to_ascii_lowercase(), req.arg(i + 1));
        match opt.as_slice() {
            b"id" => match parse_int(val) {
                Some(id) if id > 0 => f.id = Some(id as u64),
                _ => return Err(error_bytes("ERR client-id should be greater than 0")),
            },
            b"type" => match ClientType::parse(val) {
                Some(t) => f.kind = Some(t),
                None => return Err(unknown_type(val)),
            },
            b"addr" => f.addr = Some(val.to_vec()),
            b"laddr" => f.laddr = Some(val.to_vec()),
            b"user" if known_user(val) => f.user = Some(val.to_vec()),
            b"user" => {
                return Err(error_bytes(&format!(
                    "ERR No such user '{}'",
                    String::from_utf8_lossy(val)
                )))
            }
            b"skipme" if val.eq_ignore_ascii_case(b"yes") => f.skipme = true,
            b"skipme" if val.eq_ignore_ascii_case(b"no") => f.skipme = false,
            _ => return Err(error_bytes("ERR syntax error")),
        }
        i += 2;
    }
    Ok(f)
}

fn unknown_type(t: &[u8]) -> Bytes {
    error_bytes(&format!(
        "ERR Unknown client type '{}'",
        String::from_utf8_lossy(t)
    ))
}
