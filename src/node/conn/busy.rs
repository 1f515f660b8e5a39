//! Scripts off the event loop, and BUSY for everyone else meanwhile.
//!
//! A script can run for seconds (`while true do end` until SCRIPT KILL). Running it inside
//! the batch would stall the event loop, and with it every other client, so a connection
//! whose next request is EVAL/EVALSHA/FCALL (outside MULTI) runs that one request on a
//! blocking thread, which takes the store lock itself. Before handing it over it marks the
//! script as claimed in [`Busy`], so other connections never block the event loop on the
//! lock: they wait, and once the script has run past `busy-reply-threshold` they answer
//! `-BUSY` to everything except SCRIPT KILL / FUNCTION KILL (which stop it) and
//! SHUTDOWN (which stops the node), as Redis does.

use std::time::Duration;

use super::Conn;
use crate::node::cmd::{self, Command, Ctx};
use crate::node::reply::Reply;
use crate::node::script::busy::Claim;
use crate::resp::Request;

/// How often a waiting connection looks at the running script again (besides being woken
/// when it ends): to notice it has run past `busy-reply-threshold`.
const POLL: Duration = Duration::from_millis(5);

/// True for (un)subscribe requests, whose confirmations CLIENT REPLY OFF/SKIP do not
/// silence (Redis sends them as pushes).
pub(super) fn is_subscription(req: &Request) -> bool {
    !req.is_empty()
        && [
            "subscribe",
            "psubscribe",
            "ssubscribe",
            "unsubscribe",
            "punsubscribe",
            "sunsubscribe",
        ]
        .iter()
        .any(|n| req.arg(0).eq_ignore_ascii_case(n.as_bytes()))
}

/// What came of running a script request inline.
pub(super) enum Inline {
    /// It ran: its reply.
    Ran(Reply),
    /// It ran, but wrote and then ran long, so its thread left the event loop to finish it;
    /// the claim keeps other connections off the store until this one has released it:
    /// the batch ends here (see [`Conn::rejoin_event_loop`]).
    LeftLoop(Reply, Claim),
    /// It is to run off the event loop with [`Conn::run_script`] (it was not fast last
    /// time, or it ran long before it wrote anything and was stopped).
    OffLoop,
}

/// Runs a script request in the batch, on the event loop, if its script was fast last time.
/// Redis runs every script on its event loop; handing each to a blocking thread and back
/// cost about half of EVALSHA's throughput (`benches/scripts.sh`). A script that runs long
/// inline before it has changed anything is stopped at its first time-limit hook and runs
/// again off the loop, so BUSY replies and SCRIPT KILL keep working for it; one that
/// already wrote finishes on this thread while the event loop moves to another
/// (`script/handoff.rs`), where other clients get BUSY, SCRIPT KILL answers UNKILLABLE and
/// SHUTDOWN NOSAVE stops the node, as in Redis.
pub(super) fn run_inline(
    ctx: &mut Ctx<'_>,
    req: &Request,
    idx: usize,
    command: &'static Command,
) -> Inline {
    let args = crate::node::args::Args::new(req);
    if !crate::node::cmd::scripting::fast_script(&mut ctx.store.scripting, &args) {
        return Inline::OffLoop;
    }
    ctx.store.scripting.inline = true;
    let reply = cmd::execute_found(ctx, req, idx, command);
    ctx.store.scripting.inline = false;
    // Unused if the EVAL was refused before it ran (arity, OOM, ...).
    ctx.store.scripting.inline_sha = None;
    if std::mem::take(&mut ctx.store.scripting.inline_aborted) {
        return Inline::OffLoop;
    }
    if let Some(claim) = ctx.take_script_claim() {
        return Inline::LeftLoop(reply, claim);
    }
    Inline::Ran(reply)
}

impl Conn {
    /// Runs the script request at the head of the queue on a blocking thread.
    pub(super) async fn run_script(&mut self) -> std::io::Result<()> {
        self.script_next = false;
        let Some(req) = self.queue.pop_front() else {
            return Ok(());
        };
        let shared = self.shared.clone();
        let busy = shared.busy.clone();
        let mut client = std::mem::take(&mut self.client);
        let claim = busy.claim();
        let task = tokio::task::spawn_blocking(move || {
            // Released after the store (dropped in reverse order), even if the script panics.
            let _claim = claim;
            let reply = {
                let mut store = shared.lock();
                store.tick();
                let mut ctx = Ctx::new(&mut store, &mut client, &shared, false);
                let reply = cmd::execute(&mut ctx, &req);
                let now_ms = store.now_ms;
                store.clients.sync(&client, now_ms);
                (reply, crate::node::aof_file::seq(&store))
            };
            (client, reply)
        });
        match task.await {
            Ok((client, (reply, aof_seq))) => {
                self.client = client;
                if let Some(seq) = aof_seq {
                    // The script's writes reach the AOF before its reply (see `run`).
                    crate::node::aof::before_reply(&self.shared, seq);
                }
                self.encode(reply);
            }
            Err(_) => {
                // The script thread panicked (its claim went with it): the session is gone
                // with it.
                self.client.close = true;
            }
        }
        Ok(())
    }

    /// After a batch whose inline script left the event loop (the store is released by
    /// now): lets the other connections go on, and yields, so that this thread, which no
    /// longer runs the event loop, goes back to tokio's blocking pool and this connection
    /// goes on on the event loop's thread.
    pub(super) async fn rejoin_event_loop(&mut self) {
        if let Some(claim) = self.left_loop.take() {
            drop(claim);
            tokio::task::yield_now().await;
        }
    }

    /// Waits while another connection's script holds the store, answering BUSY (or
    /// handling SCRIPT KILL / FUNCTION KILL / SHUTDOWN) once it has run too long.
    pub(super) async fn wait_busy(&mut self) -> std::io::Result<()> {
        let busy = self.shared.busy.clone();
        loop {
            // Registered before the check, so a script ending in between still wakes us.
            let done = busy.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if !busy.running() {
                break;
            }
            if let Some(eval) = busy.timed_out() {
                while let Some(req) = self.queue.pop_front() {
                    let reply = self.busy_reply(&req, eval);
                    self.encode(reply);
                    if self.client.close {
                        break;
                    }
                }
                if !self.out.is_empty() {
                    self.stream.write_all(&self.out).await?;
                    self.out.clear();
                }
                if self.client.close {
                    return Ok(());
                }
            }
            tokio::select! {
                r = self.stream.readable(), if !self.eof && busy.timed_out().is_some() => {
                    r?;
                    self.read_available();
                    self.decode();
                    if self.eof && self.queue.is_empty() {
                        return Ok(());
                    }
                }
                _ = done => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
        Ok(())
    }

    /// The answer to `req` while a script is busy (`eval`: the script is an EVAL).
    fn busy_reply(&mut self, req: &Request, eval: bool) -> Reply {
        use crate::node::cmd::scripting::{busy_error, kill_reply};
        let name = String::from_utf8_lossy(req.arg(0)).to_ascii_lowercase();
        let sub = if req.len() > 1 {
            String::from_utf8_lossy(req.arg(1)).to_ascii_lowercase()
        } else {
            String::new()
        };
        let busy = &self.shared.busy;
        match (name.as_str(), sub.as_str()) {
            ("script", "kill") if req.len() == 2 => kill_reply(busy.kill(true), true),
            ("function", "kill") if req.len() == 2 => kill_reply(busy.kill(false), false),
            ("function", "stats") if req.len() == 2 && !eval => match busy.function() {
                Some(run) => {
                    let (l, f) = (run.0.libraries, run.0.functions);
                    crate::node::cmd::function::stats_reply(Some(run), l, f)
                }
                None => busy_error(eval),
            },
            ("shutdown", _) => {
                // Cancelled first: the script, once stopped, sees the node is shutting down
                // (and propagates none of its writes).
                self.shared.shutdown.cancel();
                busy.force_kill();
                self.client.close = true;
                Reply::Raw(bytes::Bytes::new())
            }
            ("quit", _) => {
                self.client.close = true;
                Reply::Ok
            }
            // Transactions may start and end meanwhile (Redis lets MULTI and DISCARD through,
            // so a pipelined transaction is never half refused); what is refused inside one
            // makes its EXEC abort.
            ("multi", _) if self.client.multi.is_none() => {
                self.client.multi = Some(Vec::new());
                self.client.multi_error = false;
                Reply::Ok
            }
            ("discard", _) if self.client.multi.is_some() => {
                self.client.multi = None;
                self.client.multi_error = false;
                Reply::Ok
            }
            ("exec", _) if self.client.multi.is_some() => {
                self.client.multi = None;
                self.client.multi_error = false;
                match busy_error(eval) {
                    Reply::Error(e) => {
                        Reply::error(format!("EXECABORT Transaction discarded because of: {e}"))
                    }
                    other => other,
                }
            }
            _ => {
                if self.client.multi.is_some() {
                    self.client.multi_error = true;
                }
                busy_error(eval)
            }
        }
    }

    /// Encodes a reply as CLIENT REPLY allows.
    pub(super) fn encode(&mut self, reply: Reply) {
        use crate::node::client::ReplyMode;
        match self.client.reply_mode {
            ReplyMode::On => reply.encode(self.client.proto, &mut self.out),
            ReplyMode::Off => {}
            ReplyMode::SkipNext => self.client.reply_mode = ReplyMode::Skipping,
            ReplyMode::Skipping => self.client.reply_mode = ReplyMode::On,
        }
    }
}
