//! Commands the proxy answers itself because they describe the client's own connection
//! (PING, ECHO, HELLO, AUTH, SELECT, CLIENT SETNAME/GETNAME/ID/INFO/LIST, RESET, QUIT), the
//! authentication gate, and the denial of commands that would break the proxy's view.

use bytes::{Bytes, BytesMut};

use super::tx_state::Tx;
use super::{deny, error_bytes, Session};
use crate::command::{CommandInfo, Special};
use crate::config::ClientAuth;
use crate::resp::{encode, ClientError, ErrorCode, Protocol, Request};

const PONG: &[u8] = b"+PONG\r\n";
const OK: &[u8] = b"+OK\r\n";

/// Version we announce in HELLO: the Redis release whose command set we mirror.
const REDIS_VERSION: &str = "7.0.15";

fn wrong_args(name: &str) -> Bytes {
    error_bytes(&format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

impl Session {
    /// Answers `req` locally when it is a session command, an unauthenticated request or a
    /// denied command; `None` means forward it.
    pub(super) fn local(
        &mut self,
        req: &Request,
        info: Option<&'static CommandInfo>,
    ) -> Option<Bytes> {
        let special = Special::of(info);
        let may_unauthed = matches!(
            special,
            Special::Auth | Special::Hello | Special::Quit | Special::Reset
        );
        if !(self.authed || may_unauthed) {
            return Some(
                ClientError::new(ErrorCode::NoAuth, "Authentication required.").to_bytes(),
            );
        }
        if let Some(reply) = self.connection_command(special, req) {
            return Some(reply);
        }
        match special {
            s if s.is_client() => {
                if let Some(reply) = self.client(req) {
                    return Some(reply);
                }
            }
            // Not subscribed (subscribed clients are served by the pub/sub loop): Redis
            // confirms each channel with a count of 0.
            s if s.unsubscribes() => return Some(self.unsubscribe_confirmations(req)),
            Special::Exec | Special::Discard => {
                let upper = String::from_utf8_lossy(req.arg(0)).to_ascii_uppercase();
                return Some(error_bytes(&format!("ERR {upper} without MULTI")));
            }
            Special::Wait => {
                // WAIT has paths of its own (`wait_cmd`: outside a transaction, with a WATCH
                // open, and for a RESP3 subscriber; on the transaction's connection inside
                // MULTI). Forwarded from here it would block a shared connection or count
                // another connection's writes: refused rather than answered wrong.
                return Some(error_bytes(
                    "ERR sluice: WAIT reached a path that cannot answer it (it would count \
                     replica acknowledgements of another connection's writes)",
                ));
            }
            Special::Unwatch => return Some(Bytes::from_static(OK)),
            Special::Slowlog => {
                if let Some(reply) = self.pool.registry.slowlog.command(req) {
                    return Some(reply);
                }
            }
            Special::Cluster if self.pool.routing.by_slot() => {
                return Some(self.cluster_command(req))
            }
            // Fast exit for the data commands: only denied families are left to check, and
            // the table classed those (an unknown command is checked by name).
            Special::None | Special::Info | Special::Script | Special::LatencyHistogram
                if info.is_some() =>
            {
                return None
            }
            Special::Guarded => return self.guarded(req),
            _ => {}
        }
        deny::check(&self.pool, req).map(|msg| error_bytes(&msg))
    }

    /// The answer to a command about the client's own connection (PING, ECHO, QUIT, SELECT,
    /// AUTH, HELLO, RESET); `None` for any other.
    fn connection_command(&mut self, special: Special, req: &Request) -> Option<Bytes> {
        Some(match special {
            Special::Ping => match req.len() {
                1 => Bytes::from_static(PONG),
                2 => bulk(req.arg(1)),
                _ => wrong_args("ping"),
            },
            Special::Echo if req.len() == 2 => bulk(req.arg(1)),
            Special::Echo => wrong_args("echo"),
            Special::Quit => {
                self.closing = true;
                Bytes::from_static(OK)
            }
            Special::Select => self.select(req),
            Special::Auth => self.auth(req),
            Special::Hello => self.hello(req),
            Special::Reset => {
                self.reset();
                Bytes::from_static(b"+RESET\r\n")
            }
            _ => return None,
        })
    }

    /// CONFIG and the other guarded families: refused when the pool denies them; a CONFIG
    /// SET or RESETSTAT that may pass is noted by what follows those settings.
    fn guarded(&self, req: &Request) -> Option<Bytes> {
        let denied = deny::check(&self.pool, req);
        if denied.is_none() {
            let registry = &self.pool.registry;
            registry.tracking.watch_config(registry, req);
            if req.arg(1).eq_ignore_ascii_case(b"set") {
                registry.slowlog.watch_config(req);
            }
            if req.arg(1).eq_ignore_ascii_case(b"resetstat") {
                registry.latency.reset();
            }
        }
        denied.map(|msg| error_bytes(&msg))
    }

    fn select(&mut self, req: &Request) -> Bytes {
        if req.len() != 2 {
            return wrong_args("select");
        }
        match parse_int(req.arg(1)) {
            // Redis Cluster has only database 0, and says so in these words.
            Some(n) if n != 0 && self.pool.routing.by_slot() => {
                error_bytes("ERR SELECT is not allowed in cluster mode")
            }
            Some(n)
                if n >= 0
                    && (n as u64) < u64::from(self.pool.cfg.databases)
                    && n <= i64::from(u16::MAX) =>
            {
                self.db = n as u16;
                Bytes::from_static(OK)
            }
            Some(_) => error_bytes("ERR DB index is out of range"),
            None => error_bytes("ERR value is not an integer or out of range"),
        }
    }

    fn auth(&mut self, req: &Request) -> Bytes {
        let (user, pass) = match req.len() {
            2 => (&b"default"[..], req.arg(1)),
            3 => (req.arg(1), req.arg(2)),
            1 => return wrong_args("auth"),
            _ => return error_bytes("ERR syntax error"),
        };
        if self.pool.open_access() && req.len() == 3 {
            // Like Redis with a passwordless default user: `AUTH default <anything>` succeeds,
            // so clients configured with a username and password still connect.
            return if user == b"default" {
                Bytes::from_static(OK)
            } else {
                error_bytes("WRONGPASS invalid username-password pair or user is disabled.")
            };
        }
        self.check_credentials(user, pass)
            .map(|()| Bytes::from_static(OK))
            .unwrap_or_else(|e| e)
    }

    fn check_credentials(&mut self, user: &[u8], pass: &[u8]) -> Result<(), Bytes> {
        match self.pool.auth.mode {
            ClientAuth::Users => return self.login_user(user, pass),
            // The master checked them before this runs (`passthrough`).
            ClientAuth::Passthrough if self.logged_in_as(user, pass) => return Ok(()),
            ClientAuth::Passthrough => return Err(error_bytes(super::users::WRONGPASS)),
            ClientAuth::Password => {}
        }
        let Some(expected) = self.pool.cfg.password.as_deref() else {
            return Err(error_bytes(
                "ERR AUTH <password> called without any password configured for the default user. \
                 Are you sure your configuration is correct?",
            ));
        };
        if user == b"default" && constant_time_eq(pass, expected.as_bytes()) {
            self.pool.auth.succeeded(self.entry.addr);
            self.authed = true;
            Ok(())
        } else {
            self.pool
                .auth
                .failed(super::users::Failure::WrongPass, self.entry.addr, user);
            Err(error_bytes(super::users::WRONGPASS))
        }
    }

    pub(super) fn hello(&mut self, req: &Request) -> Bytes {
        let mut proto = self.proto;
        let mut i = 1;
        if req.len() > 1 {
            match parse_int(req.arg(1)) {
                Some(2) => proto = Protocol::Resp2,
                Some(3) => proto = Protocol::Resp3,
                Some(_) => return error_bytes("NOPROTO unsupported protocol version"),
                None => {
                    return error_bytes("ERR Protocol version is not an integer or out of range")
                }
            }
            i = 2;
        }
        let mut setname = None;
        while i < req.len() {
            let opt = req.arg(i);
            let more = req.len() - i - 1;
            if opt.eq_ignore_ascii_case(b"AUTH") && more >= 2 {
                let (user, pass) = (req.arg(i + 1), req.arg(i + 2));
                if self.pool.open_access() {
                    if user != b"default" {
                        return error_bytes(
                            "WRONGPASS invalid username-password pair or user is disabled.",
                        );
                    }
                } else if let Err(e) = self.check_credentials(user, pass) {
                    return e;
                }
                i += 3;
            } else if opt.eq_ignore_ascii_case(b"SETNAME") && more >= 1 {
                if !valid_client_name(req.arg(i + 1)) {
                    return error_bytes(
                        "ERR Client names cannot contain spaces, newlines or special characters.",
                    );
                }
                setname = Some(req.arg_bytes(i + 1));
                i += 2;
            } else {
                return error_bytes(&format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(opt)
                ));
            }
        }
        if !self.authed {
            // Redis 7.0's words (7.2 says "HELLO <proto> AUTH").
            return error_bytes(
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
                 HELLO AUTH <user> <pass> option can be used to authenticate the client and \
                 select the RESP protocol version at the same time",
            );
        }
        if let Some(name) = setname {
            self.set_client_name(if name.is_empty() { None } else { Some(name) });
        }
        self.proto = proto;
        let mut out = BytesMut::new();
        encode::map_len(&mut out, proto, 7);
        let pairs: [(&str, Field); 7] = [
            ("server", Field::Str("redis")),
            ("version", Field::Str(REDIS_VERSION)),
            (
                "proto",
                Field::Int(if proto == Protocol::Resp3 { 3 } else { 2 }),
            ),
            ("id", Field::Int(self.id as i64)),
            ("mode", Field::Str("standalone")),
            ("role", Field::Str("master")),
            ("modules", Field::EmptyArray),
        ];
        for (k, v) in pairs {
            encode::bulk(&mut out, k.as_bytes());
            match v {
                Field::Str(s) => encode::bulk(&mut out, s.as_bytes()),
                Field::Int(n) => encode::integer(&mut out, n),
                Field::EmptyArray => encode::array_len(&mut out, 0),
            }
        }
        out.freeze()
    }

    fn client(&mut self, req: &Request) -> Option<Bytes> {
        let sub = String::from_utf8_lossy(req.arg(1)).to_ascii_lowercase();
        let takes_no_args = matches!(
            sub.as_str(),
            "getname" | "id" | "info" | "getredir" | "trackinginfo"
        );
        if takes_no_args && req.len() != 2 {
            return Some(wrong_args(&format!("client|{sub}")));
        }
        Some(match sub.as_str() {
            "setname" => self.client_setname(req),
            "getname" => {
                let mut out = BytesMut::new();
                match &self.client_name() {
                    Some(n) => encode::bulk(&mut out, n),
                    None => encode::null(&mut out, self.proto),
                }
                out.freeze()
            }
            "id" => {
                let mut out = BytesMut::new();
                encode::integer(&mut out, self.id as i64);
                out.freeze()
            }
            "info" => self.client_info(req),
            "list" => self.client_list(req),
            "pause" | "unpause" => self.client_pause(req),
            "kill" => self.client_kill(req),
            "reply" => self.client_reply(req),
            "setinfo" => Bytes::from_static(OK),
            // Reached only where it cannot run (inside MULTI, in subscribed mode): the
            // pipelined path takes it to `tracking`.
            "tracking" => error_bytes(
                "ERR sluice: CLIENT TRACKING is not supported inside MULTI or in subscribed mode",
            ),
            "caching" => self.client_caching(req),
            "getredir" => self.client_getredir(),
            "trackinginfo" => self.client_trackinginfo(),
            _ => return None,
        })
    }

    fn client_setname(&mut self, req: &Request) -> Bytes {
        if req.len() != 3 {
            return wrong_args("client|setname");
        }
        if !valid_client_name(req.arg(2)) {
            return error_bytes(
                "ERR Client names cannot contain spaces, newlines or special characters.",
            );
        }
        self.set_client_name(if req.arg(2).is_empty() {
            None
        } else {
            Some(req.arg_bytes(2))
        });
        Bytes::from_static(OK)
    }

    fn unsubscribe_confirmations(&self, req: &Request) -> Bytes {
        let kind = req.arg(0).to_ascii_lowercase();
        let mut out = BytesMut::new();
        let mut one = |channel: Option<&[u8]>| {
            encode::push_len(&mut out, self.proto, 3);
            encode::bulk(&mut out, &kind);
            match channel {
                Some(c) => encode::bulk(&mut out, c),
                None => encode::null(&mut out, self.proto),
            }
            encode::integer(&mut out, 0);
        };
        if req.len() == 1 {
            one(None);
        } else {
            for i in 1..req.len() {
                one(Some(req.arg(i)));
            }
        }
        out.freeze()
    }

    /// RESET: back to a fresh connection's state (keeps authentication only if not required).
    pub(super) fn reset(&mut self) {
        self.proto = Protocol::Resp2;
        self.db = 0;
        self.set_client_name(None);
        // Dropping a pinned connection discards its transaction and watches on the node.
        self.tx = Tx::None;
        self.authed = self.pool.open_access();
        self.login = None;
        self.entry.state().user = None;
        self.reply_mode = super::reply_mode::ReplyMode::On;
        self.tracking_off();
    }
}

enum Field {
    Str(&'static str),
    Int(i64),
    EmptyArray,
}

fn bulk(data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 16);
    encode::bulk(&mut out, data);
    out.freeze()
}

/// Parses a decimal integer argument the way Redis does (no spaces, no plus sign).
pub(super) fn parse_int(arg: &[u8]) -> Option<i64> {
    if arg.is_empty() || arg.len() > 20 || arg[0] == b'+' {
        return None;
    }
    std::str::from_utf8(arg).ok()?.parse().ok()
}

/// Redis accepts client names of printable ASCII without spaces.
fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

/// Compares secrets without an early exit, so timing does not reveal a matching prefix.
pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
