//! Link tasks: what a sentinel does with each instance it knows, on Redis's schedule.
//!
//! * Every master and replica gets a command link (PING every second, INFO every 10 s or every
//!   second while its group is failing over, a hello message on `__sentinel__:hello` every
//!   2 s) and a subscriber link reading the other sentinels' hello messages.
//! * Every other sentinel gets a command link that PINGs it.
//!
//! A task finds its instance in the [`State`](super::state::State) by group and [`Target`]
//! on every round and records what it saw; it ends when the instance is forgotten (its
//! token, held by the instance's record, is cancelled when the record is dropped).
//!
//! What the link tasks learn (a new replica from INFO, a new sentinel from a hello, a new
//! master after a failover) they record and announce ([`Shared::announce`]);
//! [`start_announced`] starts the links of what was announced. The code that records what
//! links see thus never calls back into this module, which calls it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::hello;
use super::link::{self, Auth, Link};
use super::observe;
use super::state::{Addr, Node, State, Target};
use super::Shared;
use crate::resp::Frame;

const TICK: Duration = Duration::from_millis(100);
const PING_PERIOD: Duration = Duration::from_secs(1);
const INFO_PERIOD: Duration = Duration::from_secs(10);
const FAST_INFO_PERIOD: Duration = Duration::from_secs(1);
const HELLO_PERIOD: Duration = Duration::from_secs(2);
/// A link that cannot connect retries this often.
const RECONNECT: Duration = Duration::from_millis(500);

/// Starts the links of a master or replica; they stop when `node` is dropped.
pub(crate) fn watch_redis(sh: &Arc<Shared>, group: &str, target: Target, node: &mut Node) {
    let token = node.link_token();
    tokio::spawn(command_link(
        sh.clone(),
        group.to_string(),
        target.clone(),
        token.clone(),
    ));
    tokio::spawn(hello_link(sh.clone(), group.to_string(), target, token));
}

/// Starts the links of every instance announced on `announced` (see [`Shared::announce`])
/// that is still known when its turn comes, until `token` is cancelled.
pub(crate) async fn start_announced(
    sh: Arc<Shared>,
    mut announced: mpsc::UnboundedReceiver<(String, Target)>,
    token: CancellationToken,
) {
    loop {
        let (group, target) = tokio::select! {
            _ = token.cancelled() => return,
            next = announced.recv() => match next {
                Some(a) => a,
                None => return,
            },
        };
        let mut st = sh.lock();
        let Some(node) = node_of(&mut st, &group, &target) else {
            continue; // forgotten meanwhile (a reset, another failover)
        };
        match &target {
            Target::Sentinel(id) => watch_sentinel(&sh, &group, id, node),
            _ => watch_redis(&sh, &group, target, node),
        }
    }
}

/// Starts the PING link of another sentinel.
pub(crate) fn watch_sentinel(sh: &Arc<Shared>, group: &str, id: &str, node: &mut Node) {
    let token = node.link_token();
    tokio::spawn(command_link(
        sh.clone(),
        group.to_string(),
        Target::Sentinel(id.to_string()),
        token,
    ));
}

/// What one round of a command link does, decided under the lock.
struct Plan {
    addr: Addr,
    auth: Auth,
    timeout: Duration,
    ping: bool,
    info: bool,
    hello: bool,
}

fn node_of<'a>(st: &'a mut State, group: &str, target: &Target) -> Option<&'a mut Node> {
    let m = st.masters.get_mut(group)?;
    match target {
        Target::Master => Some(&mut m.node),
        Target::Replica(a) => m.replicas.get_mut(a).map(|r| &mut r.node),
        Target::Sentinel(id) => m.sentinels.get_mut(id).map(|p| &mut p.node),
    }
}

fn plan(sh: &Shared, group: &str, target: &Target) -> Option<Plan> {
    let mut st = sh.lock();
    let m = st.masters.get(group)?;
    let down_after = m.config.down_after;
    let fast = m.failover.is_some() || m.odown_since.is_some() || m.node.is_sdown();
    let auth = match target {
        Target::Sentinel(_) => Auth::default(),
        _ => Auth {
            user: m.config.auth_user.clone(),
            pass: m.config.auth_pass.clone(),
        },
    };
    let now = Instant::now();
    let node = node_of(&mut st, group, target)?;
    let due = |last: Option<Instant>, period: Duration| {
        last.is_none_or(|t| now.duration_since(t) >= period)
    };
    let is_redis = !matches!(target, Target::Sentinel(_));
    let info_period = if fast { FAST_INFO_PERIOD } else { INFO_PERIOD };
    Some(Plan {
        addr: node.addr.clone(),
        auth,
        // A reply slower than this is as good as none: the link is dropped and redone.
        timeout: down_after.clamp(Duration::from_millis(100), Duration::from_secs(5)),
        ping: due(node.last_ping_sent, PING_PERIOD.min(down_after)),
        info: is_redis && due(node.info_refresh, info_period),
        hello: is_redis && due(node.last_hello_sent, HELLO_PERIOD),
    })
}

async fn command_link(sh: Arc<Shared>, group: String, target: Target, token: CancellationToken) {
    let mut conn: Option<Link> = None;
    let mut last_attempt: Option<Instant> = None;
    let name = format!("sentinel-{}-cmd", sh.short_id());
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        let Some(p) = plan(&sh, &group, &target) else {
            return;
        };
        if conn.is_none() {
            if last_attempt.is_some_and(|t| t.elapsed() < RECONNECT) {
                continue;
            }
            last_attempt = Some(Instant::now());
            match Link::connect(&p.addr, &p.auth, &name, p.timeout).await {
                Ok(l) => {
                    conn = Some(l);
                    observe::link(&sh, &group, &target, true);
                }
                Err(_) => {
                    observe::link(&sh, &group, &target, false);
                    continue;
                }
            }
        }
        let Some(l) = conn.as_mut() else { continue };
        if round(&sh, &group, &target, &p, l).await.is_err() {
            // Reconnect at once (a CLIENT KILL during a failover drops healthy links); only
            // failing connects are spaced out.
            conn = None;
            last_attempt = None;
            observe::link(&sh, &group, &target, false);
        }
    }
}

async fn round(
    sh: &Arc<Shared>,
    group: &str,
    target: &Target,
    p: &Plan,
    l: &mut Link,
) -> std::io::Result<()> {
    if p.ping {
        observe::ping_sent(sh, group, target);
        let reply = l.call(&[b"PING"]).await?;
        observe::pong(sh, group, target, &reply);
    }
    if p.info {
        let reply = l.call(&[b"INFO"]).await?;
        if let Some(text) = link::text(&reply) {
            observe::info(sh, group, target, &text);
        }
    }
    if p.hello {
        let ip = l.local_ip();
        let Some(msg) = hello::compose(sh, group, target, ip) else {
            return Ok(());
        };
        l.call(&[b"PUBLISH", hello::CHANNEL.as_bytes(), msg.as_bytes()])
            .await?;
    }
    Ok(())
}

/// Reads the hello messages other sentinels publish through this instance.
async fn hello_link(sh: Arc<Shared>, group: String, target: Target, token: CancellationToken) {
    let name = format!("sentinel-{}-pubsub", sh.short_id());
    loop {
        let Some(p) = plan(&sh, &group, &target) else {
            return;
        };
        let listen = async {
            let mut l = Link::connect(&p.addr, &p.auth, &name, p.timeout).await?;
            l.send(&[b"SUBSCRIBE", hello::CHANNEL.as_bytes()]).await?;
            loop {
                if let Frame::Array(parts) | Frame::Push(parts) = l.read().await? {
                    if let [kind, _, Frame::Bulk(msg)] = parts.as_slice() {
                        if link::text(kind).as_deref() == Some("message") {
                            hello::receive(&sh, &String::from_utf8_lossy(msg));
                        }
                    }
                }
            }
        };
        tokio::select! {
            _ = token.cancelled() => return,
            r = listen => {
                let _: std::io::Result<()> = r;
            }
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(RECONNECT) => {}
        }
    }
}
