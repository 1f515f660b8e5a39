//! Sharded pub/sub in cluster pools against a real Redis Cluster: one client's shard channels
//! on several masters, slot migrations and failovers the client must not notice, and
//! SSUBSCRIBE's CROSSSLOT rule.

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use common::{wait_until, Client, Redis, Resp};

fn ok() -> Resp {
    Resp::Simple("OK".into())
}

fn bulk(s: &str) -> Resp {
    Resp::Bulk(s.as_bytes().to_vec())
}

/// `[kind, channel, n]` as a RESP2 client gets it.
fn conf(kind: &str, channel: &str, n: i64) -> Resp {
    Resp::Array(vec![bulk(kind), bulk(channel), Resp::Int(n)])
}

fn smessage(channel: &str, payload: &str) -> Resp {
    Resp::Array(vec![bulk("smessage"), bulk(channel), bulk(payload)])
}

const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// The slot of `name`.
fn slot_of(node: &Redis, name: &str) -> i64 {
    match node.client().cmd(&["CLUSTER", "KEYSLOT", name]) {
        Resp::Int(slot) => slot,
        other => panic!("KEYSLOT returned {other:?}"),
    }
}

/// A channel name whose slot `node` serves.
fn channel_on(node: &Redis, prefix: &str) -> String {
    (0..10_000)
        .map(|i| format!("{prefix}{i}"))
        .find(|c| Cluster::serves(node, slot_of(node, c)))
        .expect("a channel on the node")
}

/// Shard subscribers of `channel` on `node` (`PUBSUB SHARDNUMSUB`).
fn shard_subscribers(node: &Redis, channel: &str) -> i64 {
    match node.client().cmd(&["PUBSUB", "SHARDNUMSUB", channel]) {
        Resp::Array(items) if items.len() == 2 => match items[1] {
            Resp::Int(n) => n,
            _ => panic!("SHARDNUMSUB count"),
        },
        other => panic!("SHARDNUMSUB returned {other:?}"),
    }
}

/// The subscribed client's next frame is the answer to a PING (so nothing, such as a stray
/// `sunsubscribe`, was queued before it).
fn assert_nothing_pending(sub: &mut Client) {
    assert_eq!(
        sub.cmd(&["PING"]),
        Resp::Array(vec![bulk("pong"), bulk("")]),
        "the client got something before its PING's reply"
    );
}

#[test]
fn one_client_hears_shard_channels_on_several_masters() {
    let cluster = Cluster::start(3, 0);
    let proxy = cluster.proxy(3, "");
    let masters = cluster.masters();
    let (m0, m1) = (masters[0], masters[1]);
    let a = channel_on(m0, "chan-a:");
    let b = channel_on(m1, "chan-b:");
    let mut sub = proxy.client();
    let mut other = proxy.client();

    assert_eq!(sub.cmd(&["SSUBSCRIBE", &a]), conf("ssubscribe", &a, 1));
    assert_eq!(sub.cmd(&["SSUBSCRIBE", &b]), conf("ssubscribe", &b, 2));
    // Subscribing again changes nothing, as on one Redis.
    assert_eq!(sub.cmd(&["SSUBSCRIBE", &a]), conf("ssubscribe", &a, 2));
    // Each subscription lives on its channel's master.
    assert_eq!(shard_subscribers(m0, &a), 1);
    assert_eq!(shard_subscribers(m1, &b), 1);

    // Through the proxy and directly on the owning node: both arrive.
    assert_eq!(other.cmd(&["SPUBLISH", &a, "via-proxy"]), Resp::Int(1));
    assert_eq!(sub.read(), smessage(&a, "via-proxy"));
    assert_eq!(m1.client().cmd(&["SPUBLISH", &b, "direct"]), Resp::Int(1));
    assert_eq!(sub.read(), smessage(&b, "direct"));
    assert_eq!(other.cmd(&["SPUBLISH", &b, "via-proxy-b"]), Resp::Int(1));
    assert_eq!(sub.read(), smessage(&b, "via-proxy-b"));

    // Subscribed mode: only the pub/sub commands, as Redis does for a RESP2 client.
    assert_nothing_pending(&mut sub);
    assert!(
        matches!(sub.cmd(&["GET", "x"]), Resp::Error(e) if e.contains("Can't execute 'get'")),
        "GET while subscribed must be refused"
    );
    // A multi-slot SSUBSCRIBE is refused while subscribed too.
    assert_eq!(
        sub.cmd(&["SSUBSCRIBE", &a, &b]),
        Resp::Error(CROSSSLOT.into())
    );

    // Classic channels alongside: their own count.
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "news"]),
        conf("subscribe", "news", 1)
    );
    assert!(matches!(
        other.cmd(&["PUBLISH", "news", "hi"]),
        Resp::Int(_)
    ));
    assert_eq!(
        sub.read(),
        Resp::Array(vec![bulk("message"), bulk("news"), bulk("hi")])
    );

    // SUNSUBSCRIBE of one channel: only its master forgets it.
    sub.send(&["SUNSUBSCRIBE", &a]);
    assert_eq!(sub.read(), conf("sunsubscribe", &a, 1));
    assert_eq!(shard_subscribers(m0, &a), 0);
    assert_eq!(other.cmd(&["SPUBLISH", &a, "gone"]), Resp::Int(0));
    // Without channels: every remaining one.
    sub.send(&["SUNSUBSCRIBE"]);
    assert_eq!(sub.read(), conf("sunsubscribe", &b, 0));
    assert_eq!(shard_subscribers(m1, &b), 0);
    // Still subscribed to `news`: the client leaves subscribed mode with it.
    assert!(matches!(sub.cmd(&["GET", "x"]), Resp::Error(_)));
    assert_eq!(sub.cmd(&["UNSUBSCRIBE"]), conf("unsubscribe", "news", 0));
    assert_eq!(sub.cmd(&["SET", "after", "1"]), ok());
    assert_eq!(sub.cmd(&["GET", "after"]), bulk("1"));
}

#[test]
fn classic_then_shard_subscriptions_share_one_client() {
    let cluster = Cluster::start(3, 0);
    let proxy = cluster.proxy(3, "");
    let masters = cluster.masters();
    let (m0, m2) = (masters[0], masters[2]);
    let a = channel_on(m0, "mix-a:");
    let c = channel_on(m2, "mix-c:");
    let mut sub = proxy.client();
    let mut other = proxy.client();

    // A classic subscription first (a tunnel), then shard channels on two masters.
    assert_eq!(
        sub.cmd(&["PSUBSCRIBE", "ne*"]),
        conf("psubscribe", "ne*", 1)
    );
    assert_eq!(sub.cmd(&["SSUBSCRIBE", &a]), conf("ssubscribe", &a, 1));
    assert_eq!(sub.cmd(&["SSUBSCRIBE", &c]), conf("ssubscribe", &c, 2));
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "news"]),
        conf("subscribe", "news", 2)
    );
    assert_eq!(other.cmd(&["SPUBLISH", &c, "s"]), Resp::Int(1));
    assert_eq!(sub.read(), smessage(&c, "s"));
    assert!(matches!(other.cmd(&["PUBLISH", "news", "p"]), Resp::Int(_)));
    // (PUBLISH counts only the receiving node's subscribers; the bus delivers it.)
    // One PUBLISH, two matches: the pattern's and the channel's.
    let mut got = vec![sub.read(), sub.read()];
    got.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(
        got,
        vec![
            Resp::Array(vec![bulk("message"), bulk("news"), bulk("p")]),
            Resp::Array(vec![bulk("pmessage"), bulk("ne*"), bulk("news"), bulk("p")]),
        ]
    );
    assert_eq!(other.cmd(&["SPUBLISH", &a, "s2"]), Resp::Int(1));
    assert_eq!(sub.read(), smessage(&a, "s2"));

    // Unsubscribing everything returns the client to normal commands.
    assert_eq!(sub.cmd(&["PUNSUBSCRIBE"]), conf("punsubscribe", "ne*", 1));
    assert_eq!(
        sub.cmd(&["UNSUBSCRIBE", "news"]),
        conf("unsubscribe", "news", 0)
    );
    sub.send(&["SUNSUBSCRIBE", &a, &c]);
    assert_eq!(sub.read(), conf("sunsubscribe", &a, 1));
    assert_eq!(sub.read(), conf("sunsubscribe", &c, 0));
    assert_eq!(sub.cmd(&["SET", "mixed", "ok"]), ok());
    assert_eq!(sub.cmd(&["GET", "mixed"]), bulk("ok"));

    // RESP3: confirmations and messages are pushes, counts are the client's total.
    let mut r3 = proxy.client();
    assert!(matches!(r3.cmd(&["HELLO", "3"]), Resp::Map(_)));
    assert_eq!(
        r3.cmd(&["SSUBSCRIBE", &a]),
        Resp::Push(vec![bulk("ssubscribe"), bulk(&a), Resp::Int(1)])
    );
    assert_eq!(
        r3.cmd(&["SSUBSCRIBE", &c]),
        Resp::Push(vec![bulk("ssubscribe"), bulk(&c), Resp::Int(2)])
    );
    assert_eq!(other.cmd(&["SPUBLISH", &a, "r3"]), Resp::Int(1));
    assert_eq!(
        r3.read(),
        Resp::Push(vec![bulk("smessage"), bulk(&a), bulk("r3")])
    );
}

#[test]
fn a_multi_slot_ssubscribe_gets_crossslot() {
    let cluster = Cluster::start(3, 0);
    let proxy = cluster.proxy(3, "");
    let masters = cluster.masters();
    let a = channel_on(masters[0], "x-a:");
    let b = channel_on(masters[1], "x-b:");
    let mut c = proxy.client();
    assert_eq!(
        c.cmd(&["SSUBSCRIBE", &a, &b]),
        Resp::Error(CROSSSLOT.into())
    );
    // Not subscribed: normal commands work at once.
    assert_eq!(c.cmd(&["SET", "k", "v"]), ok());
    assert_eq!(c.cmd(&["GET", "k"]), bulk("v"));
    // Same slot (hash tag): fine.
    assert_eq!(
        c.cmd(&["SSUBSCRIBE", "{t}1", "{t}2"]),
        conf("ssubscribe", "{t}1", 1)
    );
    assert_eq!(c.read(), conf("ssubscribe", "{t}2", 2));
}

#[test]
fn shard_subscriptions_follow_a_migrated_slot() {
    let cluster = Cluster::start(3, 0);
    let proxy = cluster.proxy(3, "");
    let masters = cluster.masters();
    let (src, dst, third) = (masters[0], masters[1], masters[2]);
    let moving = channel_on(src, "move:");
    let staying = channel_on(third, "stay:");
    let mut sub = proxy.client();
    let mut other = proxy.client();
    assert_eq!(
        sub.cmd(&["SSUBSCRIBE", &moving]),
        conf("ssubscribe", &moving, 1)
    );
    assert_eq!(
        sub.cmd(&["SSUBSCRIBE", &staying]),
        conf("ssubscribe", &staying, 2)
    );
    assert_eq!(other.cmd(&["SPUBLISH", &moving, "before"]), Resp::Int(1));
    assert_eq!(sub.read(), smessage(&moving, "before"));

    // No keys to move: channels are not keys.
    cluster.move_slot(&slot_of(src, &moving).to_string(), src, dst, &[]);
    // Redis dropped the subscription on the old owner; the proxy makes it again on the new.
    wait_until(
        Duration::from_secs(10),
        "the proxy to subscribe the channel at its new owner",
        || shard_subscribers(dst, &moving) == 1,
    );
    assert_eq!(shard_subscribers(src, &moving), 0);

    // Published after the move, directly and through the proxy: both arrive, with no
    // unsolicited sunsubscribe before them.
    assert_eq!(
        dst.client().cmd(&["SPUBLISH", &moving, "direct"]),
        Resp::Int(1)
    );
    assert_eq!(sub.read(), smessage(&moving, "direct"));
    assert_eq!(other.cmd(&["SPUBLISH", &moving, "after"]), Resp::Int(1));
    assert_eq!(sub.read(), smessage(&moving, "after"));
    assert_eq!(other.cmd(&["SPUBLISH", &staying, "still"]), Resp::Int(1));
    assert_eq!(sub.read(), smessage(&staying, "still"));
    assert_nothing_pending(&mut sub);

    // The counts still describe two channels.
    assert_eq!(
        sub.cmd(&["SUNSUBSCRIBE", &moving]),
        conf("sunsubscribe", &moving, 1)
    );
    assert_eq!(shard_subscribers(dst, &moving), 0);
    assert_eq!(
        sub.cmd(&["SUNSUBSCRIBE", &staying]),
        conf("sunsubscribe", &staying, 0)
    );
    assert_eq!(sub.cmd(&["GET", "nothing"]), Resp::Nil);
}

#[test]
fn shard_subscriptions_survive_a_master_failure() {
    let cluster = Cluster::start(3, 1);
    let proxy = cluster.proxy(3, "read_from = \"master\"\nmaster_wait = \"10s\"\n");
    let victim = cluster.masters()[0];
    let victim_port = victim.port;
    let heir_port = cluster
        .replicas()
        .iter()
        .find(|r| {
            r.info("replication")
                .contains(&format!("master_port:{victim_port}\r\n"))
        })
        .map(|r| r.port)
        .expect("the victim's replica");
    let channel = channel_on(victim, "fail:");
    let other_master = cluster.masters()[1];
    let safe = channel_on(other_master, "safe:");
    let mut sub = proxy.client();
    let mut other = proxy.client();
    assert_eq!(
        sub.cmd(&["SSUBSCRIBE", &channel]),
        conf("ssubscribe", &channel, 1)
    );
    assert_eq!(
        sub.cmd(&["SSUBSCRIBE", &safe]),
        conf("ssubscribe", &safe, 2)
    );

    let mut cluster = cluster;
    cluster
        .nodes
        .iter_mut()
        .find(|n| n.port == victim_port)
        .expect("victim")
        .kill();
    let heir = cluster.node(heir_port);
    wait_until(
        Duration::from_secs(30),
        "the replica to be promoted",
        || heir.info("replication").contains("role:master"),
    );
    // The proxy subscribes the channel again at the promoted replica, unasked.
    wait_until(
        Duration::from_secs(15),
        "the proxy to subscribe the channel at the new master",
        || shard_subscribers(heir, &channel) == 1,
    );
    assert_eq!(
        heir.client().cmd(&["SPUBLISH", &channel, "after"]),
        Resp::Int(1)
    );
    assert_eq!(sub.read(), smessage(&channel, "after"));
    assert_eq!(other.cmd(&["SPUBLISH", &safe, "other"]), Resp::Int(1));
    assert_eq!(sub.read(), smessage(&safe, "other"));
    assert_nothing_pending(&mut sub);
    // Both channels are on the client's books: one confirmation each, counting down.
    sub.send(&["SUNSUBSCRIBE"]);
    let (first, second) = (sub.read(), sub.read());
    let (Resp::Array(first), Resp::Array(second)) = (first, second) else {
        panic!("SUNSUBSCRIBE confirmations expected");
    };
    assert_eq!((&first[2], &second[2]), (&Resp::Int(1), &Resp::Int(0)));
    let mut names = vec![first[1].text(), second[1].text()];
    names.sort();
    let mut expected = vec![channel.clone(), safe.clone()];
    expected.sort();
    assert_eq!(names, expected);
    assert_eq!(sub.cmd(&["SET", "back", "1"]), ok());
}

#[test]
fn a_channel_that_cannot_be_resubscribed_is_reported_unsubscribed() {
    // No replicas: a killed master's slots stay unserved, so the proxy's attempt to
    // subscribe its channel again must give up after `master_wait` and tell the client.
    let cluster = Cluster::start(3, 0);
    let proxy = cluster.proxy(3, "master_wait = \"600ms\"\n");
    let victim_port = cluster.masters()[0].port;
    let channel = channel_on(cluster.masters()[0], "doomed:");
    let safe = channel_on(cluster.masters()[1], "kept:");
    let mut sub = proxy.client();
    assert_eq!(
        sub.cmd(&["SSUBSCRIBE", &channel]),
        conf("ssubscribe", &channel, 1)
    );
    assert_eq!(
        sub.cmd(&["SSUBSCRIBE", &safe]),
        conf("ssubscribe", &safe, 2)
    );
    let mut cluster = cluster;
    cluster
        .nodes
        .iter_mut()
        .find(|n| n.port == victim_port)
        .expect("victim")
        .kill();
    // The default read timeout (10 s) is far above master_wait.
    assert_eq!(sub.read(), conf("sunsubscribe", &channel, 1));
    // The other channel is still the client's.
    assert_nothing_pending(&mut sub);
    assert_eq!(
        sub.cmd(&["SUNSUBSCRIBE", &safe]),
        conf("sunsubscribe", &safe, 0)
    );
}

/// Redis answers PING in the subscribed form (`["pong", ""]` for RESP2) while any
/// subscription is left, shard channels included: ending the last classic subscription
/// must not turn the answer into a plain `+PONG` (the classic link is no longer subscribed).
#[test]
fn ping_after_the_last_classic_unsubscribe_keeps_the_subscribed_form() {
    let cluster = Cluster::start(3, 0);
    let proxy = cluster.proxy(3, "");
    let channel = channel_on(cluster.masters()[0], "ping:");
    let mut sub = proxy.client();
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "classic"]),
        conf("subscribe", "classic", 1)
    );
    assert_eq!(
        sub.cmd(&["SSUBSCRIBE", &channel]),
        conf("ssubscribe", &channel, 1)
    );
    assert_eq!(
        sub.cmd(&["UNSUBSCRIBE", "classic"]),
        conf("unsubscribe", "classic", 0)
    );
    // Still shard-subscribed: the subscribed-mode PING reply, as from one Redis.
    assert_nothing_pending(&mut sub);
    assert_eq!(
        sub.cmd(&["SUNSUBSCRIBE", &channel]),
        conf("sunsubscribe", &channel, 0)
    );
    assert_eq!(sub.cmd(&["PING"]), Resp::Simple("PONG".into()));
}

/// A master with many of the client's channels dies and no replica takes over: every one of
/// them is given up once `master_wait` is over, not one `master_wait` after the other (the
/// client's other channels are not read meanwhile), and the confirmations count down as
/// one Redis would count them.
#[test]
fn channels_of_a_dead_master_are_given_up_after_one_master_wait() {
    const LOST: usize = 8;
    let cluster = Cluster::start(3, 0);
    let proxy = cluster.proxy(3, "master_wait = \"1s\"\n");
    let victim_port = cluster.masters()[0].port;
    let doomed: Vec<String> = (0..LOST)
        .map(|i| channel_on(cluster.masters()[0], &format!("dead{i}:")))
        .collect();
    let safe = channel_on(cluster.masters()[1], "alive:");
    let mut sub = proxy.client();
    for (i, c) in doomed.iter().enumerate() {
        assert_eq!(
            sub.cmd(&["SSUBSCRIBE", c]),
            conf("ssubscribe", c, i as i64 + 1)
        );
    }
    assert_eq!(
        sub.cmd(&["SSUBSCRIBE", &safe]),
        conf("ssubscribe", &safe, LOST as i64 + 1)
    );
    let mut cluster = cluster;
    let killed = std::time::Instant::now();
    cluster
        .nodes
        .iter_mut()
        .find(|n| n.port == victim_port)
        .expect("victim")
        .kill();
    sub.set_timeout(Duration::from_secs(60));
    let mut told = Vec::new();
    for left in (1..=LOST as i64).rev() {
        match sub.read() {
            Resp::Array(items) if items.len() == 3 => {
                assert_eq!(items[0], bulk("sunsubscribe"));
                assert_eq!(items[2], Resp::Int(left), "the count of {:?}", items[1]);
                told.push(items[1].text());
            }
            other => panic!("a sunsubscribe expected, got {other:?}"),
        }
    }
    // One master_wait (1 s) and a little; one after the other would take 8 s.
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(5), "gave up after {took:?}");
    told.sort();
    let mut expected = doomed.clone();
    expected.sort();
    assert_eq!(told, expected);
    assert_nothing_pending(&mut sub);
    assert_eq!(
        sub.cmd(&["SUNSUBSCRIBE", &safe]),
        conf("sunsubscribe", &safe, 0)
    );
}

/// One SSUBSCRIBE naming many channels (one slot, so Redis accepts it), then messages: the
/// proxy's work per confirmation and per message must not grow with the number of channels
/// the client holds (recounting every channel each time made this quadratic: minutes of one
/// core for one request).
#[test]
fn many_shard_channels_cost_linear_work() {
    const N: usize = 20_000;
    let cluster = Cluster::start(3, 0);
    let proxy = cluster.proxy(3, "");
    let channels: Vec<String> = (0..N).map(|i| format!("{{many}}{i}")).collect();
    let owner = cluster
        .masters()
        .into_iter()
        .find(|m| Cluster::serves(m, slot_of(m, &channels[0])))
        .expect("the owner of {many}");
    let mut sub = proxy.client();
    sub.set_timeout(Duration::from_secs(120));
    let started = std::time::Instant::now();
    let mut args: Vec<&str> = vec!["SSUBSCRIBE"];
    args.extend(channels.iter().map(String::as_str));
    sub.send(&args);
    for (i, c) in channels.iter().enumerate() {
        assert_eq!(sub.read(), conf("ssubscribe", c, i as i64 + 1));
    }
    let mut publisher = owner.client();
    for i in 0..200 {
        publisher.send(&["SPUBLISH", &channels[i % N], "m"]);
    }
    for _ in 0..200 {
        assert_eq!(publisher.read(), Resp::Int(1));
    }
    for i in 0..200 {
        assert_eq!(sub.read(), smessage(&channels[i % N], "m"));
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_nothing_pending(&mut sub);
}

/// Issue 10, item 6: a subscribed client's other commands never get the proxy's internal
/// redirects. RESP2: Redis's subscribed-mode refusal; RESP3: the command runs (Redis allows
/// any command in RESP3 subscribed mode), wherever its slot lives, classic or shard.
#[test]
fn a_subscribed_client_never_sees_the_proxys_redirects() {
    let cluster = Cluster::start(3, 0);
    let proxy = cluster.proxy(3, "");
    let keys: Vec<String> = cluster
        .masters()
        .iter()
        .enumerate()
        .map(|(i, m)| channel_on(m, &format!("key{i}:")))
        .collect();
    let mut w = proxy.client();
    for k in &keys {
        assert_eq!(w.cmd(&["SET", k, k]), ok());
    }

    let mut sub = proxy.client();
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "news"]),
        conf("subscribe", "news", 1)
    );
    for k in &keys {
        assert_eq!(
            sub.cmd(&["GET", k]),
            Resp::Error(
                "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / \
                 QUIT / RESET are allowed in this context"
                    .into()
            ),
            "RESP2 GET {k} while subscribed"
        );
    }

    let mut s3 = proxy.client();
    assert!(matches!(s3.cmd(&["HELLO", "3"]), Resp::Map(_)));
    assert_eq!(
        s3.cmd(&["SUBSCRIBE", "news"]),
        Resp::Push(vec![bulk("subscribe"), bulk("news"), Resp::Int(1)])
    );
    let shard = channel_on(cluster.masters()[1], "shard:");
    let mut s3s = proxy.client();
    assert!(matches!(s3s.cmd(&["HELLO", "3"]), Resp::Map(_)));
    assert_eq!(
        s3s.cmd(&["SSUBSCRIBE", &shard]),
        Resp::Push(vec![bulk("ssubscribe"), bulk(&shard), Resp::Int(1)])
    );
    for k in &keys {
        assert_eq!(
            s3.cmd(&["GET", k]),
            bulk(k),
            "RESP3 GET {k} while subscribed"
        );
        assert_eq!(
            s3s.cmd(&["GET", k]),
            bulk(k),
            "RESP3 GET {k} while shard-subscribed"
        );
        assert_eq!(s3.cmd(&["APPEND", k, "+"]), Resp::Int(k.len() as i64 + 1));
    }
    // A multi-slot command is split as for any client.
    let mget = s3.cmd(&["MGET", &keys[0], &keys[1], &keys[2]]);
    assert_eq!(
        mget,
        Resp::Array(keys.iter().map(|k| bulk(&format!("{k}+"))).collect())
    );

    // All three are still subscribed.
    assert_eq!(w.cmd(&["PUBLISH", "news", "hi"]), Resp::Int(2));
    assert_eq!(
        sub.read(),
        Resp::Array(vec![bulk("message"), bulk("news"), bulk("hi")])
    );
    assert_eq!(
        s3.read(),
        Resp::Push(vec![bulk("message"), bulk("news"), bulk("hi")])
    );
    assert_eq!(w.cmd(&["SPUBLISH", &shard, "s"]), Resp::Int(1));
    assert_eq!(
        s3s.read(),
        Resp::Push(vec![bulk("smessage"), bulk(&shard), bulk("s")])
    );
}

/// Issue 10, item 7: PUBLISH through a cluster pool counts every client subscribed through
/// the proxy (channel and pattern subscribers, as one Redis would), whichever master each
/// subscription and each PUBLISH went to; every one of them receives every message.
#[test]
fn publish_counts_every_client_subscribed_through_the_proxy() {
    let cluster = Cluster::start(3, 0);
    let proxy = cluster.proxy(3, "");
    let mut subs: Vec<Client> = (0..3).map(|_| proxy.client()).collect();
    for s in &mut subs {
        assert_eq!(s.cmd(&["SUBSCRIBE", "news"]), conf("subscribe", "news", 1));
    }
    let mut pat = proxy.client();
    assert_eq!(
        pat.cmd(&["PSUBSCRIBE", "ne*"]),
        conf("psubscribe", "ne*", 1)
    );
    let mut w = proxy.client();
    assert_eq!(
        w.cmd(&["PUBSUB", "NUMSUB", "news"]),
        Resp::Array(vec![bulk("news"), Resp::Int(3)])
    );
    // Several PUBLISHes: keyless commands are spread over the masters.
    for i in 0..6 {
        let payload = format!("m{i}");
        assert_eq!(
            w.cmd(&["PUBLISH", "news", &payload]),
            Resp::Int(4),
            "PUBLISH #{i} counted"
        );
        for s in &mut subs {
            assert_eq!(
                s.read(),
                Resp::Array(vec![bulk("message"), bulk("news"), bulk(&payload)])
            );
        }
        assert_eq!(
            pat.read(),
            Resp::Array(vec![
                bulk("pmessage"),
                bulk("ne*"),
                bulk("news"),
                bulk(&payload)
            ])
        );
    }
}
