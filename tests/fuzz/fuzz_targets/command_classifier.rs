//! The command classifier: the command-table lookup and the routing questions the session
//! asks of every request (read or write, blocking, its keys, its blocking timeout, the RESP2
//! shape of its reply, its special handling).
//!
//! Input: byte 0 is an elapsed time in tenths of a second (for the blocking-timeout rewrite),
//! the rest is one request: arguments separated by single spaces (empty ones allowed), so
//! that the fuzzer reaches subcommands and keywords (BLOCK, STREAMS, WITHSCORES) by splicing
//! dictionary words.
//!
//! Checked, beyond "no panic":
//! * a request and its plain argument list get the same answers;
//! * the row found is the one `lookup_name` gives for its own name;
//! * key positions and the blocking timeout's position are arguments of the request;
//! * a read is never blocking (reads may go to replicas, which never block for us);
//! * a rewritten blocking timeout is a request with the same arguments but the timeout, and
//!   the new timeout is positive.
#![no_main]

use std::time::Duration;

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice::command::{self, Special};
use sluice::resp::{decode_request, Limits, Request};

fuzz_target!(|data: &[u8]| {
    let [tenths, line @ ..] = data else {
        return;
    };
    let args: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let req = Request::from_args(&args);
    let info = command::lookup(&req);
    assert_eq!(
        info.map(|i| i.name),
        command::lookup_args(&args[..]).map(|i| i.name)
    );
    let read = command::is_read(&req, info);
    let blocking = command::is_blocking(&req, info);
    assert_eq!(read, command::is_read_args(&args[..], info));
    assert_eq!(blocking, command::is_blocking_args(&args[..], info));
    assert!(!(read && blocking), "a read never blocks");
    assert_eq!(
        command::nil_is_array(&req, info),
        command::nil_is_array_args(&args[..])
    );
    let _ = command::reply_shape(&req, info);
    let special = Special::of(info);
    let _ = (
        special.subscribes(),
        special.unsubscribes(),
        special.is_client(),
        special.changes_connection_for_good(),
    );
    let Some(info) = info else {
        return;
    };
    let by_name = command::lookup_name(info.name.as_bytes()).expect("a row finds itself");
    assert_eq!(by_name.name, info.name);
    let positions: Vec<usize> = command::key_positions(&req, info).collect();
    assert!(positions.iter().all(|&i| i >= 1 && i < req.len()));
    assert!(command::keys(&req, info).eq(command::keys_args(&args[..], info)));
    if let Some((at, _)) = command::blocking_timeout_at(&req, Some(info)) {
        assert!(at < req.len());
    }
    let elapsed = Duration::from_millis(u64::from(*tenths) * 100);
    if let Some(raw) = command::with_remaining_timeout(&req, Some(info), elapsed) {
        let (at, _) = command::blocking_timeout_at(&req, Some(info)).expect("has a timeout");
        let mut buf = BytesMut::from(&raw[..]);
        let new = decode_request(&mut buf, &Limits::node())
            .expect("a rewritten request decodes")
            .expect("a rewritten request is complete");
        assert!(buf.is_empty());
        assert_eq!(new.len(), req.len());
        for i in 0..req.len() {
            if i != at {
                assert_eq!(new.arg(i), req.arg(i));
            }
        }
        let left: f64 = std::str::from_utf8(new.arg(at))
            .expect("a timeout is text")
            .parse()
            .expect("a timeout is a number");
        assert!(left > 0.0, "a rewritten timeout never means forever");
    }
});
