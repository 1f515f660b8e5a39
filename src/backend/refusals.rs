//! Nodes that refuse the proxy's handshake (NOAUTH / WRONGPASS, e.g. after someone ran
//! `CONFIG SET requirepass` on the node): counted (`sluice_backend_handshake_refusals_total`
//! by node), logged at most once per [`LOG_EVERY`] per node, and listed in `/topology` until
//! a handshake with that node succeeds again. The client's error already names the node and
//! the node's own words (see [`super::BackendError::Handshake`]).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::telemetry::HANDSHAKE_REFUSALS;

/// At most one log line per node this often while it keeps refusing.
const LOG_EVERY: Duration = Duration::from_secs(10);

struct Refusal {
    reason: String,
    logged: Instant,
    suppressed: u64,
}

fn table() -> MutexGuard<'static, HashMap<String, Refusal>> {
    static TABLE: OnceLock<Mutex<HashMap<String, Refusal>>> = OnceLock::new();
    TABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Records that `addr` refused a handshake with `reason` (the node's error text).
pub(crate) fn refused(addr: &str, reason: &str) {
    metrics::counter!(HANDSHAKE_REFUSALS, "node" => addr.to_string()).increment(1);
    let mut table = table();
    let now = Instant::now();
    match table.get_mut(addr) {
        Some(r) if now.duration_since(r.logged) < LOG_EVERY => {
            r.suppressed += 1;
            r.reason = reason.to_string();
        }
        Some(r) => {
            tracing::error!(
                node = addr,
                reason,
                repeated = r.suppressed,
                "node refuses the proxy's handshake (was its password changed?)"
            );
            r.logged = now;
            r.suppressed = 0;
            r.reason = reason.to_string();
        }
        None => {
            tracing::error!(
                node = addr,
                reason,
                "node refuses the proxy's handshake (was its password changed?)"
            );
            table.insert(
                addr.to_string(),
                Refusal {
                    reason: reason.to_string(),
                    logged: now,
                    suppressed: 0,
                },
            );
        }
    }
}

/// Records a successful handshake with `addr` (clears its refusal).
pub(crate) fn accepted(addr: &str) {
    let mut table = table();
    if !table.is_empty() && table.remove(addr).is_some() {
        tracing::info!(node = addr, "node accepts the proxy's handshake again");
    }
}

/// Nodes refusing the handshake now, with the node's last reason.
pub(crate) fn current() -> Vec<(String, String)> {
    let mut all: Vec<_> = table()
        .iter()
        .map(|(a, r)| (a.clone(), r.reason.clone()))
        .collect();
    all.sort();
    all
}
