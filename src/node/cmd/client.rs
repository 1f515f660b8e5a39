//! Session commands: HELLO, CLIENT, RESET.

use bytes::Bytes;

use super::{Args, Command, Ctx, Flags, Reply};
use crate::node::args::{parse_int, syntax};
use crate::node::clients::ClientInfo;
use crate::node::info_replication;
use crate::resp::Protocol;

const SESSION: Flags = Flags::NOSCRIPT.with(Flags::LOADING).with(Flags::STALE);

/// The session family.
pub static COMMANDS: &[Command] = &[
    Command::new(
        "hello",
        hello,
        -1,
        SESSION.with(Flags::NO_AUTH).with(Flags::FAST),
    ),
    Command::new("client", client, -2, SESSION).has_subcommands(),
    Command::new(
        "reset",
        reset,
        1,
        SESSION
            .with(Flags::NO_AUTH)
            .with(Flags::FAST)
            .with(Flags::ALLOW_SUBSCRIBED),
    ),
];

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`, checked in Redis's order.
fn hello(ctx: &mut Ctx, args: &Args) -> Reply {
    let mut proto = None;
    if args.len() > 1 {
        match parse_int(args.get(1)) {
            Some(2) => proto = Some(Protocol::Resp2),
            Some(3) => proto = Some(Protocol::Resp3),
            Some(_) => return Reply::error("NOPROTO unsupported protocol version"),
            None => return Reply::error("ERR Protocol version is not an integer or out of range"),
        }
    }
    let (mut auth, mut name) = (None, None);
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i - 1;
        if args.is(i, "AUTH") && more >= 2 {
            auth = Some((args.get(i + 1), args.get(i + 2)));
            i += 3;
        } else if args.is(i, "SETNAME") && more >= 1 {
            name = Some(args.get(i + 1));
            i += 2;
        } else {
            return Reply::error(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(args.get(i))
            ));
        }
    }
    if let Some((user, pass)) = auth {
        if !password_ok(ctx, user, pass) {
            return Reply::error(WRONGPASS);
        }
        ctx.client.authed = true;
    }
    if !ctx.client.authed {
        return Reply::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(n) = name {
        if let Err(e) = set_name(ctx, n) {
            return e;
        }
    }
    if let Some(p) = proto {
        ctx.client.proto = p;
        // Pub/sub messages are encoded for the subscriber's protocol at PUBLISH time.
        let id = ctx.client.id;
        if let Some(info) = ctx.store.clients.get_mut(id) {
            info.proto = p;
        }
    }
    let version = if ctx.client.proto == Protocol::Resp3 {
        3
    } else {
        2
    };
    let role = info_replication::role(ctx.store);
    Reply::Map(vec![
        (Reply::bulk(b"server"), Reply::bulk(b"redis")),
        (
            Reply::bulk(b"version"),
            Reply::bulk(crate::node::info::VERSION.as_bytes()),
        ),
        (Reply::bulk(b"proto"), Reply::Int(version)),
        (Reply::bulk(b"id"), Reply::Int(ctx.client.id as i64)),
        (Reply::bulk(b"mode"), Reply::bulk(b"standalone")),
        (Reply::bulk(b"role"), Reply::bulk(role.as_bytes())),
        (Reply::bulk(b"modules"), Reply::Array(vec![])),
    ])
}

/// True if `user`/`pass` authenticate (only the `default` user exists; with no password
/// configured it accepts any password).
pub fn password_ok(ctx: &Ctx, user: &[u8], pass: &[u8]) -> bool {
    user == b"default"
        && ctx
            .store
            .settings
            .requirepass()
            .is_none_or(|p| p.as_bytes() == pass)
}

fn set_name(ctx: &mut Ctx, name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    ctx.client.name = (!name.is_empty()).then(|| Bytes::copy_from_slice(name));
    Ok(())
}

fn client(ctx: &mut Ctx, args: &Args) -> Reply {
    let n = args.len();
    let sub = |w: &str| args.is(1, w);
    if sub("ID") && n == 2 {
        Reply::Int(ctx.client.id as i64)
    } else if sub("SETNAME") && n == 3 {
        match set_name(ctx, args.get(2)) {
            Ok(()) => Reply::Ok,
            Err(e) => e,
        }
    } else if sub("GETNAME") && n == 2 {
        Reply::opt_bulk(ctx.client.name.clone())
    } else if sub("LIST") {
        list(ctx, args)
    } else if sub("INFO") && n == 2 {
        let now_ms = ctx.now_ms();
        ctx.store.clients.sync(ctx.client, now_ms);
        let line = ctx
            .store
            .clients
            .get(ctx.client.id)
            .map(|c| c.line(args.request().raw().len()))
            .unwrap_or_default();
        Reply::Verbatim(Bytes::from(format!("{line}\n")))
    } else if sub("KILL") && n >= 3 {
        kill(ctx, args)
    } else if sub("TRACKING") && n >= 3 {
        tracking(ctx, args)
    } else if sub("PAUSE") && (n == 3 || n == 4) {
        super::client_pause::pause(ctx, args)
    } else if sub("UNPAUSE") && n == 2 {
        super::client_pause::unpause(ctx)
    } else if sub("UNBLOCK") && (n == 3 || n == 4) {
        super::client_pause::unblock(ctx, args)
    } else if sub("SETINFO") && n == 4 {
        Reply::Ok
    } else if (sub("NO-EVICT") || sub("NO-TOUCH")) && n == 3 {
        if args.is(2, "ON") || args.is(2, "OFF") {
            Reply::Ok
        } else {
            syntax()
        }
    } else if sub("REPLY") && n == 3 {
        use crate::node::client::ReplyMode;
        // The connection drops replies by mode; OFF and SKIP answer nothing themselves.
        if args.is(2, "ON") {
            ctx.client.reply_mode = ReplyMode::On;
            Reply::Ok
        } else if args.is(2, "OFF") {
            ctx.client.reply_mode = ReplyMode::Off;
            Reply::Ok
        } else if args.is(2, "SKIP") {
            if ctx.client.reply_mode != ReplyMode::Off {
                ctx.client.reply_mode = ReplyMode::SkipNext;
            }
            Reply::Ok
        } else {
            syntax()
        }
    } else if [
        "ID", "SETNAME", "GETNAME", "INFO", "KILL", "SETINFO", "NO-EVICT", "NO-TOUCH", "REPLY",
        "PAUSE", "UNPAUSE", "UNBLOCK",
    ]
    .iter()
    .any(|w| sub(w))
    {
        super::subcommand_arity(args)
    } else {
        super::subcommand_error(args, "CLIENT")
    }
}

/// `CLIENT TRACKING ON|OFF [BCAST] [PREFIX p ...] [NOLOOP]`: the default (key-remembering)
/// mode and BCAST; REDIRECT, OPTIN and OPTOUT are refused.
fn tracking(ctx: &mut Ctx, args: &Args) -> Reply {
    let on = if args.is(2, "ON") {
        true
    } else if args.is(2, "OFF") {
        false
    } else {
        return syntax();
    };
    let (mut noloop, mut bcast, mut prefixes) = (false, false, Vec::new());
    let mut i = 3;
    while i < args.len() {
        if args.is(i, "NOLOOP") {
            noloop = true;
        } else if args.is(i, "BCAST") {
            bcast = true;
        } else if args.is(i, "PREFIX") && i + 1 < args.len() {
            i += 1;
            prefixes.push(bytes::Bytes::copy_from_slice(args.get(i)));
        } else {
            return syntax();
        }
        i += 1;
    }
    if !prefixes.is_empty() && !bcast {
        return Reply::error("ERR PREFIX option requires BCAST mode to be enabled");
    }
    let id = ctx.client.id;
    let t = &mut ctx.store.tracking;
    if on && ctx.client.tracking && t.bcast.contains_key(&id) != bcast {
        return Reply::error(
            "ERR You can't switch BCAST mode on/off before disabling tracking for this client, \
             and then re-enabling it with a different mode.",
        );
    }
    ctx.client.tracking = on;
    if on {
        t.clients.insert(id);
        if noloop {
            t.noloop.insert(id);
        }
        if bcast {
            t.bcast.entry(id).or_default().extend(prefixes);
        }
    } else {
        t.stop(id);
    }
    Reply::Ok
}

/// The client types CLIENT LIST and CLIENT KILL filter on (Redis's `getClientTypeByName`).
const CLIENT_TYPES: [&str; 5] = ["normal", "master", "replica", "slave", "pubsub"];

fn unknown_type(name: &[u8]) -> Reply {
    Reply::error(format!(
        "ERR Unknown client type '{}'",
        String::from_utf8_lossy(name)
    ))
}

/// `CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...]`.
fn list(ctx: &mut Ctx, args: &Args) -> Reply {
    let mut ids: Option<Vec<i64>> = None;
    let mut kind: Option<&[u8]> = None;
    if args.len() > 2 {
        if args.is(2, "TYPE") && args.len() == 4 {
            let t = args.get(3).to_ascii_lowercase();
            if !CLIENT_TYPES.iter().any(|k| k.as_bytes() == t) {
                return unknown_type(args.get(3));
            }
            kind = Some(args.get(3));
        } else if args.is(2, "ID") && args.len() > 3 {
            let mut v = Vec::new();
            for a in args.from(3) {
                match parse_int(a) {
                    Some(id) if id > 0 => v.push(id),
                    _ => return Reply::error("ERR Invalid client ID"),
                }
            }
            ids = Some(v);
        } else {
            return syntax();
        }
    }
    let now_ms = ctx.now_ms();
    ctx.store.clients.sync(ctx.client, now_ms);
    let me = ctx.client.id;
    let mut text = String::new();
    for c in ctx.store.clients.iter() {
        if ids.as_ref().is_some_and(|v| !v.contains(&(c.id as i64))) {
            continue;
        }
        if kind.is_some_and(|k| !is_of_type(c, &k.to_ascii_lowercase())) {
            continue;
        }
        // Only the caller has input in hand: the command running now.
        let qbuf = if c.id == me {
            args.request().raw().len()
        } else {
            0
        };
        text.push_str(&c.line(qbuf));
        text.push('\n');
    }
    Reply::Verbatim(Bytes::from(text))
}

/// `CLIENT KILL addr:port` (old form: OK or an error) or `CLIENT KILL <filter> <value> ...`
/// (new form: the number killed; SKIPME defaults to yes).
fn kill(ctx: &mut Ctx, args: &Args) -> Reply {
    if args.len() == 3 {
        return kill_addr(ctx, &String::from_utf8_lossy(args.get(2)));
    }
    let filter = match KillFilter::parse(args) {
        Ok(f) => f,
        Err(refusal) => return refusal,
    };
    if let Some(u) = filter.user {
        if u != b"default" {
            return Reply::error(format!("ERR No such user '{}'", String::from_utf8_lossy(u)));
        }
    }
    let me = ctx.client.id;
    let victims: Vec<u64> = ctx
        .store
        .clients
        .iter()
        .filter(|c| filter.matches(c, me))
        .map(|c| c.id)
        .collect();
    for v in &victims {
        close(ctx, *v);
    }
    // Replication links leave the client registry when PSYNC hands their socket over to the
    // replication stream; replication keeps them, and kills them itself.
    let links = match filter.kind.as_deref() {
        Some(b"replica" | b"slave") if filter.addr.is_none() && filter.laddr.is_none() => {
            ctx.store.repl.kill_replicas(filter.id)
        }
        _ => 0,
    };
    Reply::Int((victims.len() + links) as i64)
}

/// `CLIENT KILL addr:port`, the old form: OK, or an error when no client has that address.
fn kill_addr(ctx: &mut Ctx, addr: &str) -> Reply {
    let target = ctx
        .store
        .clients
        .iter()
        .find(|c| c.addr.to_string() == addr)
        .map(|c| c.id);
    match target {
        Some(id) => {
            close(ctx, id);
            Reply::Ok
        }
        None => Reply::error("ERR No such client"),
    }
}

/// The filters of `CLIENT KILL <filter> <value> ...`; each given one must match.
struct KillFilter<'a> {
    id: Option<u64>,
    addr: Option<String>,
    laddr: Option<String>,
    user: Option<&'a [u8]>,
    /// Lowercase.
    kind: Option<Vec<u8>>,
    skipme: bool,
}

impl<'a> KillFilter<'a> {
    fn parse(args: &'a Args) -> Result<KillFilter<'a>, Reply> {
        let mut f = KillFilter {
            id: None,
            addr: None,
            laddr: None,
            user: None,
            kind: None,
            skipme: true,
        };
        let mut i = 2;
        while i < args.len() {
            if i + 1 >= args.len() {
                return Err(syntax());
            }
            let v = args.get(i + 1);
            if args.is(i, "ID") {
                match parse_int(v) {
                    Some(n) if n > 0 => f.id = Some(n as u64),
                    _ => return Err(Reply::error("ERR client-id should be greater than 0")),
                }
            } else if args.is(i, "ADDR") {
                f.addr = Some(String::from_utf8_lossy(v).into_owned());
            } else if args.is(i, "LADDR") {
                f.laddr = Some(String::from_utf8_lossy(v).into_owned());
            } else if args.is(i, "USER") {
                f.user = Some(v);
            } else if args.is(i, "TYPE") {
                let t = v.to_ascii_lowercase();
                if !CLIENT_TYPES.iter().any(|k| k.as_bytes() == t) {
                    return Err(unknown_type(v));
                }
                f.kind = Some(t);
            } else if args.is(i, "SKIPME") && args.is(i + 1, "YES") {
                f.skipme = true;
            } else if args.is(i, "SKIPME") && args.is(i + 1, "NO") {
                f.skipme = false;
            } else {
                return Err(syntax());
            }
            i += 2;
        }
        Ok(f)
    }

    /// Whether client `c` is to be killed by a caller whose id is `me`.
    fn matches(&self, c: &ClientInfo, me: u64) -> bool {
        self.id.is_none_or(|x| x == c.id)
            && self.addr.as_ref().is_none_or(|a| *a == c.addr.to_string())
            && self
                .laddr
                .as_ref()
                .is_none_or(|a| *a == c.laddr.to_string())
            && self.kind.as_deref().is_none_or(|k| is_of_type(c, k))
            && !(self.skipme && c.id == me)
    }
}

/// Redis's client type (`normal`, `master`, `replica`/`slave`, `pubsub`; `kind` lowercase):
/// a subscribed client is of type pubsub, not normal.
fn is_of_type(c: &ClientInfo, kind: &[u8]) -> bool {
    let pubsub = c.sub + c.psub + c.ssub > 0;
    match kind {
        b"pubsub" => pubsub,
        b"master" => c.role_flag == Some('M'),
        b"replica" | b"slave" => c.role_flag == Some('S'),
        _ => !pubsub && c.role_flag.is_none(),
    }
}

/// Closes client `id`: the caller after its reply, anyone else at once.
fn close(ctx: &mut Ctx, id: u64) {
    if id == ctx.client.id {
        ctx.client.close = true;
    } else if let Some(c) = ctx.store.clients.get(id) {
        c.kill();
    }
}

/// `RESET`: back to a fresh connection's state (keeping the connection).
fn reset(ctx: &mut Ctx, _: &Args) -> Reply {
    ctx.client.multi = None;
    ctx.client.multi_error = false;
    super::multi::unwatch_all(ctx);
    super::pubsub::unsubscribe_all(ctx.store, ctx.client);
    ctx.client.db = 0;
    ctx.client.proto = Protocol::Resp2;
    ctx.client.name = None;
    ctx.client.authed = ctx.store.settings.requirepass().is_none();
    ctx.client.tracking = false;
    let id = ctx.client.id;
    ctx.store.tracking.stop(id);
    ctx.store.monitors.retain(|&m| m != id);
    if let Some(info) = ctx.store.clients.get_mut(id) {
        info.monitor = false;
    }
    if let Some(info) = ctx.store.clients.get_mut(id) {
        info.proto = Protocol::Resp2;
    }
    Reply::simple("RESET")
}
