//! Draining on SIGTERM: stop accepting, turn `/ready` to 503, let connected clients finish
//! up to `drain_timeout`, then return so the process exits 0. A second SIGTERM returns at once.
//!
//! Sessions have no shutdown hook of their own, so "in-flight requests finished" is judged
//! by the clients: the drain ends as soon as every client has disconnected (a client that
//! has its replies and closes, as pooled clients do when their server goes unready), and at
//! the latest after `drain_timeout`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;

use super::reload::Proxy;
use super::{Control, Live};

/// How often the drain checks whether every client has left.
const POLL: Duration = Duration::from_millis(50);

/// Drains the proxy; returns when it may exit.
pub(super) async fn drain(proxy: &Proxy, live: &Live, rx: &mut mpsc::Receiver<Control>) {
    live.draining.store(true, Ordering::Relaxed);
    proxy.stop_accepting();
    let timeout = live.config.load().drain_timeout;
    tracing::info!(
        clients = proxy.connected(),
        ?timeout,
        "draining: no new clients; exiting when every client has left or after drain_timeout"
    );
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut tick = tokio::time::interval(POLL);
    loop {
        tokio::select! {
            _ = &mut deadline => {
                tracing::warn!(
                    clients = proxy.connected(),
                    "drain_timeout reached; exiting with clients still connected"
                );
                return;
            }
            msg = rx.recv() => match msg {
                Some(Control::Terminate) | None => {
                    tracing::warn!(clients = proxy.connected(), "second SIGTERM: exiting now");
                    return;
                }
                Some(Control::Reload(reply)) => {
                    tracing::warn!("reload ignored: the proxy is draining");
                    if let Some(reply) = reply {
                        let _ = reply.send(Err("the proxy is draining".into()));
                    }
                }
            },
            _ = tick.tick() => {
                if proxy.connected() == 0 {
                    tracing::info!("drained: every client has left");
                    return;
                }
            }
        }
    }
}
