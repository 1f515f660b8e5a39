//! Test harness: runs commands straight through the dispatcher on a private store, without
//! a server, for checking replies and what a command propagates.

use bytes::BytesMut;

use crate::node::client::ClientState;
use crate::node::cmd::{execute, Ctx, Reply};
use crate::node::store::Store;
use crate::node::{NodeConfig, Shared};
use crate::resp::{Protocol, Request};

/// A store, one client and the shared state commands need.
pub struct Harness {
    shared: Shared,
    /// The keyspace (its feed records propagation when enabled).
    pub store: Store,
    client: ClientState,
}

impl Harness {
    /// A harness whose client speaks `proto`.
    pub fn new(proto: Protocol) -> Harness {
        let addr = "127.0.0.1:0".parse().expect("addr");
        Harness {
            shared: Shared::new(
                NodeConfig {
                    listen: addr,
                    replicaof: None,
                    requirepass: None,
                    appendonly: false,
                    dir: ".".into(),
                    cluster: None,
                    tls: None,
                },
                addr,
            ),
            store: Store::new(),
            client: ClientState {
                proto,
                authed: true,
                ..ClientState::default()
            },
        }
    }

    /// Runs one command given as space-separated words. Blocking commands answer their
    /// timeout reply at once (as inside MULTI).
    pub fn run(&mut self, line: &str) -> Reply {
        let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let req = Request::from_args(&words);
        let mut ctx = Ctx::new(&mut self.store, &mut self.client, &self.shared, false);
        execute(&mut ctx, &req)
    }

    /// Runs a command and encodes its reply in the client's protocol.
    pub fn encoded(&mut self, line: &str) -> String {
        let reply = self.run(line);
        let mut out = BytesMut::new();
        reply.encode(self.client.proto, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// What the commands so far propagated, one command per entry as space-separated words
    /// (the leading SELECT included).
    pub fn propagated(&mut self) -> Vec<String> {
        let raw = self.store.feed.take();
        let mut out = Vec::new();
        let mut lines = raw[..]
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        while let Some(head) = lines.next() {
            let Some(n) = head.strip_prefix(b"*") else {
                continue;
            };
            let n: usize = std::str::from_utf8(n)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let mut words = Vec::with_capacity(n);
            for _ in 0..n {
                lines.next();
                words.push(String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned());
            }
            out.push(words.join(" "));
        }
        out
    }
}
