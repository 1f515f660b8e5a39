//! The proxy's limits: what it trusts from nodes, what it refuses from clients (before and
//! after AUTH), how much it holds for a client that does not read, which ACL commands it
//! keeps from clients, and the admin server's connection limits.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{standalone_config, Redis, Resp, Sluice};

/// Reads `n` bytes (a reply whose length the test knows) without parsing it (deep replies
/// would need a parser as deep as the reply); fewer if the peer stops sending for the read
/// timeout or closes, so a wrong answer shows up in the assertion rather than as a timeout.
fn read_exactly(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => got += k,
        }
    }
    buf.truncate(got);
    buf
}

/// Sends `payload` on a fresh connection to `addr` (after `HELLO 3` when `resp3`) and returns
/// the next `n` bytes of the answer, HELLO's reply skipped.
fn raw_exchange(addr: &str, resp3: bool, payload: &[u8], n: usize) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    if resp3 {
        let mut c = common::Client::connect(addr);
        // Learn HELLO's reply length on a throwaway connection, then skip that many bytes.
        let hello = c.cmd_raw(&["HELLO", "3"]);
        s.write_all(&common::encode(&["HELLO", "3"]))
            .expect("write");
        read_exactly(&mut s, hello.len());
    }
    s.write_all(payload).expect("write");
    read_exactly(&mut s, n)
}

/// Item 8: a Lua table nested 1000 or 7000 deep (Redis's Lua allows nearly 8000 levels) comes
/// back through the proxy byte for byte, for RESP2 and RESP3 clients, also when it holds a
/// RESP3-only type a RESP2 client needs converted; the shared connection survives it.
fn deep_replies_from_a_node_pass_through() {
    let master = Redis::start();
    let proxy = Sluice::start(&standalone_config(&master, &[], "master", ""));
    let nest = "for i = 1, tonumber(ARGV[1]) do t = {t} end return t";
    let plain = format!("local t = 1 {nest}");
    let double = format!("redis.setresp(3) local t = {{double = 1.5}} {nest}");
    for depth in [1000usize, 7000] {
        let d = depth.to_string();
        let cases: [(&str, bool, &[u8]); 4] = [
            (&plain, false, b":1\r\n"),
            (&plain, true, b":1\r\n"),
            (&double, false, b"$3\r\n1.5\r\n"),
            (&double, true, b",1.5\r\n"),
        ];
        for (script, resp3, leaf) in cases {
            let mut want = b"*1\r\n".repeat(depth);
            want.extend_from_slice(leaf);
            let req = common::encode(&["EVAL", script, "0", &d]);
            let direct = raw_exchange(&master.addr(), resp3, &req, want.len());
            assert_eq!(direct, want, "the backend itself (depth {depth})");
            let through = raw_exchange(&proxy.addr(), resp3, &req, want.len());
            assert!(
                through == want,
                "depth {depth}, resp3 {resp3}, leaf {:?}: got {:?}",
                String::from_utf8_lossy(leaf),
                String::from_utf8_lossy(&through[..through.len().min(200)])
            );
        }
    }
    // The shared node connection was not dropped as "malformed".
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["SET", "after", "1"]), Resp::Simple("OK".into()));
    let (_, metrics) = proxy.http_get("/metrics");
    assert!(
        !metrics.contains("malformed"),
        "metrics mention malformed replies"
    );
}

/// Item 11: `ACL SETUSER`/`DELUSER`/`LOAD` would change the users the proxy's own
/// connections log in as: denied by default (also inside MULTI), while ACL reads pass; the
/// node's users are untouched.
fn acl_commands_that_change_users_are_denied() {
    let master = Redis::start();
    let proxy = Sluice::start(&standalone_config(&master, &[], "master", ""));
    let mut c = proxy.client();
    for cmd in [
        vec!["ACL", "SETUSER", "default", "resetpass", ">x"],
        vec!["acl", "setuser", "alice", "on", ">pw", "+@all", "~*"],
        vec!["ACL", "DELUSER", "default"],
        vec!["Acl", "Load"],
    ] {
        match c.cmd(&cmd) {
            Resp::Error(e) => assert!(
                e.starts_with("ERR sluice: 'ACL ") && e.contains("allow_commands"),
                "{cmd:?}: {e}"
            ),
            other => panic!("{cmd:?} passed: {other:?}"),
        }
    }
    assert_eq!(c.cmd(&["MULTI"]), Resp::Simple("OK".into()));
    assert!(
        matches!(c.cmd(&["ACL", "SETUSER", "default", "resetpass"]), Resp::Error(e) if e.contains("allow_commands"))
    );
    let _ = c.cmd(&["DISCARD"]);
    // Nothing reached the node: its default user still needs no password, and new
    // connections through the proxy still work.
    assert_eq!(master.client().cmd(&["PING"]), Resp::Simple("PONG".into()));
    assert_eq!(
        proxy.client().cmd(&["SET", "k", "v"]),
        Resp::Simple("OK".into())
    );
}

/// Item 11: `allow_commands` lifts the denial of one ACL subcommand, not the others.
fn allow_commands_lets_one_acl_subcommand_through() {
    let master = Redis::start();
    let proxy = Sluice::start(&standalone_config(
        &master,
        &[],
        "master",
        "allow_commands = [\"acl setuser\"]",
    ));
    let mut c = proxy.client();
    assert_eq!(
        c.cmd(&["ACL", "SETUSER", "alice", "on", ">pw", "+get", "~*"]),
        Resp::Simple("OK".into())
    );
    assert!(matches!(
        master.client().cmd(&["ACL", "GETUSER", "alice"]),
        Resp::Array(_)
    ));
    assert!(matches!(
        c.cmd(&["ACL", "DELUSER", "alice"]),
        Resp::Error(e) if e.contains("'ACL DELUSER' is not allowed")
    ));
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), Resp::Bulk(b"default".to_vec()));
}

/// Writes `total` bytes of `fill` after `head` on `s` until done or the peer closes.
fn stream_bulk(mut s: TcpStream, head: Vec<u8>, total: usize) {
    if s.write_all(&head).is_err() {
        return;
    }
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0;
    while sent < total {
        let n = chunk.len().min(total - sent);
        if s.write_all(&chunk[..n]).is_err() {
            return;
        }
        sent += n;
    }
}

/// Item 9: before AUTH, a request announcing more than 10 arguments or a bulk over 16 KiB is
/// refused from its header with Redis's errors and the connection closed, so four clients
/// streaming 100 MiB bulks cannot make the proxy buffer them; after AUTH both pass.
fn unauthenticated_clients_cannot_make_the_proxy_buffer_large_requests() {
    let master = Redis::start();
    let proxy = Sluice::start(&standalone_config(
        &master,
        &[],
        "master",
        "password = \"pw\"",
    ));
    let mut c = proxy.client();
    c.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$104857600\r\nabc");
    assert_eq!(
        c.read(),
        Resp::Error("ERR Protocol error: unauthenticated bulk length".into())
    );
    assert!(
        c.is_closed(),
        "connection left open after the protocol error"
    );
    let mut c = proxy.client();
    c.send_raw(b"*11\r\n");
    assert_eq!(
        c.read(),
        Resp::Error("ERR Protocol error: unauthenticated multibulk length".into())
    );
    assert!(
        c.is_closed(),
        "connection left open after the protocol error"
    );
    // Within the limits, a request is answered NOAUTH and the connection stays usable.
    let mut c = proxy.client();
    let value = "v".repeat(16 * 1024);
    assert!(matches!(c.cmd(&["SET", "k", &value]), Resp::Error(e) if e.starts_with("NOAUTH")));
    assert_eq!(c.cmd(&["AUTH", "pw"]), Resp::Simple("OK".into()));
    // Authenticated: larger requests pass.
    let big = "b".repeat(1 << 20);
    assert_eq!(c.cmd(&["SET", "big", &big]), Resp::Simple("OK".into()));
    let mset = ["MSET", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5"];
    assert_eq!(c.cmd(&mset), Resp::Simple("OK".into()));

    // Four unauthenticated clients each streaming a 100 MiB bulk.
    let before = proxy.rss();
    let started = Instant::now();
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let s = TcpStream::connect(proxy.addr()).expect("connect");
            let head = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$104857600\r\n".to_vec();
            std::thread::spawn(move || stream_bulk(s, head, 100 << 20))
        })
        .collect();
    let mut peak = before;
    while writers.iter().any(|w| !w.is_finished()) {
        peak = peak.max(proxy.rss());
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "writers still running after 60 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    for w in writers {
        w.join().expect("writer");
    }
    peak = peak.max(proxy.rss());
    assert!(
        peak < before + (32 << 20),
        "proxy RSS grew from {} to {} MiB for unauthenticated clients",
        before >> 20,
        peak >> 20
    );
}

/// A proxy in front of `master` with these `[admin]` keys.
fn proxy_with_admin(master: &Redis, admin_keys: &str) -> Sluice {
    Sluice::start(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n{admin_keys}\n\n[[pools]]\nname = \"main\"\n\
         listen = \"127.0.0.1:0\"\nmaster = \"{}\"\n",
        master.addr()
    ))
}

/// Opens an admin connection and sends the first line of a request, never its end.
fn partial_admin_request(proxy: &Sluice) -> TcpStream {
    let mut s = TcpStream::connect(proxy.admin.expect("admin")).expect("connect admin");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .expect("write");
    s
}

/// Reads until EOF (or the read timeout): what the server sent before closing.
fn read_until_closed(s: &mut TcpStream) -> std::io::Result<String> {
    let mut text = Vec::new();
    s.read_to_end(&mut text)?;
    Ok(String::from_utf8_lossy(&text).into_owned())
}

/// Item 12: with `max_connections` admin connections held open by partial requests, further
/// admin connections are answered 503 and closed at once (no file descriptor kept), pool
/// clients are still served, and a held connection still gets its answer when it completes.
fn admin_connections_beyond_the_limit_are_refused() {
    let master = Redis::start();
    let proxy = proxy_with_admin(&master, "max_connections = 16\nidle_timeout = \"60s\"");
    let held: Vec<TcpStream> = (0..16).map(|_| partial_admin_request(&proxy)).collect();
    // Accepted connections are served in accept order: once a later connection is refused,
    // every held one has its slot.
    for i in 0..200 {
        // Sends nothing: data the proxy never reads would turn its close into a reset.
        let mut extra = TcpStream::connect(proxy.admin.expect("admin")).expect("connect");
        extra
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let text = read_until_closed(&mut extra).expect("excess connection closed");
        assert!(
            text.starts_with("HTTP/1.1 503"),
            "excess admin connection {i} got {text:?}"
        );
    }
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["PING"]), Resp::Simple("PONG".into()));
    assert_eq!(c.cmd(&["SET", "k", "v"]), Resp::Simple("OK".into()));
    // A held connection is a real one: completing its request gets the metrics.
    let mut first = held.into_iter().next().expect("held");
    first
        .write_all(b"Connection: close\r\n\r\n")
        .expect("write");
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let text = read_until_closed(&mut first).expect("metrics");
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
    assert!(text.contains("sluice_"), "no metrics in {text:?}");
}

/// Item 12: a partial request, and an idle keep-alive connection after a request, are closed
/// after `idle_timeout`, which frees their slots for new admin clients.
fn idle_and_partial_admin_connections_are_closed() {
    let master = Redis::start();
    let proxy = proxy_with_admin(&master, "max_connections = 2\nidle_timeout = \"300ms\"");
    let started = Instant::now();
    let mut partial = partial_admin_request(&proxy);
    let mut idle = TcpStream::connect(proxy.admin.expect("admin")).expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    for s in [&mut partial, &mut idle] {
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let text = read_until_closed(s).expect("closed by the proxy within 20 s");
        assert!(
            !text.contains("sluice_"),
            "partial request answered: {text:?}"
        );
    }
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "closed before idle_timeout"
    );
    // The slots are free again.
    let (status, body) = proxy.http_get("/healthz");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
}

/// Stores a value of `len` bytes under `key` on `master` directly.
fn store(master: &Redis, key: &str, len: usize) {
    let value = "v".repeat(len);
    assert_eq!(
        master.client().cmd(&["SET", key, &value]),
        Resp::Simple("OK".into())
    );
}

/// Polls until `count` has not changed for a second (the proxy stopped forwarding); returns
/// its last value and the proxy's largest RSS seen meanwhile.
fn until_steady(proxy: &Sluice, mut count: impl FnMut() -> u64) -> (u64, u64) {
    let started = Instant::now();
    let (mut last, mut since, mut peak) = (count(), Instant::now(), proxy.rss());
    while since.elapsed() < Duration::from_secs(1) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the proxy kept forwarding for 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
        peak = peak.max(proxy.rss());
        let now = count();
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
    (last, peak)
}

/// Item 10: a client pipelining 600 GETs of a 1 MiB value without reading makes the proxy
/// forward only what its soft limit (16 MiB by default) holds, not 600 MiB; other clients are
/// served meanwhile; once it reads it gets every reply, and the memory is given back.
fn a_client_that_does_not_read_is_held_at_the_soft_limit() {
    const N: usize = 600;
    const VALUE: usize = 1 << 20;
    let master = Redis::start();
    store(&master, "big", VALUE);
    let proxy = Sluice::start(&standalone_config(&master, &[], "master", ""));
    let mut other = proxy.client();
    assert_eq!(other.cmd(&["SET", "small", "1"]), Resp::Simple("OK".into()));
    let before = proxy.rss();
    let gets_before = master.calls("get");
    let mut hog = TcpStream::connect(proxy.addr()).expect("connect");
    let mut writer = hog.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&common::encode(&["GET", "big"]).repeat(N));
    });
    let (gets, peak) = until_steady(&proxy, || master.calls("get"));
    let forwarded = gets - gets_before;
    assert!(
        forwarded <= 100,
        "{forwarded} of {N} GETs forwarded for a client that reads nothing"
    );
    assert!(
        peak < before + (96 << 20),
        "proxy RSS grew from {} to {} MiB",
        before >> 20,
        peak >> 20
    );
    assert_eq!(other.cmd(&["GET", "small"]), Resp::Bulk(b"1".to_vec()));
    // Now it reads: every reply arrives, whole and in order.
    let header = format!("${VALUE}\r\n");
    let reply_len = header.len() + VALUE + 2;
    hog.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut reply = vec![0u8; reply_len];
    for i in 0..N {
        hog.read_exact(&mut reply)
            .unwrap_or_else(|e| panic!("reply {i}: {e}"));
        assert!(
            reply.starts_with(header.as_bytes()) && reply.ends_with(b"v\r\n"),
            "reply {i} malformed"
        );
    }
    sender.join().expect("sender");
    let (_, metrics) = proxy.http_get("/metrics");
    assert!(
        !metrics.contains("sluice_client_output_limit_disconnects_total{pool=\"main\"} 1"),
        "the reading client was disconnected"
    );
    // Drained, the proxy gives the memory back.
    common::wait_until(Duration::from_secs(20), "RSS back after the drain", || {
        proxy.rss() < before + (32 << 20)
    });
}

/// Item 10: a client whose unread replies pass `client_output_hard_limit` is disconnected
/// (counted in the metrics); other clients are not affected.
fn a_client_beyond_the_hard_limit_is_disconnected() {
    let master = Redis::start();
    store(&master, "huge", 32 << 20);
    let proxy = Sluice::start(&standalone_config(
        &master,
        &[],
        "master",
        "client_output_soft_limit = \"1MiB\"\nclient_output_hard_limit = \"4MiB\"",
    ));
    let mut hog = TcpStream::connect(proxy.addr()).expect("connect");
    hog.write_all(&common::encode(&["GET", "huge"]))
        .expect("write");
    common::wait_until(Duration::from_secs(20), "the disconnect", || {
        let (_, metrics) = proxy.http_get("/metrics");
        metrics.contains("sluice_client_output_limit_disconnects_total{pool=\"main\"} 1")
    });
    // What reached the socket before the disconnect, then the end of the connection.
    hog.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut got = Vec::new();
    let end = hog.read_to_end(&mut got);
    assert!(
        got.len() < 32 << 20,
        "the whole reply was delivered ({end:?})"
    );
    let mut c = proxy.client();
    assert_eq!(c.cmd(&["SET", "k", "v"]), Resp::Simple("OK".into()));
    assert_eq!(c.cmd(&["STRLEN", "huge"]), Resp::Int(32 << 20));
}

on_both_backends! {
    both: [
        acl_commands_that_change_users_are_denied,
        unauthenticated_clients_cannot_make_the_proxy_buffer_large_requests,
        admin_connections_beyond_the_limit_are_refused,
        idle_and_partial_admin_connections_are_closed,
        a_client_that_does_not_read_is_held_at_the_soft_limit,
        a_client_beyond_the_hard_limit_is_disconnected,
        deep_replies_from_a_node_pass_through,
    ],
    redis_only: [
        // Needs ACL users, which sluice node does not have.
        allow_commands_lets_one_acl_subcommand_through,
    ],
}
