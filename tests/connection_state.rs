//! Regression tests: connection state must never leak between clients through shared or
//! pooled node connections, and pipelines must never hang or reorder.

mod common;

use std::time::Duration;

use common::{encode, standalone_config, wait_until, Redis, Resp, Sluice};

fn proxy(master: &Redis, extra: &str) -> Sluice {
    // One dedicated connection per node: any dirty connection is the next client's.
    let extra = format!("max_dedicated_connections = 1\n{extra}");
    Sluice::start(&standalone_config(master, &[], "master", &extra))
}

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

fn pipelined_commands_after_the_last_unsubscribe_are_answered_in_order() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let mut a = p.client();
    assert!(matches!(a.cmd(&["SUBSCRIBE", "ch"]), Resp::Array(_)));
    let mut batch = encode(&["UNSUBSCRIBE", "ch"]);
    batch.extend(encode(&["PING"]));
    batch.extend(encode(&["SET", "after", "1"]));
    a.send_raw(&batch);
    assert_eq!(
        a.read(),
        Resp::Array(vec![
            Resp::Bulk(b"unsubscribe".to_vec()),
            Resp::Bulk(b"ch".to_vec()),
            Resp::Int(0)
        ])
    );
    assert_eq!(a.read(), Resp::Simple("PONG".into()));
    assert_eq!(a.read(), ok());
    // The pooled connection is clean for the next client.
    let mut b = p.client();
    assert_eq!(b.cmd(&["MULTI"]), ok());
    assert_eq!(b.cmd(&["SET", "q", "1"]), Resp::Simple("QUEUED".into()));
    assert_eq!(b.cmd(&["EXEC"]), Resp::Array(vec![ok()]));
}

fn a_resp3_subscriber_can_select_and_read_and_leaves_no_state_behind() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let mut a = p.client();
    assert!(matches!(a.cmd(&["HELLO", "3"]), Resp::Map(_)));
    assert!(matches!(a.cmd(&["SUBSCRIBE", "ch"]), Resp::Push(_)));
    assert_eq!(a.cmd(&["SELECT", "2"]), ok());
    assert_eq!(a.cmd(&["SET", "in2", "x"]), ok());
    match a.cmd(&["CONFIG", "SET", "maxmemory", "1"]) {
        Resp::Error(e) => assert!(e.contains("allow_commands"), "{e}"),
        other => panic!("denied command passed while subscribed: {other:?}"),
    }
    assert!(matches!(a.cmd(&["UNSUBSCRIBE"]), Resp::Push(_)));
    // The session stays in db 2 after leaving subscribed mode.
    assert_eq!(a.cmd(&["GET", "in2"]), Resp::Bulk(b"x".to_vec()));
    let mut direct = master.client();
    assert_eq!(direct.cmd(&["SELECT", "2"]), ok());
    assert_eq!(direct.cmd(&["GET", "in2"]), Resp::Bulk(b"x".to_vec()));
    // Another RESP3 client's transaction in db 0 really runs in db 0.
    let mut b = p.client();
    assert!(matches!(b.cmd(&["HELLO", "3"]), Resp::Map(_)));
    assert_eq!(b.cmd(&["MULTI"]), ok());
    assert_eq!(b.cmd(&["SET", "in0", "y"]), Resp::Simple("QUEUED".into()));
    assert_eq!(b.cmd(&["EXEC"]), Resp::Array(vec![ok()]));
    assert_eq!(
        master.client().cmd(&["GET", "in0"]),
        Resp::Bulk(b"y".to_vec())
    );
}

fn exec_without_multi_keeps_the_watch_on_the_pinned_connection_only() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let mut a = p.client();
    assert_eq!(a.cmd(&["WATCH", "wk"]), ok());
    assert_eq!(
        a.cmd(&["EXEC"]),
        Resp::Error("ERR EXEC without MULTI".into())
    );
    assert_eq!(a.cmd(&["SET", "wk", "1"]), ok());
    // Redis keeps the watch after a failed EXEC: a's transaction aborts.
    assert_eq!(a.cmd(&["MULTI"]), ok());
    assert_eq!(a.cmd(&["SET", "x", "1"]), Resp::Simple("QUEUED".into()));
    assert_eq!(a.cmd(&["EXEC"]), Resp::Nil);
    // b never watched anything: its transaction must run.
    let mut b = p.client();
    assert_eq!(b.cmd(&["MULTI"]), ok());
    assert_eq!(b.cmd(&["SET", "wk", "2"]), Resp::Simple("QUEUED".into()));
    assert_eq!(b.cmd(&["EXEC"]), Resp::Array(vec![ok()]));
}

fn a_queued_select_counts_only_if_it_ran() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let mut a = p.client();
    // Aborted by WATCH: the SELECT never ran, the session stays in db 0.
    assert_eq!(a.cmd(&["WATCH", "w"]), ok());
    master.client().cmd(&["SET", "w", "changed"]);
    assert_eq!(a.cmd(&["MULTI"]), ok());
    assert_eq!(a.cmd(&["SELECT", "3"]), Resp::Simple("QUEUED".into()));
    assert_eq!(a.cmd(&["EXEC"]), Resp::Nil);
    assert_eq!(a.cmd(&["SET", "where", "db0"]), ok());
    assert_eq!(
        master.client().cmd(&["GET", "where"]),
        Resp::Bulk(b"db0".to_vec())
    );
    // Out of range inside MULTI: the error is in EXEC's reply and nothing changes.
    assert_eq!(a.cmd(&["MULTI"]), ok());
    assert_eq!(a.cmd(&["SELECT", "99"]), Resp::Simple("QUEUED".into()));
    assert!(matches!(a.cmd(&["EXEC"]), Resp::Array(_)));
    assert_eq!(a.cmd(&["GET", "where"]), Resp::Bulk(b"db0".to_vec()));
    // A SELECT that ran moves the session.
    assert_eq!(a.cmd(&["MULTI"]), ok());
    assert_eq!(a.cmd(&["SELECT", "4"]), Resp::Simple("QUEUED".into()));
    assert_eq!(a.cmd(&["EXEC"]), Resp::Array(vec![ok()]));
    assert_eq!(a.cmd(&["SET", "where", "db4"]), ok());
    let mut direct = master.client();
    assert_eq!(direct.cmd(&["SELECT", "4"]), ok());
    assert_eq!(direct.cmd(&["GET", "where"]), Resp::Bulk(b"db4".to_vec()));
    // And the pooled connection went back with its real database.
    let mut c = p.client();
    assert_eq!(c.cmd(&["MULTI"]), ok());
    assert_eq!(c.cmd(&["GET", "where"]), Resp::Simple("QUEUED".into()));
    assert_eq!(
        c.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::Bulk(b"db0".to_vec())])
    );
}

fn connection_changing_commands_inside_multi_abort_the_transaction() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let mut a = p.client();
    for cmd in [
        vec!["HELLO", "3"],
        vec!["CONFIG", "SET", "maxmemory", "1"],
        vec!["CLIENT", "KILL", "TYPE", "normal"],
    ] {
        assert_eq!(a.cmd(&["MULTI"]), ok());
        assert!(matches!(a.cmd(&cmd), Resp::Error(_)), "{cmd:?} was queued");
        assert_eq!(a.cmd(&["SET", "tx", "1"]), Resp::Simple("QUEUED".into()));
        assert_eq!(
            a.cmd(&["EXEC"]),
            Resp::Error("EXECABORT Transaction discarded because of previous errors.".into())
        );
    }
    assert_eq!(master.client().cmd(&["EXISTS", "tx"]), Resp::Int(0));
    // Still RESP2 for the next client of the pooled connection.
    let mut b = p.client();
    assert_eq!(b.cmd(&["HSET", "h", "f", "v"]), Resp::Int(1));
    assert_eq!(b.cmd(&["MULTI"]), ok());
    assert_eq!(b.cmd(&["HGETALL", "h"]), Resp::Simple("QUEUED".into()));
    assert_eq!(
        b.cmd(&["EXEC"]),
        Resp::Array(vec![Resp::Array(vec![
            Resp::Bulk(b"f".to_vec()),
            Resp::Bulk(b"v".to_vec())
        ])])
    );
}

fn a_long_pipeline_of_local_commands_is_fully_answered() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let mut a = p.client();
    let mut batch = Vec::new();
    for _ in 0..20_000 {
        batch.extend(encode(&["PING"]));
    }
    a.send_raw(&batch);
    for i in 0..20_000 {
        assert_eq!(a.read(), Resp::Simple("PONG".into()), "reply {i}");
    }
}

fn each_reply_keeps_the_protocol_and_database_of_its_request() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let mut a = p.client();
    assert_eq!(a.cmd(&["HSET", "h", "f", "v"]), Resp::Int(1));
    let mut batch = encode(&["HGETALL", "h"]);
    batch.extend(encode(&["HELLO", "3"]));
    batch.extend(encode(&["HGETALL", "h"]));
    a.send_raw(&batch);
    assert_eq!(
        a.read(),
        Resp::Array(vec![Resp::Bulk(b"f".to_vec()), Resp::Bulk(b"v".to_vec())])
    );
    assert!(matches!(a.read(), Resp::Map(_)));
    assert_eq!(
        a.read(),
        Resp::Map(vec![(Resp::Bulk(b"f".to_vec()), Resp::Bulk(b"v".to_vec()))])
    );
}

fn deeply_nested_replies_do_not_break_the_shared_connection() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let mut a = p.client();
    let script = "local t={} local c=t for i=1,200 do local n={} c[1]=n c=n end return t";
    let mut depth = 0;
    let mut r = a.cmd(&["EVAL", script, "0"]);
    while let Resp::Array(mut items) = r {
        depth += 1;
        r = if items.is_empty() {
            Resp::Nil
        } else {
            items.remove(0)
        };
    }
    assert!(depth >= 100, "depth {depth}");
    assert_eq!(a.cmd(&["PING"]), Resp::Simple("PONG".into()));
    assert_eq!(a.cmd(&["SET", "k", "v"]), ok());
}

fn a_client_that_leaves_during_a_watched_blocking_command_frees_the_node() {
    let master = Redis::start();
    let p = proxy(&master, "");
    for _ in 0..3 {
        let mut a = p.client();
        assert_eq!(a.cmd(&["WATCH", "x"]), ok());
        a.send(&["BLPOP", "never", "0"]);
        wait_until(Duration::from_secs(5), "BLPOP to block", || {
            master.info("clients").contains("blocked_clients:1")
        });
        drop(a);
        wait_until(
            Duration::from_secs(5),
            "the blocked command to be released",
            || master.info("clients").contains("blocked_clients:0"),
        );
    }
    // The single dedicated connection is available again.
    let mut b = p.client();
    assert_eq!(b.cmd(&["BLPOP", "never", "0.01"]), Resp::Nil);
}

fn auth_without_a_proxy_password_behaves_like_a_passwordless_redis() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let mut a = p.client();
    assert_eq!(a.cmd(&["AUTH", "default", "anything"]), ok());
    assert_eq!(
        a.cmd(&["AUTH", "x"]),
        Resp::Error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
                .into()
        )
    );
    assert_eq!(
        a.cmd(&["AUTH"]),
        Resp::Error("ERR wrong number of arguments for 'auth' command".into())
    );
    assert!(matches!(
        a.cmd(&["HELLO", "3", "AUTH", "default", "whatever"]),
        Resp::Map(_)
    ));
}

fn resubscribing_right_after_the_last_unsubscribe_keeps_the_subscription() {
    let master = Redis::start();
    let p = proxy(&master, "");
    let mut a = p.client();
    let mut batch = encode(&["SUBSCRIBE", "foo"]);
    batch.extend(encode(&["UNSUBSCRIBE", "foo"]));
    batch.extend(encode(&["SUBSCRIBE", "foo"]));
    a.send_raw(&batch);
    for (kind, n) in [("subscribe", 1), ("unsubscribe", 0), ("subscribe", 1)] {
        assert_eq!(
            a.read(),
            Resp::Array(vec![
                Resp::Bulk(kind.as_bytes().to_vec()),
                Resp::Bulk(b"foo".to_vec()),
                Resp::Int(n)
            ])
        );
    }
    assert_eq!(p.client().cmd(&["PUBLISH", "foo", "hi"]), Resp::Int(1));
    assert_eq!(
        a.read(),
        Resp::Array(vec![
            Resp::Bulk(b"message".to_vec()),
            Resp::Bulk(b"foo".to_vec()),
            Resp::Bulk(b"hi".to_vec())
        ])
    );
}

on_both_backends! {
    both: [
        pipelined_commands_after_the_last_unsubscribe_are_answered_in_order,
        a_resp3_subscriber_can_select_and_read_and_leaves_no_state_behind,
        exec_without_multi_keeps_the_watch_on_the_pinned_connection_only,
        a_queued_select_counts_only_if_it_ran,
        connection_changing_commands_inside_multi_abort_the_transaction,
        a_long_pipeline_of_local_commands_is_fully_answered,
        each_reply_keeps_the_protocol_and_database_of_its_request,
        a_client_that_leaves_during_a_watched_blocking_command_frees_the_node,
        auth_without_a_proxy_password_behaves_like_a_passwordless_redis,
        resubscribing_right_after_the_last_unsubscribe_keeps_the_subscription,
        deeply_nested_replies_do_not_break_the_shared_connection,
    ],
    redis_only: [],
}
