//! `CLIENT TRACKING`, `CLIENT CACHING`, `CLIENT GETREDIR` and `CLIENT TRACKINGINFO`, with
//! Redis 7.0's options, checks and error texts.

use bytes::{Bytes, BytesMut};

use super::source;
use super::table::Options;
use super::Local;
use crate::resp::{encode, Request};
use crate::session::{error_bytes, Session};

const OK: &[u8] = b"+OK\r\n";

/// Parsed `CLIENT TRACKING` arguments.
struct Parsed {
    on: bool,
    opts: Options,
}

/// Parses `CLIENT TRACKING on|off [REDIRECT id] [BCAST] [PREFIX p]... [OPTIN] [OPTOUT]
/// [NOLOOP]`; `Err` is the reply.
fn parse(req: &Request) -> Result<Parsed, Bytes> {
    let mut opts = Options::default();
    let mut i = 3;
    while i < req.len() {
        let a = req.arg(i);
        let more = i + 1 < req.len();
        let is = |n: &str| a.eq_ignore_ascii_case(n.as_bytes());
        if is("redirect") && more {
            i += 1;
            if opts.redirect != 0 {
                return Err(error_bytes(
                    "ERR A client can only redirect to a single other client",
                ));
            }
            opts.redirect = match crate::session::local::parse_int(req.arg(i)) {
                Some(n) => n as u64,
                None => return Err(error_bytes("ERR value is not an integer or out of range")),
            };
        } else if is("bcast") {
            opts.bcast = true;
        } else if is("optin") {
            opts.optin = true;
        } else if is("optout") {
            opts.optout = true;
        } else if is("noloop") {
            opts.noloop = true;
        } else if is("prefix") && more {
            i += 1;
            opts.prefixes.push(req.arg_bytes(i));
        } else {
            return Err(error_bytes("ERR syntax error"));
        }
        i += 1;
    }
    let mode = req.arg(2);
    let on = if mode.eq_ignore_ascii_case(b"on") {
        true
    } else if mode.eq_ignore_ascii_case(b"off") {
        false
    } else {
        return Err(error_bytes("ERR syntax error"));
    };
    Ok(Parsed { on, opts })
}

/// Redis's checks of `on` options against each other and the client's current ones.
fn check(new: &Options, old: Option<&Options>) -> Result<(), String> {
    if !new.bcast && !new.prefixes.is_empty() {
        return Err("ERR PREFIX option requires BCAST mode to be enabled".into());
    }
    if old.is_some_and(|o| o.bcast != new.bcast) {
        return Err(
            "ERR You can't switch BCAST mode on/off before disabling tracking for this \
                    client, and then re-enabling it with a different mode."
                .into(),
        );
    }
    if new.bcast && (new.optin || new.optout) {
        return Err("ERR OPTIN and OPTOUT are not compatible with BCAST".into());
    }
    if new.optin && new.optout {
        return Err("ERR You can't specify both OPTIN mode and OPTOUT mode".into());
    }
    if old.is_some_and(|o| (new.optin && o.optout) || (new.optout && o.optin)) {
        return Err(
            "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for \
                    this client, and then re-enabling it with a different mode."
                .into(),
        );
    }
    if new.bcast {
        let overlap = |a: &[u8], b: &[u8]| {
            let n = a.len().min(b.len());
            a[..n] == b[..n]
        };
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        for (i, p) in new.prefixes.iter().enumerate() {
            let existing = old.map_or(&[][..], |o| &o.prefixes[..]);
            if let Some(e) = existing.iter().find(|e| overlap(e, p)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a \
                     single client must not overlap.",
                    text(p),
                    text(e)
                ));
            }
            if let Some(q) = new.prefixes[i + 1..].iter().find(|q| overlap(p, q)) {
                return Err(format!(
                    "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for \
                     a single client must not overlap.",
                    text(p),
                    text(q)
                ));
            }
        }
    }
    Ok(())
}

/// Uncounts an enabling client when dropped.
struct Enabling<'a>(&'a super::Hub);

impl Drop for Enabling<'_> {
    fn drop(&mut self) {
        self.0.sources().enabling -= 1;
    }
}

impl Session {
    /// `CLIENT TRACKING ...`. Turning it on waits until every node the client may read from
    /// reports its changes (see `source`), so no change is missed after the `+OK`.
    pub(in crate::session) async fn client_tracking(&mut self, req: &Request) -> Bytes {
        if req.len() < 3 {
            return error_bytes("ERR wrong number of arguments for 'client|tracking' command");
        }
        let Parsed { on, mut opts } = match parse(req) {
            Ok(p) => p,
            Err(e) => return e,
        };
        if !on {
            self.tracking_off();
            return Bytes::from_static(OK);
        }
        if opts.redirect != 0 && self.pool.registry.get(opts.redirect).is_none() {
            return error_bytes("ERR The client ID you want redirect to does not exist");
        }
        let hub = &self.pool.registry.tracking;
        let old = self
            .tracking
            .is_on()
            .then(|| hub.table().options(self.id).cloned());
        if let Err(e) = check(&opts, old.flatten().as_ref()) {
            return error_bytes(&e);
        }
        if opts.bcast && opts.prefixes.is_empty() {
            // BCAST without PREFIX watches the empty prefix (every key), as on Redis.
            opts.prefixes.push(Bytes::new());
        }
        // Passthrough: only keys the client's Redis user may read (see `readable`).
        opts.readable = match self.readable_keys().await {
            Ok(r) => r,
            Err(refusal) => return refusal,
        };
        // Counted as enabling until it is in the table (or gave up, or its client left
        // meanwhile), so the sources do not stop under it.
        let hub = &self.pool.registry.tracking;
        hub.sources().enabling += 1;
        let _enabling = Enabling(hub);
        if let Err(missing) = self.wait_for_sources().await {
            return error_bytes(&match missing.refused {
                Some(why) => format!(
                    "ERR sluice: tracking cannot start: node {} refused CLIENT TRACKING on \
                     BCAST: {why}",
                    missing.addr
                ),
                None => format!(
                    "ERR sluice: tracking cannot start: node {} does not report its changes \
                     (no connection)",
                    missing.addr
                ),
            });
        }
        let local = Local::new(&opts);
        let _ = self.entry.inbox();
        if opts.redirect != 0 {
            if let Some(target) = self.pool.registry.get(opts.redirect) {
                // The target now has an inbox: an idle target watches it from its next
                // wake-up on (and is no longer parked).
                let _ = target.inbox();
                target.park.nudge();
            }
        }
        hub.table().enable(self.id, opts);
        hub.watching
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.tracking = local;
        Bytes::from_static(OK)
    }

    /// Starts the pool's node sources if needed and waits until the ones this client may
    /// read from are up (at most the pool's connect timeout); `Err` names a missing node.
    async fn wait_for_sources(&self) -> Result<(), source::Missing> {
        let hub = &self.pool.registry.tracking;
        source::ensure_running(&self.pool);
        let deadline = tokio::time::Instant::now()
            + self
                .pool
                .cfg
                .connect_timeout
                .max(std::time::Duration::from_secs(1));
        loop {
            let up = hub.up.notified();
            tokio::pin!(up);
            up.as_mut().enable();
            let Some(missing) = source::first_missing(&self.pool) else {
                return Ok(());
            };
            if missing.refused.is_some() {
                return Err(missing);
            }
            let mut topo = self.pool.topology.subscribe();
            tokio::select! {
                _ = up => {}
                _ = topo.changed() => {}
                _ = tokio::time::sleep_until(deadline) => return Err(missing),
            }
        }
    }

    /// `CLIENT CACHING yes|no`.
    pub(in crate::session) fn client_caching(&mut self, req: &Request) -> Bytes {
        if req.len() != 3 {
            return error_bytes("ERR wrong number of arguments for 'client|caching' command");
        }
        let t = self.tracking;
        if !(t.optin() || t.optout()) {
            return error_bytes(
                "ERR CLIENT CACHING can be called only when the client is in tracking mode \
                 with OPTIN or OPTOUT mode enabled",
            );
        }
        let opt = req.arg(2);
        if opt.eq_ignore_ascii_case(b"yes") {
            if !t.optin() {
                return error_bytes(
                    "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
                );
            }
        } else if opt.eq_ignore_ascii_case(b"no") {
            if !t.optout() {
                return error_bytes(
                    "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
                );
            }
        } else {
            return error_bytes("ERR syntax error");
        }
        self.tracking.set_caching(true);
        Bytes::from_static(OK)
    }

    /// `CLIENT GETREDIR`: the redirect id, 0 without one, -1 when not tracking.
    pub(in crate::session) fn client_getredir(&self) -> Bytes {
        let mut out = BytesMut::new();
        encode::integer(&mut out, self.redirect_id());
        out.freeze()
    }

    fn redirect_id(&self) -> i64 {
        if !self.tracking.is_on() {
            return -1;
        }
        let table = self.pool.registry.tracking.table();
        table.options(self.id).map_or(-1, |o| o.redirect as i64)
    }

    /// `CLIENT TRACKINGINFO`: flags, redirect, prefixes.
    pub(in crate::session) fn client_trackinginfo(&self) -> Bytes {
        let (opts, broken) = {
            let table = self.pool.registry.tracking.table();
            let opts = self
                .tracking
                .is_on()
                .then(|| table.options(self.id).cloned())
                .flatten();
            (opts, table.is_broken(self.id))
        };
        let caching = self.tracking.caching();
        let mut flags: Vec<&str> = vec![if opts.is_some() { "on" } else { "off" }];
        if let Some(o) = &opts {
            let pairs = [
                (o.bcast, "bcast"),
                (o.optin, "optin"),
                (o.optin && caching, "caching-yes"),
                (o.optout, "optout"),
                (o.optout && caching, "caching-no"),
                (o.noloop, "noloop"),
                (broken, "broken_redirect"),
            ];
            flags.extend(pairs.iter().filter(|(on, _)| *on).map(|(_, f)| *f));
        }
        let mut out = BytesMut::new();
        encode::map_len(&mut out, self.proto, 3);
        encode::bulk(&mut out, b"flags");
        // A set in RESP3 (as Redis replies it), an array in RESP2.
        match self.proto {
            crate::resp::Protocol::Resp3 => {
                out.extend_from_slice(format!("~{}\r\n", flags.len()).as_bytes())
            }
            crate::resp::Protocol::Resp2 => encode::array_len(&mut out, flags.len()),
        }
        for f in flags {
            encode::bulk(&mut out, f.as_bytes());
        }
        encode::bulk(&mut out, b"redirect");
        encode::integer(&mut out, self.redirect_id());
        encode::bulk(&mut out, b"prefixes");
        // In Redis's order (its prefix tree's: sorted).
        let mut prefixes = opts.map(|o| o.prefixes).unwrap_or_default();
        prefixes.sort();
        encode::array_len(&mut out, prefixes.len());
        for p in prefixes {
            encode::bulk(&mut out, &p);
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(bcast: bool, prefixes: &[&str]) -> Options {
        Options {
            bcast,
            prefixes: prefixes
                .iter()
                .map(|p| Bytes::copy_from_slice(p.as_bytes()))
                .collect(),
            ..Options::default()
        }
    }

    #[test]
    fn prefix_collisions_are_refused_as_redis_words_them() {
        let e = check(&opts(true, &["FOOBAR", "FOO"]), None).unwrap_err();
        assert!(e.starts_with("ERR Prefix 'FOOBAR' overlaps with another provided prefix 'FOO'"));
        let old = opts(true, &["FOO", "BAR"]);
        let e = check(&opts(true, &["FO"]), Some(&old)).unwrap_err();
        assert!(e.starts_with("ERR Prefix 'FO' overlaps with an existing prefix 'FOO'"));
        assert!(check(&opts(true, &["BAZ"]), Some(&old)).is_ok());
        assert!(check(&opts(false, &["a"]), None)
            .unwrap_err()
            .contains("requires BCAST"));
        assert!(check(&opts(false, &[]), Some(&old))
            .unwrap_err()
            .contains("switch BCAST"));
    }
}
