//! A node busy in a script is visible through the proxy (issue 13): PING answers BUSY as
//! the node does, and SCRIPT KILL reaches the node past the busy connection.

mod common;

use std::time::Duration;

use common::{standalone_config, wait_until, Redis, Resp, Sluice};

#[test]
fn ping_shows_a_busy_script_until_it_is_killed() {
    let master = Redis::start_with(&["--busy-reply-threshold", "50"]);
    let p = Sluice::start(&standalone_config(&master, &[], "master", ""));
    let mut looping = p.client();
    looping.send(&["EVAL", "while true do end", "0"]);
    let mut b = p.client();
    wait_until(
        Duration::from_secs(10),
        "PING to answer BUSY",
        || matches!(b.cmd(&["PING"]), Resp::Error(e) if e.starts_with("BUSY")),
    );
    assert_eq!(b.cmd(&["SCRIPT", "KILL"]), Resp::Simple("OK".into()));
    let Resp::Error(e) = looping.read() else {
        panic!("the killed script's client gets an error");
    };
    assert!(e.contains("killed"), "{e}");
    assert_eq!(b.cmd(&["PING"]), Resp::Simple("PONG".into()));
    assert_eq!(looping.cmd(&["PING"]), Resp::Simple("PONG".into()));
}
