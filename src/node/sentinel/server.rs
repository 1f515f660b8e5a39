//! The sentinel's client side: accepts connections and serves PING, INFO, ROLE, SENTINEL,
//! HELLO, CLIENT, the pub/sub commands (events are published on channels named after their
//! type: `+switch-master`, `+sdown`, ...) and SHUTDOWN.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::clients::Entry;
use super::commands::{self, err, Out};
use super::hello;
use super::replies::{self, bulk};
use super::state::Event;
use super::Shared;
use crate::node::glob;
use crate::resp::{decode_request, encode, Frame, Limits, Protocol, Request};

/// Accepts clients until `token` is cancelled.
pub(crate) async fn accept(sh: Arc<Shared>, listener: TcpListener, token: CancellationToken) {
    loop {
        let stream = tokio::select! {
            _ = token.cancelled() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(target: "sluice::sentinel", "accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(sh.clone(), stream, token.clone()));
    }
}

/// One client's connection state.
struct Client {
    id: u64,
    proto: Protocol,
    name: Option<String>,
    channels: BTreeSet<String>,
    patterns: BTreeSet<String>,
    events: Option<broadcast::Receiver<Event>>,
    close: bool,
}

impl Client {
    fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

async fn serve(sh: Arc<Shared>, mut stream: TcpStream, token: CancellationToken) {
    let id = sh.next_client.fetch_add(1, Ordering::Relaxed) + 1;
    let unspecified = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    let now = std::time::Instant::now();
    sh.clients.add(
        id,
        Entry {
            addr: stream.peer_addr().unwrap_or(unspecified),
            laddr: stream.local_addr().unwrap_or(unspecified),
            name: None,
            created: now,
            last: now,
            sub: 0,
            psub: 0,
            resp: 2,
            cmd: "NULL".into(),
        },
    );
    let mut c = Client {
        id,
        proto: Protocol::Resp2,
        name: None,
        channels: BTreeSet::new(),
        patterns: BTreeSet::new(),
        events: None,
        close: false,
    };
    let _ = session(&sh, &mut stream, &mut c, &token).await;
    sh.clients.remove(id);
}

async fn next_event(rx: &mut Option<broadcast::Receiver<Event>>) -> Option<Event> {
    let Some(rx) = rx.as_mut() else {
        return std::future::pending().await;
    };
    loop {
        match rx.recv().await {
            Ok(e) => return Some(e),
            // A subscriber too slow to keep up loses the oldest events, as a Redis client
            // past its output buffer limit would lose its connection.
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return None,
        }
    }
}

async fn session(
    sh: &Arc<Shared>,
    stream: &mut TcpStream,
    c: &mut Client,
    token: &CancellationToken,
) -> std::io::Result<()> {
    let limits = Limits::default();
    let mut rbuf = BytesMut::with_capacity(4096);
    let mut out = BytesMut::new();
    loop {
        tokio::select! {
            _ = token.cancelled() => return Ok(()),
            n = stream.read_buf(&mut rbuf) => {
                if n? == 0 {
                    return Ok(());
                }
                loop {
                    match decode_request(&mut rbuf, &limits) {
                        Ok(Some(req)) => handle(sh, c, &req, &mut out).await,
                        Ok(None) => break,
                        Err(e) => {
                            encode::error(&mut out, &format!("ERR Protocol error: {e}"));
                            c.close = true;
                            break;
                        }
                    }
                    if c.close {
                        break;
                    }
                }
            }
            ev = next_event(&mut c.events) => {
                if let Some((channel, text)) = ev {
                    deliver(c, &channel, &text, &mut out);
                }
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if c.close {
            return Ok(());
        }
    }
}

fn deliver(c: &Client, channel: &str, text: &str, out: &mut BytesMut) {
    if c.channels.contains(channel) {
        push(c, vec![bulk("message"), bulk(channel), bulk(text)], out);
    }
    for p in &c.patterns {
        if glob::matches(p.as_bytes(), channel.as_bytes()) {
            push(
                c,
                vec![bulk("pmessage"), bulk(p.clone()), bulk(channel), bulk(text)],
                out,
            );
        }
    }
}

fn push(c: &Client, items: Vec<Frame>, out: &mut BytesMut) {
    let f = if c.proto == Protocol::Resp3 {
        Frame::Push(items)
    } else {
        Frame::Array(items)
    };
    f.encode(c.proto, out);
}

fn write(c: &Client, reply: Out, out: &mut BytesMut) {
    match reply {
        Out::Frame(f) => f.encode(c.proto, out),
        Out::NullArray => encode::null_array(out, c.proto),
    }
}

async fn handle(sh: &Arc<Shared>, c: &mut Client, req: &Request, out: &mut BytesMut) {
    let args: Vec<String> = req
        .args()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let Some(name) = args.first().map(|n| n.to_ascii_lowercase()) else {
        return;
    };
    let rest = &args[1..];
    if let Some(refusal) = refused_while_subscribed(c, &name) {
        return write(c, refusal, out);
    }
    let reply = match name.as_str() {
        "subscribe" | "psubscribe" => {
            subscribe(sh, c, name == "psubscribe", rest, out);
            return note(sh, c, &name);
        }
        "unsubscribe" | "punsubscribe" => {
            unsubscribe(c, name == "punsubscribe", rest, out);
            return note(sh, c, &name);
        }
        "shutdown" => {
            // Stops this sentinel alone (in a stack, the other parts keep running).
            sh.lock().shutdown.cancel();
            c.close = true;
            return;
        }
        "sentinel" => commands::sentinel(sh, rest).await,
        _ => answer(sh, c, &name, &args),
    };
    write(c, reply, out);
    note(sh, c, &name);
}

/// A RESP2 client with subscriptions may only (un)subscribe, PING, QUIT and RESET.
fn refused_while_subscribed(c: &Client, name: &str) -> Option<Out> {
    let allowed = matches!(
        name,
        "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "ping" | "quit" | "reset"
    );
    (c.proto == Protocol::Resp2 && c.subscriptions() > 0 && !allowed).then(|| {
        err(format!(
            "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        ))
    })
}

/// The reply to a command that neither subscribes nor waits (`name` lowercase, `args` the
/// whole request).
fn answer(sh: &Arc<Shared>, c: &mut Client, name: &str, args: &[String]) -> Out {
    let rest = &args[1..];
    match name {
        "ping" => ping(c, rest),
        "echo" => match rest {
            [m] => bulk(m.clone()).into(),
            _ => arity(name),
        },
        "quit" => {
            c.close = true;
            ok()
        }
        "info" => {
            let st = sh.lock();
            let text = replies::info(&st, rest.first().map(String::as_str), sh.clients.count());
            Frame::Verbatim(Bytes::from_static(b"txt"), Bytes::from(text)).into()
        }
        "role" => {
            let names = sh.lock().masters.keys().map(|n| bulk(n.clone())).collect();
            Frame::Array(vec![bulk("sentinel"), Frame::Array(names)]).into()
        }
        "publish" => match rest {
            [ch, msg] if ch == hello::CHANNEL => {
                hello::receive(sh, msg);
                Frame::Integer(1).into()
            }
            [_, _] => err("ERR Only HELLO messages are accepted by Sentinel instances."),
            _ => arity(name),
        },
        "hello" => hello_cmd(sh, c, rest),
        "client" => client(sh, c, rest),
        "command" => Frame::Array(Vec::new()).into(),
        "auth" => err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"),
        "reset" => reset(c),
        _ => {
            let mut text = format!("ERR unknown command '{}', with args beginning with: ", args[0]);
            for a in rest {
                text.push_str(&format!("'{a}' "));
            }
            err(text)
        }
    }
}

/// RESET: no subscriptions, no event stream, RESP2, no name.
fn reset(c: &mut Client) -> Out {
    c.channels.clear();
    c.patterns.clear();
    c.events = None;
    c.proto = Protocol::Resp2;
    c.name = None;
    Frame::Simple(Bytes::from_static(b"RESET")).into()
}

/// Records the connection's state for CLIENT LIST.
fn note(sh: &Shared, c: &Client, cmd: &str) {
    sh.clients.update(c.id, |e| {
        e.name = c.name.clone();
        e.last = std::time::Instant::now();
        e.sub = c.channels.len();
        e.psub = c.patterns.len();
        e.resp = if c.proto == Protocol::Resp3 { 3 } else { 2 };
        e.cmd = cmd.to_string();
    });
}

fn ok() -> Out {
    Frame::Simple(Bytes::from_static(b"OK")).into()
}

fn arity(name: &str) -> Out {
    err(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

fn ping(c: &Client, rest: &[String]) -> Out {
    if rest.len() > 1 {
        return arity("ping");
    }
    if c.proto == Protocol::Resp2 && c.subscriptions() > 0 {
        let msg = rest.first().cloned().unwrap_or_default();
        return Frame::Array(vec![bulk("pong"), bulk(msg)]).into();
    }
    match rest.first() {
        Some(m) => bulk(m.clone()).into(),
        None => Frame::Simple(Bytes::from_static(b"PONG")).into(),
    }
}

fn subscribe(sh: &Shared, c: &mut Client, pattern: bool, names: &[String], out: &mut BytesMut) {
    if names.is_empty() {
        let name = if pattern { "psubscribe" } else { "subscribe" };
        return write(c, arity(name), out);
    }
    if c.events.is_none() {
        c.events = Some(sh.lock().events.subscribe());
    }
    for n in names {
        if pattern {
            c.patterns.insert(n.clone());
        } else {
            c.channels.insert(n.clone());
        }
        let kind = if pattern { "psubscribe" } else { "subscribe" };
        let count = c.subscriptions() as i64;
        push(
            c,
            vec![bulk(kind), bulk(n.clone()), Frame::Integer(count)],
            out,
        );
    }
}

fn unsubscribe(c: &mut Client, pattern: bool, names: &[String], out: &mut BytesMut) {
    let kind = if pattern {
        "punsubscribe"
    } else {
        "unsubscribe"
    };
    let targets: Vec<String> = if names.is_empty() {
        let set = if pattern { &c.patterns } else { &c.channels };
        set.iter().cloned().collect()
    } else {
        names.to_vec()
    };
    if targets.is_empty() {
        let count = c.subscriptions() as i64;
        push(c, vec![bulk(kind), Frame::Null, Frame::Integer(count)], out);
    }
    for n in targets {
        if pattern {
            c.patterns.remove(&n);
        } else {
            c.channels.remove(&n);
        }
        let count = c.subscriptions() as i64;
        push(c, vec![bulk(kind), bulk(n), Frame::Integer(count)], out);
    }
    if c.subscriptions() == 0 {
        c.events = None;
    }
}

/// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
fn hello_cmd(sh: &Shared, c: &mut Client, rest: &[String]) -> Out {
    if let Some(v) = rest.first() {
        match v.as_str() {
            "2" => c.proto = Protocol::Resp2,
            "3" => c.proto = Protocol::Resp3,
            _ => return err("NOPROTO unsupported protocol version"),
        }
        let mut i = 1;
        while i < rest.len() {
            match rest[i].to_ascii_lowercase().as_str() {
                "setname" if i + 1 < rest.len() => {
                    c.name = Some(rest[i + 1].clone());
                    i += 2;
                }
                "auth" if i + 2 < rest.len() => {
                    return err("WRONGPASS invalid username-password pair or user is disabled.");
                }
                other => return err(format!("ERR Syntax error in HELLO option '{other}'")),
            }
        }
    }
    let _ = sh;
    let proto = if c.proto == Protocol::Resp3 { 3 } else { 2 };
    Frame::Map(vec![
        (bulk("server"), bulk("redis")),
        (bulk("version"), bulk("7.0.15")),
        (bulk("proto"), Frame::Integer(proto)),
        (bulk("id"), Frame::Integer(c.id as i64)),
        (bulk("mode"), bulk("sentinel")),
        (bulk("modules"), Frame::Array(Vec::new())),
    ])
    .into()
}

/// CLIENT SETNAME / GETNAME / ID / SETINFO / INFO / LIST.
fn client(sh: &Shared, c: &mut Client, rest: &[String]) -> Out {
    let sub = rest
        .first()
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_default();
    match (sub.as_str(), &rest[rest.len().min(1)..]) {
        ("setname", [n]) => {
            if n.contains(' ') || n.contains('\n') {
                return err(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
            }
            c.name = Some(n.clone()).filter(|n| !n.is_empty());
            ok()
        }
        ("getname", []) => match &c.name {
            Some(n) => bulk(n.clone()).into(),
            None => Frame::Null.into(),
        },
        ("id", []) => Frame::Integer(c.id as i64).into(),
        ("setinfo", [_, _]) => ok(),
        ("list", []) => bulk(sh.clients.list(None)).into(),
        ("list", [t, kind]) if t.eq_ignore_ascii_case("type") => {
            match kind.to_ascii_lowercase().as_str() {
                "normal" => bulk(sh.clients.list(Some(false))).into(),
                "pubsub" => bulk(sh.clients.list(Some(true))).into(),
                "master" | "replica" | "slave" => bulk("").into(),
                _ => err(format!("ERR Unknown client type '{kind}'")),
            }
        }
        ("info", []) => bulk(format!(
            "id={} name={} resp={}\n",
            c.id,
            c.name.clone().unwrap_or_default(),
            if c.proto == Protocol::Resp3 { 3 } else { 2 }
        ))
        .into(),
        _ => err(format!(
            "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try CLIENT HELP."
        )),
    }
}
