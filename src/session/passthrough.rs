//! `auth = "passthrough"`: a client's `AUTH` / `HELLO ... AUTH` is checked by the master
//! itself (the proxy opens a connection and logs in as that user), and from then on the
//! client's commands travel on connections logged in as its own user (see
//! [`per_user`](crate::backend::per_user)), so Redis's ACL decides what it may do.
//!
//! Only authentication runs here, on a detour (it waits for the master); the requests that
//! follow take the usual paths, which ask [`Session::link`] which connections to use.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::tracking::readable::Readable;
use super::{error_bytes, Login, Session};
use crate::backend::mux::ReplyResult;
use crate::backend::per_user::{self, Credentials, UserLink, Via};
use crate::backend::Patience;
use crate::backend::{BackendError, DirectConn, Node};
use crate::command::{flags, CommandInfo, Special};
use crate::config::ClientAuth;
use crate::resp::{ClientError, Protocol, Request};

impl Session {
    /// The client's own user's connections (`auth = "passthrough"`, once logged in).
    pub(super) fn link(&self) -> Option<&Arc<UserLink>> {
        match self.login.as_deref() {
            Some(Login::Link(link)) => Some(link),
            _ => None,
        }
    }

    /// The client's own user's credentials, for its dedicated connections.
    pub(super) fn cred(&self) -> Option<&Arc<Credentials>> {
        self.link().map(|l| &l.cred)
    }

    /// The user the client's dedicated connections log in as: its own, except on the
    /// `default` login without a password when the proxy's own connections are that same
    /// user (no backend username or password): then the proxy's pooled connections serve
    /// it, the same identity on the node, shared with every client of the pool.
    pub(super) fn dedicated_link(&self) -> Option<&Arc<UserLink>> {
        let link = self.link()?;
        let cfg = &self.pool.cfg;
        let proxy_is_default = cfg.backend_password.is_none()
            && cfg
                .backend_username
                .as_deref()
                .is_none_or(|u| u == "default");
        let default_nopass = link.cred.user == "default" && link.cred.pass.is_empty();
        (!(default_nopass && proxy_is_default)).then_some(link)
    }

    /// How this client's requests reach the nodes (for the tasks that follow redirects).
    pub(super) fn via(&self) -> Via {
        Via {
            link: self.link().cloned(),
            slot: self.slot(),
            patience: Patience::Bounded,
        }
    }

    /// Sends a request to `node` as this client (on its user's connection in passthrough
    /// pools, else on its shared connection).
    pub(super) fn send_to(
        &self,
        node: &Arc<Node>,
        raw: Bytes,
        db: u16,
        patience: Patience,
    ) -> oneshot::Receiver<ReplyResult> {
        per_user::send(
            self.link().map(|l| &**l),
            node,
            raw,
            db,
            self.slot(),
            patience,
        )
    }

    /// The exclusive requests of a passthrough pool that are answered here: AUTH / HELLO
    /// AUTH (checked by the master), and the commands about other clients, refused unless
    /// Redis allows them to the client's user. `None`: it takes the usual exclusive path.
    pub(super) async fn passthrough_exclusive(
        &mut self,
        req: &Request,
        info: Option<&'static CommandInfo>,
    ) -> Option<Bytes> {
        if self.needs_master_permission(info) {
            if let Some(refusal) = self.allowed_at_master(req).await {
                return Some(refusal);
            }
            // MONITOR and CLIENT UNBLOCK run on their own paths; inside a transaction the
            // transaction's path answers.
            let special = Special::of(info);
            if self.tx.is_open() || matches!(special, Special::Monitor | Special::ClientUnblock) {
                return None;
            }
            if let Some(refusal) = self.unknown_user_at_master(req).await {
                return Some(refusal);
            }
            // What the proxy does not answer itself (CLIENT NO-EVICT) goes on to the node, as
            // the user, on the usual exclusive path.
            let taken = self.pool.registry.slowlog.start();
            let reply = self.local(req, info)?;
            self.answered_locally(taken, req, info);
            return Some(reply);
        }
        if !self.tx.is_open() && self.authenticates_at_master(req, info) {
            return Some(self.authenticate_at_master(req, info).await);
        }
        if self.names_a_user_only_the_master_knows(req, info) {
            if let Some(refusal) = self.unknown_user_at_master(req).await {
                return Some(refusal);
            }
            return Some(self.local(req, info).unwrap_or_default());
        }
        None
    }

    /// A login attempt (AUTH, HELLO with AUTH) from an address whose attempts are delayed
    /// now (`auth_failure_delay`): it runs on the exclusive path, which waits for its turn.
    pub(super) fn is_held_login(&self, req: &Request, info: Option<&CommandInfo>) -> bool {
        is_login(req, info) && self.pool.auth.delay.is_held(self.entry.addr.ip())
    }

    /// True for a request whose credentials the master must check (AUTH, HELLO with AUTH).
    pub(super) fn authenticates_at_master(
        &self,
        req: &Request,
        info: Option<&CommandInfo>,
    ) -> bool {
        self.pool.auth.mode == ClientAuth::Passthrough && is_login(req, info)
    }

    /// AUTH or HELLO AUTH in a passthrough pool: the master checks the credentials; on
    /// success the client's commands run as that user from now on. The reply is the master's
    /// refusal as it gave it (WRONGPASS ...), or the command's own reply.
    pub(super) async fn authenticate_at_master(
        &mut self,
        req: &Request,
        info: Option<&'static CommandInfo>,
    ) -> Bytes {
        let Some((user, pass)) = credentials(req) else {
            // Malformed: answered as usual (arity and syntax errors).
            return self.local(req, info).unwrap_or_default();
        };
        let cred = Arc::new(Credentials {
            user: String::from_utf8_lossy(user).into_owned(),
            pass: String::from_utf8_lossy(pass).into_owned(),
        });
        match self.log_in_at_master(&cred, Some(req)).await {
            Ok(()) => {}
            Err(Refused::Handshake(reason)) => {
                self.pool
                    .auth
                    .failed(super::users::Failure::WrongPass, self.entry.addr, user);
                return error_bytes(&reason);
            }
            Err(Refused::Reply(reply)) => return reply,
        }
        // AUTH answers OK; HELLO builds its reply (its AUTH now matches the login).
        self.local(req, info).unwrap_or_default()
    }

    /// Logs the client in as `cred` if the master accepts them (a new dedicated connection
    /// that logs in as the user, never an idle one: its handshake is the check; it is closed
    /// afterwards, the user's shared connections open on first use). `req`: the client's own AUTH, asked again in
    /// its own form (see [`legacy_auth_refusal`]).
    async fn log_in_at_master(
        &mut self,
        cred: &Arc<Credentials>,
        req: Option<&Request>,
    ) -> Result<(), Refused> {
        let master = self
            .pool
            .router
            .master(&self.pool.topology.load())
            .map_err(|e| Refused::Reply(ClientError::from(e).to_bytes()))?;
        match master.dedicated.checkout_check(Protocol::Resp2, cred).await {
            Ok(mut conn) => {
                if let Some(req) = req {
                    let timeout = self.pool.cfg.request_timeout;
                    if let Some(refusal) = legacy_auth_refusal(req, &mut conn, timeout).await {
                        return Err(Refused::Reply(refusal));
                    }
                }
            }
            Err(BackendError::Handshake { reason, .. }) => return Err(Refused::Handshake(reason)),
            Err(e) => return Err(Refused::Reply(ClientError::from(e).to_bytes())),
        }
        let link = self.pool.auth.links.get(Credentials {
            user: cred.user.clone(),
            pass: cred.pass.clone(),
        });
        self.pool.auth.succeeded(self.entry.addr);
        self.entry.state().user = Some(Arc::new(cred.user.clone()));
        self.login = Some(Box::new(Login::Link(link)));
        self.authed = true;
        if self.tracking.is_on() {
            // Logged in again while tracking: from now on it hears of its new user's keys
            // only; if those cannot be learnt, tracking stops (fail closed).
            match self.readable_keys().await {
                Ok(Some(r)) => self.pool.registry.tracking.set_readable(self.id, r),
                _ => self.tracking_off(),
            }
        }
        Ok(())
    }

    /// True when this request of a client that has not authenticated should first try to
    /// log it in as `default` (see [`Session::default_login`]).
    pub(super) fn needs_default_login(&self, req: &Request, info: Option<&CommandInfo>) -> bool {
        self.pool.auth.mode == ClientAuth::Passthrough
            && !self.authed
            && self.login.is_none()
            && match Special::of(info) {
                Special::Auth | Special::Quit | Special::Reset => false,
                // `HELLO 3` alone is what RESP3 clients connect with.
                Special::Hello => credentials(req).is_none(),
                _ => true,
            }
    }

    /// A client that has not authenticated is, on Redis, the `default` user, allowed to run
    /// commands while that user needs no password (no `requirepass`): passthrough pools
    /// ask the master the same (a login as `default` with an empty password, which only a
    /// `nopass` user accepts). Refused, the client gets NOAUTH until it authenticates (asked
    /// once per client, so an unauthenticated client cannot make the proxy open a master
    /// connection per command).
    pub(super) async fn default_login(&mut self) {
        let cred = Arc::new(Credentials {
            user: "default".into(),
            pass: String::new(),
        });
        if let Err(Refused::Handshake(_)) = self.log_in_at_master(&cred, None).await {
            self.login = Some(Box::new(Login::DefaultRefused));
        }
    }

    /// Passthrough pools: HELLO's AUTH after [`Session::authenticate_at_master`] accepted
    /// these credentials.
    pub(super) fn logged_in_as(&self, user: &[u8], pass: &[u8]) -> bool {
        self.cred()
            .is_some_and(|c| c.user.as_bytes() == user && c.pass.as_bytes() == pass)
    }
}

impl Session {
    /// Passthrough pools: the keys the client's Redis user may read, from `ACL GETUSER` on
    /// the master (on the proxy's own connection: a user need not be allowed to read its
    /// own ACL). `Ok(None)` outside passthrough pools; `Err` is the refusal to give the
    /// client when they cannot be learnt (tracking is then refused: fail closed).
    pub(super) async fn readable_keys(&self) -> Result<Option<Arc<Readable>>, Bytes> {
        // A client that has not logged in is the nodes' `default` user (see
        // `Pool::starts_authenticated`).
        let user = match self.cred() {
            Some(c) => c.user.clone(),
            None if self.pool.auth.mode == ClientAuth::Passthrough => "default".to_string(),
            None => return Ok(None),
        };
        let refuse = |why: &str| {
            error_bytes(&format!(
                "ERR sluice: tracking is refused: the keys user '{user}' may read could not be \
                 learnt from the master (ACL GETUSER, as the proxy's own user): {why}"
            ))
        };
        let master = self
            .pool
            .router
            .master(&self.pool.topology.load())
            .map_err(|e| refuse(&e.to_string()))?;
        let mut raw = bytes::BytesMut::new();
        crate::resp::encode::command(&mut raw, &[b"ACL", b"GETUSER", user.as_bytes()]);
        let reply = match master
            .send(raw.freeze(), 0, self.slot(), Patience::Bounded)
            .await
        {
            Ok(Ok(r)) => r.raw,
            Ok(Err(e)) => return Err(refuse(&e.to_string())),
            Err(_) => return Err(refuse("the request was dropped")),
        };
        let frame = match crate::resp::Frame::parse(&reply) {
            Ok(Some((frame, _))) => frame,
            _ => return Err(refuse("unreadable reply")),
        };
        if let crate::resp::Frame::Error(e) = &frame {
            return Err(refuse(&String::from_utf8_lossy(e)));
        }
        match Readable::from_getuser(&frame) {
            Ok(r) => Ok(Some(Arc::new(r))),
            Err(why) => Err(refuse(&why)),
        }
    }
}

impl Session {
    /// Passthrough: `CLIENT KILL ... USER name` outside a transaction. The users are the
    /// master's, so whether `name` exists (Redis answers `No such user` otherwise) is asked
    /// of it ([`Session::unknown_user_at_master`]).
    pub(super) fn names_a_user_only_the_master_knows(
        &self,
        req: &Request,
        info: Option<&CommandInfo>,
    ) -> bool {
        self.pool.auth.mode == ClientAuth::Passthrough
            && !self.tx.is_open()
            && Special::of(info).is_client()
            && kill_user(req).is_some()
    }

    /// `ERR No such user` when the master has no user named by CLIENT KILL's USER filter
    /// (`ACL GETUSER`, on the proxy's own connection); `None` when it has, or when it cannot
    /// say (the proxy's user may not run ACL GETUSER): the kill then runs as asked.
    async fn unknown_user_at_master(&self, req: &Request) -> Option<Bytes> {
        let name = kill_user(req)?;
        let master = self.pool.router.master(&self.pool.topology.load()).ok()?;
        let mut raw = bytes::BytesMut::new();
        crate::resp::encode::command(&mut raw, &[b"ACL", b"GETUSER", name]);
        let reply = master
            .send(raw.freeze(), 0, self.slot(), Patience::Bounded)
            .await
            .ok()?
            .ok()?;
        matches!(reply.raw.as_ref(), b"_\r\n" | b"$-1\r\n" | b"*-1\r\n").then(|| {
            error_bytes(&format!(
                "ERR No such user '{}'",
                String::from_utf8_lossy(name)
            ))
        })
    }

    /// Passthrough: the commands the proxy answers about the pool's other clients (CLIENT
    /// LIST/KILL/PAUSE/UNPAUSE/UNBLOCK, MONITOR) are for the users Redis allows them, and
    /// only Redis knows: they are asked of the master first ([`Session::allowed_at_master`]).
    pub(super) fn needs_master_permission(&self, info: Option<&CommandInfo>) -> bool {
        let special = Special::of(info);
        self.link().is_some()
            && info.is_some_and(|i| i.has(flags::ADMIN))
            && (special.is_client() || matches!(special, Special::Monitor | Special::ClientUnblock))
    }

    /// Asks the master (`ACL DRYRUN`, on the proxy's own connection) whether the client's
    /// user may run `req`; `None` when it may, else Redis's refusal. Fails closed: a check
    /// that cannot be made refuses the command.
    pub(super) async fn allowed_at_master(&self, req: &Request) -> Option<Bytes> {
        let user = self.cred()?.user.clone();
        let master = match self.pool.router.master(&self.pool.topology.load()) {
            Ok(m) => m,
            Err(e) => return Some(ClientError::from(e).to_bytes()),
        };
        let mut args: Vec<&[u8]> = vec![b"ACL", b"DRYRUN", user.as_bytes()];
        args.extend(req.args());
        let mut raw = bytes::BytesMut::new();
        crate::resp::encode::command(&mut raw, &args);
        let reply = master
            .send(raw.freeze(), 0, self.slot(), Patience::Bounded)
            .await;
        let text = match reply {
            Ok(Ok(r)) => r.raw,
            Ok(Err(e)) => return Some(ClientError::from(e).to_bytes()),
            Err(_) => return Some(error_bytes("ERR sluice: the permission check was dropped")),
        };
        if text.as_ref() == b"+OK\r\n" {
            return None;
        }
        // A command Redis refuses for its arity before any permission check: that refusal
        // is the client's answer, as on Redis.
        if text.starts_with(b"-ERR wrong number of arguments") {
            return Some(text);
        }
        // Refused: a bulk "This user has no permissions to run the 'x' command", which Redis
        // itself answers as "NOPERM this user ...".
        let words = match crate::resp::Frame::parse(&text) {
            Ok(Some((crate::resp::Frame::Bulk(b), _))) => String::from_utf8_lossy(&b).into_owned(),
            _ => String::from_utf8_lossy(&text).trim_end().to_string(),
        };
        let refusal = match words.strip_prefix("This user") {
            Some(rest) => format!("NOPERM this user{rest}"),
            None => format!("ERR sluice: the master could not check the permission: {words}"),
        };
        self.pool.auth.failed(
            super::users::Failure::NopermCommand,
            self.entry.addr,
            user.as_bytes(),
        );
        Some(error_bytes(&refusal))
    }
}

/// AUTH, or HELLO with AUTH.
pub(super) fn is_login(req: &Request, info: Option<&CommandInfo>) -> bool {
    match Special::of(info) {
        Special::Auth => true,
        Special::Hello => credentials(req).is_some(),
        _ => false,
    }
}

/// Why [`Session::log_in_at_master`] did not log the client in.
enum Refused {
    /// The master refused the credentials (its own text, e.g. WRONGPASS ...).
    Handshake(String),
    /// The reply to give the client (the master refused `AUTH pass`, or could not be asked).
    Reply(Bytes),
}

/// `AUTH pass` (no user name) is not `AUTH default pass` on Redis: when the `default` user
/// needs no password, Redis refuses it (`-ERR AUTH <password> called without any password
/// configured for the default user...`) where `AUTH default pass` succeeds. The handshake
/// logged in as `default`, so the master is asked again in the client's own form, on the
/// same connection; its refusal is the client's answer (`None`: accepted, or another form).
async fn legacy_auth_refusal(
    req: &Request,
    conn: &mut DirectConn,
    timeout: std::time::Duration,
) -> Option<Bytes> {
    if !(req.arg(0).eq_ignore_ascii_case(b"auth") && req.len() == 2) {
        return None;
    }
    let mut raw = bytes::BytesMut::new();
    crate::resp::encode::command(&mut raw, &[b"AUTH", req.arg(1)]);
    match tokio::time::timeout(timeout, conn.request(&raw)).await {
        Ok(Ok(reply)) if reply.is_error() => Some(reply.raw),
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(ClientError::from(e).to_bytes()),
        Err(_) => Some(error_bytes(&format!(
            "ERR sluice: node {} did not answer AUTH within {} ms",
            conn.addr(),
            timeout.as_millis()
        ))),
    }
}

/// The name of CLIENT KILL's `USER` filter (new-style arguments: `CLIENT KILL f v ...`).
fn kill_user(req: &Request) -> Option<&[u8]> {
    if !req.arg(1).eq_ignore_ascii_case(b"kill") || req.len() < 4 {
        return None;
    }
    (2..req.len() - 1)
        .step_by(2)
        .find(|&i| req.arg(i).eq_ignore_ascii_case(b"user"))
        .map(|i| req.arg(i + 1))
}

/// The user and password of `AUTH [user] pass` or `HELLO ... AUTH user pass`.
pub(super) fn credentials(req: &Request) -> Option<(&[u8], &[u8])> {
    if req.arg(0).eq_ignore_ascii_case(b"auth") {
        return match req.len() {
            2 => Some((b"default", req.arg(1))),
            3 => Some((req.arg(1), req.arg(2))),
            _ => None,
        };
    }
    let at =
        (2..req.len().saturating_sub(2)).find(|&i| req.arg(i).eq_ignore_ascii_case(b"auth"))?;
    Some((req.arg(at + 1), req.arg(at + 2)))
}
