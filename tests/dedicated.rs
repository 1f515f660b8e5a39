//! Dedicated node connections (transactions, blocking commands, subscriptions) at and beyond
//! `max_dedicated_connections`: a refused MULTI runs nothing, waiters get connections as they
//! come back, idle connections of the other protocol make room, and the defaults carry 500
//! blocked plus 500 subscribed clients on one pool.
//!
//! The figures printed (`--nocapture`) are the ones of the README; `SLUICE_PROXY_BIN` runs
//! the same tests against another build of the proxy.

mod common;

use std::time::{Duration, Instant};

use common::{standalone_config, wait_until, Client, Redis, Resp, Sluice};

fn proxy_for(master: &Redis, extra: &str) -> Sluice {
    Sluice::start(&standalone_config(master, &[], "master", extra))
}

fn info_field(r: &Redis, section: &str, field: &str) -> u64 {
    r.info(section)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

fn queued() -> Resp {
    Resp::Simple("QUEUED".into())
}

fn is_execabort(r: &Resp) -> bool {
    matches!(r, Resp::Error(e) if e.starts_with("EXECABORT"))
}

/// Item 2 of issue 10: once a client has sent MULTI, nothing it queues may run unless EXEC
/// runs it atomically, also when the transaction could not be opened.
fn a_refused_multi_queues_without_running_and_exec_aborts() {
    let master = Redis::start();
    let proxy = proxy_for(&master, "max_dedicated_connections = 1\n");
    // The only dedicated connection is held by an open WATCH.
    let mut holder = proxy.client();
    assert_eq!(holder.cmd(&["WATCH", "w"]), ok());

    let mut c = proxy.client();
    let refused = c.cmd(&["MULTI"]);
    assert!(
        matches!(&refused, Resp::Error(e) if e.contains("too many dedicated connections")),
        "MULTI at the cap: {refused:?}"
    );
    assert_eq!(c.cmd(&["INCR", "counter"]), queued());
    assert_eq!(c.cmd(&["INCR", "counter"]), queued());
    let nested = c.cmd(&["MULTI"]);
    assert!(
        matches!(&nested, Resp::Error(e) if e.contains("nested")),
        "{nested:?}"
    );
    let exec = c.cmd(&["EXEC"]);
    assert!(is_execabort(&exec), "EXEC after a refused MULTI: {exec:?}");
    assert_eq!(master.client().cmd(&["GET", "counter"]), Resp::Nil);

    // DISCARD ends it too, and the client is out of the transaction afterwards.
    assert!(matches!(c.cmd(&["MULTI"]), Resp::Error(_)));
    assert_eq!(c.cmd(&["SET", "counter", "9"]), queued());
    assert_eq!(c.cmd(&["DISCARD"]), ok());
    assert_eq!(master.client().cmd(&["GET", "counter"]), Resp::Nil);
    assert_eq!(c.cmd(&["INCR", "counter"]), Resp::Int(1));
    let exec = c.cmd(&["EXEC"]);
    assert!(
        matches!(&exec, Resp::Error(e) if e.contains("without MULTI")),
        "{exec:?}"
    );

    // Once the connection is free, a MULTI opens as usual.
    assert_eq!(holder.cmd(&["UNWATCH"]), ok());
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["INCR", "counter"]), queued());
    assert_eq!(c.cmd(&["EXEC"]), Resp::Array(vec![Resp::Int(2)]));
}

/// Item 3 of issue 10: with every dedicated connection in use, the next client waits and
/// gets one as soon as one is given back (it used to wait out `connect_timeout` and fail,
/// because a returned connection kept its place under the cap while sitting idle).
fn a_waiter_gets_a_connection_as_soon_as_one_is_given_back() {
    const CAP: usize = 64;
    let master = Redis::start();
    let proxy = proxy_for(
        &master,
        &format!("max_dedicated_connections = {CAP}\nconnect_timeout = \"5s\"\n"),
    );
    let mut holders: Vec<Client> = (0..CAP)
        .map(|i| {
            let mut c = proxy.client();
            assert_eq!(c.cmd(&["WATCH", &format!("k{i}")]), ok());
            c
        })
        .collect();
    let mut waiter = proxy.client();
    waiter.send(&["MULTI"]);
    // The cap holds: no connection for the 65th client while 64 are in use.
    waiter.set_timeout(Duration::from_millis(300));
    assert!(waiter.try_read().is_err(), "MULTI answered beyond the cap");
    waiter.set_timeout(Duration::from_secs(10));

    let released = Instant::now();
    for h in &mut holders {
        h.send(&["UNWATCH"]);
    }
    let reply = waiter.read();
    let waited = released.elapsed();
    for h in &mut holders {
        assert_eq!(h.read(), ok());
    }
    eprintln!("the client beyond the cap of {CAP}: {reply:?} {waited:?} after the others ended");
    assert_eq!(reply, ok(), "the 65th client's MULTI");
    assert_eq!(waiter.cmd(&["INCR", "n"]), queued());
    assert_eq!(waiter.cmd(&["EXEC"]), Resp::Array(vec![Resp::Int(1)]));
}

/// Item 3 of issue 10: idle connections kept for one protocol do not lock the other
/// protocol's clients out (after a burst of RESP2 transactions, every RESP3 MULTI, SUBSCRIBE
/// and BLPOP failed).
fn idle_connections_of_the_other_protocol_make_room() {
    let master = Redis::start();
    let proxy = proxy_for(&master, "max_dedicated_connections = 2\n");
    // Two RESP2 transactions at once leave two idle RESP2 connections: the whole cap.
    let (mut a, mut b) = (proxy.client(), proxy.client());
    assert_eq!(a.cmd(&["MULTI"]), ok());
    assert_eq!(b.cmd(&["MULTI"]), ok());
    assert_eq!(a.cmd(&["EXEC"]), Resp::Array(vec![]));
    assert_eq!(b.cmd(&["EXEC"]), Resp::Array(vec![]));

    let mut r3 = proxy.client();
    assert!(matches!(r3.cmd(&["HELLO", "3"]), Resp::Map(_)));
    assert_eq!(r3.cmd(&["MULTI"]), ok());
    assert_eq!(r3.cmd(&["INCR", "n"]), queued());
    assert_eq!(r3.cmd(&["EXEC"]), Resp::Array(vec![Resp::Int(1)]));
    let mut r3b = proxy.client();
    assert!(matches!(r3b.cmd(&["HELLO", "3"]), Resp::Map(_)));
    assert_eq!(
        r3b.cmd(&["BLPOP", "none", "0.01"]),
        Resp::Nil,
        "a RESP3 BLPOP at the cap"
    );
    let sub = r3b.cmd(&["SUBSCRIBE", "ch"]);
    assert!(
        matches!(&sub, Resp::Push(items) if items.last() == Some(&Resp::Int(1))),
        "a RESP3 SUBSCRIBE at the cap: {sub:?}"
    );
    // And back: the RESP2 clients get room again from the idle RESP3 connection.
    assert_eq!(a.cmd(&["MULTI"]), ok());
    assert_eq!(a.cmd(&["EXEC"]), Resp::Array(vec![]));
}

/// Item 3 of issue 10, with the default settings: 500 clients blocked in BLPOP and 500
/// subscribed clients on one pool, all at once, get no error; every subscriber is counted
/// and receives the message, and every BLPOP gets one of the 500 items pushed afterwards.
fn five_hundred_blpop_and_five_hundred_subscribers_get_no_error() {
    const N: usize = 500;
    let master = Redis::start();
    // A debug-build `sluice node` on a loaded 2-core machine takes longer than the default
    // 1 s to answer the handshakes of 500 connections opened at once (redis-server does not).
    let extra = match common::Backend::current() {
        common::Backend::Redis => "",
        common::Backend::Node => "connect_timeout = \"5s\"\n",
    };
    let proxy = proxy_for(&master, extra);
    let started = Instant::now();
    let mut subs: Vec<Client> = (0..N).map(|_| proxy.client()).collect();
    for s in &mut subs {
        s.send(&["SUBSCRIBE", "news"]);
    }
    let mut blockers: Vec<Client> = (0..N).map(|_| proxy.client()).collect();
    for b in &mut blockers {
        b.send(&["BLPOP", "jobs", "0"]);
    }
    let mut errors = Vec::new();
    let mut subscribed = Vec::new();
    for s in &mut subs {
        match s.read() {
            Resp::Array(items) if items.first() == Some(&Resp::Bulk(b"subscribe".to_vec())) => {
                subscribed.push(s);
            }
            other => errors.push(format!("SUBSCRIBE: {other:?}")),
        }
    }
    // Every BLPOP is blocked on the node, or has failed (its error is already on its way).
    let deadline = Instant::now() + Duration::from_secs(30);
    while info_field(&master, "clients", "blocked_clients") < N as u64 && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let blocked = info_field(&master, "clients", "blocked_clients");
    let mut ctl = proxy.client();
    let receivers = ctl.cmd(&["PUBLISH", "news", "hello"]);
    let mut pushed = vec!["RPUSH", "jobs"];
    let items: Vec<String> = (0..N).map(|i| i.to_string()).collect();
    pushed.extend(items.iter().map(String::as_str));
    assert_eq!(ctl.cmd(&pushed), Resp::Int(N as i64));
    let mut got = std::collections::HashSet::new();
    for b in &mut blockers {
        match b.read() {
            Resp::Array(kv) if kv.len() == 2 => {
                got.insert(kv[1].text());
            }
            other => errors.push(format!("BLPOP: {other:?}")),
        }
    }
    let mut delivered = 0;
    for s in &mut subscribed {
        if let Ok(Resp::Array(m)) = s.try_read() {
            delivered += usize::from(m.last() == Some(&Resp::Bulk(b"hello".to_vec())));
        }
    }
    eprintln!(
        "{N} BLPOP + {N} SUBSCRIBE: {} errors (e.g. {:?}), {blocked} blocked on the node, \
         PUBLISH counted {receivers:?}, {delivered} messages delivered, {} items popped, {:?}",
        errors.len(),
        errors.first(),
        got.len(),
        started.elapsed()
    );
    assert!(
        errors.is_empty(),
        "{} errors, first {:?}",
        errors.len(),
        errors[0]
    );
    assert_eq!(receivers, Resp::Int(N as i64));
    assert_eq!(delivered, N);
    assert_eq!(got.len(), N, "every pushed item is popped exactly once");
    for s in &mut subscribed {
        s.send(&["UNSUBSCRIBE"]);
    }
    for s in &mut subscribed {
        assert!(matches!(s.read(), Resp::Array(_)));
    }
    wait_until(Duration::from_secs(10), "blocked clients to end", || {
        info_field(&master, "clients", "blocked_clients") == 0
    });
}

on_both_backends! {
    both: [
        a_refused_multi_queues_without_running_and_exec_aborts,
        a_waiter_gets_a_connection_as_soon_as_one_is_given_back,
        idle_connections_of_the_other_protocol_make_room,
        five_hundred_blpop_and_five_hundred_subscribers_get_no_error,
    ],
    redis_only: [],
}

/// Redis's Tcl suite through a passthrough pool (unit/type/stream-cgroups "Blocking
/// XREADGROUP: key deleted", unit/type/list "BRPOPLPUSH with multiple blocked clients"): a
/// client on the `default` login, when the proxy's own connections are that same user, runs
/// its blocking commands on the proxy's pooled dedicated connections, ready at once, rather
/// than opening (and closing) one per command, which let a command sent right after it
/// reach the node first. Counted on the node: blocking commands one after another reuse one
/// connection.
#[test]
fn default_login_blocking_commands_reuse_pooled_connections() {
    let master = Redis::start();
    let p = proxy_for(&master, "auth = \"passthrough\"");
    let mut c = p.client();
    assert_eq!(c.cmd(&["SET", "warm", "1"]), ok());
    let timeout = Resp::Nil;
    assert_eq!(c.cmd(&["BLPOP", "nothing", "0.01"]), timeout);
    let before = info_field(&master, "stats", "total_connections_received");
    for _ in 0..5 {
        assert_eq!(c.cmd(&["BLPOP", "nothing", "0.01"]), Resp::Nil);
    }
    let after = info_field(&master, "stats", "total_connections_received");
    // (At most one more: the proxy's own probes may open a connection meanwhile.)
    assert!(
        after - before <= 1,
        "{} connections for 5 blocking commands",
        after - before
    );
    // The ordering Redis's suite checks: the first client blocked is served first.
    let mut rd1 = p.client();
    let mut rd2 = p.client();
    assert_eq!(c.cmd(&["SET", "target1", "nolist"]), ok());
    rd1.send(&["BRPOPLPUSH", "blist", "target1", "0"]);
    wait_until(Duration::from_secs(10), "rd1 to block", || {
        info_field(&master, "clients", "blocked_clients") == 1
    });
    rd2.send(&["BRPOPLPUSH", "blist", "target2", "0"]);
    wait_until(Duration::from_secs(10), "rd2 to block", || {
        info_field(&master, "clients", "blocked_clients") == 2
    });
    assert_eq!(c.cmd(&["LPUSH", "blist", "foo"]), Resp::Int(1));
    assert!(matches!(rd1.read(), Resp::Error(e) if e.starts_with("WRONGTYPE")));
    assert_eq!(rd2.read(), Resp::Bulk(b"foo".to_vec()));
}

/// A passthrough pool with user `alice` (password `p1`) on its master.
fn alice_pool() -> (Redis, Sluice) {
    let master = Redis::start();
    let acl = ["ACL", "SETUSER", "alice", "on", ">p1", "~*", "&*", "+@all"];
    assert_eq!(master.client().cmd(&acl), ok());
    let p = proxy_for(&master, "auth = \"passthrough\"");
    (master, p)
}

/// A proxy client logged in as `alice`.
fn alice(p: &Sluice) -> Client {
    let mut c = p.client();
    assert_eq!(c.cmd(&["AUTH", "alice", "p1"]), ok());
    c
}

/// The master's connections logged in as `user` (their CLIENT LIST lines).
fn connections_of(master: &Redis, user: &str) -> Vec<String> {
    let list = master.client().cmd(&["CLIENT", "LIST"]).text();
    let tag = format!(" user={user} ");
    list.lines()
        .filter(|l| l.contains(&tag))
        .map(str::to_string)
        .collect()
}

/// The ids of the master's connections of `user` whose last command was `cmd` (CLIENT LIST's
/// `cmd=` field).
fn ids_that_ran(master: &Redis, user: &str, cmd: &str) -> Vec<String> {
    let field = format!(" cmd={cmd} ");
    connections_of(master, user)
        .iter()
        .filter(|l| l.contains(&field))
        .filter_map(|l| l.split(' ').next().map(str::to_string))
        .collect()
}

/// The same as the default login's test above, for a user of its own: its clients' blocking
/// commands reuse one dedicated connection logged in as that user (a connection per
/// command let a command another client sent right after reach the node first: Redis's
/// unit/type/stream-cgroups "Blocking XREADGROUP: key deleted").
#[test]
fn a_users_blocking_commands_reuse_its_dedicated_connection() {
    let (master, p) = alice_pool();
    let mut c = alice(&p);
    assert_eq!(c.cmd(&["BLPOP", "nothing", "0.01"]), Resp::Nil);
    let first = ids_that_ran(&master, "alice", "blpop");
    assert_eq!(first.len(), 1, "{:?}", connections_of(&master, "alice"));
    let before = info_field(&master, "stats", "total_connections_received");
    for _ in 0..5 {
        assert_eq!(c.cmd(&["BLPOP", "nothing", "0.01"]), Resp::Nil);
    }
    let after = info_field(&master, "stats", "total_connections_received");
    assert!(
        after - before <= 1,
        "{} connections for 5 blocking commands",
        after - before
    );
    // Another client of the same user takes the same connection.
    let mut rd = alice(&p);
    assert_eq!(rd.cmd(&["BLPOP", "nothing", "0.01"]), Resp::Nil);
    assert_eq!(ids_that_ran(&master, "alice", "blpop"), first);
    // The ordering Redis's suite checks, with no wait between the two clients' commands.
    // Two clients' connections race through the proxy as through the kernel to Redis: a
    // loaded machine may reorder one round now and then. A connection opened per blocking
    // command lost every round (0 of 20, three runs); a reused one won 20 of 20 (six runs).
    let mut kept = 0;
    let mut lost = Vec::new();
    for _ in 0..10 {
        let group = ["XGROUP", "CREATE", "mystream", "mygroup", "$", "MKSTREAM"];
        assert_eq!(c.cmd(&group), ok());
        rd.send(&[
            "XREADGROUP",
            "GROUP",
            "mygroup",
            "Alice",
            "BLOCK",
            "0",
            "STREAMS",
            "mystream",
            ">",
        ]);
        assert_eq!(c.cmd(&["DEL", "mystream"]), Resp::Int(1));
        match rd.read() {
            Resp::Error(e) if e.contains("no longer exists") => kept += 1,
            other => lost.push(other),
        }
    }
    assert!(
        kept >= 5,
        "the DEL overtook the XREADGROUP in {} of 10 rounds: {lost:?}",
        lost.len()
    );
}

/// A user's idle dedicated connection is never a password check: a client that logs in
/// with a password the master no longer accepts is refused, even while a connection that
/// logged in with it earlier sits idle (Redis 7.0 keeps connections authenticated across
/// ACL SETUSER resetpass; the earlier client keeps working, as on Redis).
#[test]
fn a_users_idle_connection_does_not_let_an_old_password_in() {
    let (master, p) = alice_pool();
    let mut old = alice(&p);
    assert_eq!(old.cmd(&["BLPOP", "nothing", "0.01"]), Resp::Nil);
    let acl = ["ACL", "SETUSER", "alice", "resetpass", ">p2"];
    assert_eq!(master.client().cmd(&acl), ok());
    let mut late = p.client();
    let refused = late.cmd(&["AUTH", "alice", "p1"]);
    assert!(
        matches!(&refused, Resp::Error(e) if e.starts_with("WRONGPASS")),
        "{refused:?}"
    );
    assert_eq!(late.cmd(&["AUTH", "alice", "p2"]), ok());
    assert_eq!(late.cmd(&["BLPOP", "nothing", "0.01"]), Resp::Nil);
    assert_eq!(old.cmd(&["BLPOP", "nothing", "0.01"]), Resp::Nil);
}

/// An idle connection the node closed (CLIENT KILL, ACL DELUSER) is not handed out: the
/// next blocking command gets a new one, or the master's refusal of a deleted user.
#[test]
fn a_users_killed_idle_connection_is_not_reused() {
    let (master, p) = alice_pool();
    let mut c = alice(&p);
    assert_eq!(c.cmd(&["BLPOP", "nothing", "0.01"]), Resp::Nil);
    let kill = ["CLIENT", "KILL", "USER", "alice"];
    assert!(matches!(master.client().cmd(&kill), Resp::Int(n) if n >= 1));
    assert_eq!(c.cmd(&["BLPOP", "nothing", "0.01"]), Resp::Nil);
    assert_eq!(
        master.client().cmd(&["ACL", "DELUSER", "alice"]),
        Resp::Int(1)
    );
    let after = c.cmd(&["BLPOP", "nothing", "0.01"]);
    assert!(matches!(&after, Resp::Error(_)), "{after:?}");
}

/// A user's idle dedicated connections close with its last client, as its shared ones do:
/// no node connection stays open in the name of a user nobody is logged in as.
#[test]
fn a_users_idle_connections_close_with_its_last_client() {
    let (master, p) = alice_pool();
    let mut c = alice(&p);
    assert_eq!(c.cmd(&["BLPOP", "nothing", "0.01"]), Resp::Nil);
    assert_eq!(ids_that_ran(&master, "alice", "blpop").len(), 1);
    drop(c);
    wait_until(
        Duration::from_secs(10),
        "alice's connections to close",
        || connections_of(&master, "alice").is_empty(),
    );
}

/// A user's idle dedicated connection closes after `passthrough_idle_timeout` like its
/// shared ones, although its client stays, and the next blocking command opens another.
#[test]
fn a_users_idle_dedicated_connection_closes_after_the_idle_timeout() {
    let master = Redis::start();
    let acl = ["ACL", "SETUSER", "alice", "on", ">p1", "~*", "&*", "+@all"];
    assert_eq!(master.client().cmd(&acl), ok());
    let p = proxy_for(
        &master,
        "auth = \"passthrough\"\nrequest_timeout = \"500ms\"\npassthrough_idle_timeout = \"1s\"",
    );
    let mut c = alice(&p);
    assert_eq!(c.cmd(&["BLPOP", "nothing", "0.01"]), Resp::Nil);
    assert_eq!(ids_that_ran(&master, "alice", "blpop").len(), 1);
    wait_until(
        Duration::from_secs(10),
        "alice's idle connections to close",
        || connections_of(&master, "alice").is_empty(),
    );
    assert_eq!(c.cmd(&["BLPOP", "nothing", "0.01"]), Resp::Nil);
}
