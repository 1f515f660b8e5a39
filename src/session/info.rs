//! `INFO` through the proxy: `INFO`, `INFO all` and `INFO everything` answer the master's
//! sections followed by the proxy's own (`# Proxy`, `# Proxy_pools`, `# Proxy_topology`, named
//! so they cannot be mistaken for Redis's); `INFO proxy` answers only those; any other section
//! list is the master's sections alone, so clients that parse `INFO clients` are not misled.
//! Every one of them counts the pool's clients, not the node's (`connected_clients`,
//! `blocked_clients`, `tracking_*`), as CLIENT LIST lists the pool's clients.

use bytes::{Bytes, BytesMut};

use crate::command::{CommandInfo, Special};
use crate::pool::Pool;
use crate::resp::{encode, Protocol, Request};

/// What the proxy adds to an `INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Extra {
    /// The master's reply followed by the proxy's sections.
    Append,
    /// Only the proxy's sections, answered here.
    Only,
    /// The master's sections only, with the pool's figures for its clients (see
    /// [`with_pool_clients`]).
    Amend,
}

/// Whether `req` is an `INFO` that involves the proxy's sections.
pub(super) fn extra(req: &Request, info: Option<&CommandInfo>) -> Option<Extra> {
    if Special::of(info) != Special::Info {
        return None;
    }
    let args = || req.args().skip(1);
    let proxy = args().any(|a| a.eq_ignore_ascii_case(b"proxy"));
    let others = args().filter(|a| !a.eq_ignore_ascii_case(b"proxy")).count();
    let all =
        args().any(|a| a.eq_ignore_ascii_case(b"all") || a.eq_ignore_ascii_case(b"everything"));
    match (proxy, others) {
        (true, 0) => Some(Extra::Only),
        (false, 0) => Some(Extra::Append),
        _ if proxy || all => Some(Extra::Append),
        _ => Some(Extra::Amend),
    }
}

/// The proxy's sections, as INFO text (each line ends in CRLF).
pub(super) fn sections(pool: &Pool) -> String {
    let topo = pool.topology.load();
    let connected = pool.cfg.max_clients - pool.clients.available_permits();
    let mut s = String::new();
    s.push_str("# Proxy\r\n");
    s.push_str(&format!(
        "proxy_name:sluice\r\nproxy_version:{}\r\n",
        env!("CARGO_PKG_VERSION")
    ));
    s.push_str("\r\n# Proxy_pools\r\n");
    s.push_str(&format!(
        "pool:{}\r\nmode:{}\r\nread_from:{}\r\nconsistency:{}\r\nlisten:{}\r\n",
        pool.cfg.name,
        pool.cfg.mode(),
        pool.cfg.read_from,
        pool.cfg.consistency,
        pool.cfg.listen
    ));
    s.push_str(&format!(
        "pool_clients:{connected}\r\npool_max_clients:{}\r\n",
        pool.cfg.max_clients
    ));
    s.push_str("\r\n# Proxy_topology\r\n");
    s.push_str(&format!("topology_version:{}\r\n", topo.version));
    s.push_str(&format!("source_stale:{}\r\n", u8::from(topo.source_stale)));
    match &topo.master {
        Some(m) => s.push_str(&format!(
            "master:addr={},connected={}\r\n",
            m.node.addr,
            u8::from(m.node.is_connected())
        )),
        None => s.push_str("master:none\r\n"),
    }
    s.push_str(&format!(
        "replicas_known:{}\r\nreplicas_readable:{}\r\n",
        topo.replicas.len(),
        topo.readable.len()
    ));
    for (i, r) in topo.replicas.iter().enumerate() {
        let readable = topo
            .readable
            .iter()
            .any(|n| std::sync::Arc::ptr_eq(n, &r.node));
        s.push_str(&format!(
            "replica{i}:addr={},readable={}\r\n",
            r.node.addr,
            u8::from(readable)
        ));
    }
    s
}

/// A node's INFO text with the pool's own figures for its clients: `connected_clients` is
/// the pool's client count (what CLIENT LIST shows; the node's figure counts the proxy's
/// connections), and `blocked_clients` gets the pool's clients waiting for a CLIENT PAUSE
/// (`paused`), which the proxy holds and Redis counts as blocked.
pub(super) fn with_pool_clients(text: Vec<u8>, connected: usize, paused: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 4);
    for line in text.split_inclusive(|&b| b == b'\n') {
        let field = |name: &[u8]| {
            line.strip_prefix(name)
                .and_then(|v| std::str::from_utf8(v).ok())
                .and_then(|v| v.trim_end().parse::<usize>().ok())
        };
        if field(b"connected_clients:").is_some() {
            out.extend_from_slice(format!("connected_clients:{connected}\r\n").as_bytes());
        } else if let Some(n) = field(b"blocked_clients:") {
            out.extend_from_slice(format!("blocked_clients:{}\r\n", n + paused).as_bytes());
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

/// Encodes INFO text as Redis does: a verbatim string in RESP3, a bulk string in RESP2.
pub(super) fn encode_text(text: &[u8], proto: Protocol, out: &mut BytesMut) {
    match proto {
        Protocol::Resp3 => {
            out.extend_from_slice(format!("={}\r\ntxt:", text.len() + 4).as_bytes());
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
        }
        Protocol::Resp2 => encode::bulk(out, text),
    }
}

/// The text of a node's INFO reply (`=N\r\ntxt:...\r\n` or `$N\r\n...\r\n`); `None` for
/// anything else (an error, say), which then goes to the client unchanged.
pub(super) fn reply_text(raw: &Bytes) -> Option<&[u8]> {
    let kind = *raw.first()?;
    if kind != b'=' && kind != b'$' {
        return None;
    }
    let head = raw.iter().position(|&b| b == b'\n')?;
    let len: usize = std::str::from_utf8(raw.get(1..head.checked_sub(1)?)?)
        .ok()?
        .parse()
        .ok()?;
    let body = raw.get(head + 1..head + 1 + len)?;
    if kind == b'=' {
        body.get(4..)
    } else {
        Some(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(args: &[&str]) -> Request {
        let mut raw = BytesMut::new();
        raw.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            raw.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        let mut buf = raw;
        crate::resp::decode_request(&mut buf, &crate::resp::Limits::default())
            .expect("valid")
            .expect("complete")
    }

    fn check(args: &[&str]) -> Option<Extra> {
        let req = req(args);
        extra(&req, crate::command::lookup(&req))
    }

    #[test]
    fn which_info_gets_the_proxy_sections() {
        assert_eq!(check(&["INFO"]), Some(Extra::Append));
        assert_eq!(check(&["info", "ALL"]), Some(Extra::Append));
        assert_eq!(check(&["INFO", "everything"]), Some(Extra::Append));
        assert_eq!(check(&["INFO", "proxy"]), Some(Extra::Only));
        assert_eq!(check(&["INFO", "clients", "proxy"]), Some(Extra::Append));
        assert_eq!(check(&["INFO", "clients"]), Some(Extra::Amend));
        assert_eq!(check(&["INFO", "default"]), Some(Extra::Amend));
        assert_eq!(check(&["GET", "k"]), None);
    }

    #[test]
    fn pool_clients_replace_the_node_figures() {
        let text =
            b"# Clients\r\nconnected_clients:3\r\nblocked_clients:1\r\ntracking_clients:0\r\n";
        let out = with_pool_clients(text.to_vec(), 5, 2);
        assert_eq!(
            out,
            b"# Clients\r\nconnected_clients:5\r\nblocked_clients:3\r\ntracking_clients:0\r\n"
        );
        assert_eq!(with_pool_clients(text.to_vec(), 3, 0), text.to_vec());
    }

    #[test]
    fn reply_text_reads_both_string_kinds() {
        let v = Bytes::from_static(b"=9\r\ntxt:a:1\r\n\r\n");
        assert_eq!(reply_text(&v), Some(&b"a:1\r\n"[..]));
        let b = Bytes::from_static(b"$5\r\na:1\r\n\r\n");
        assert_eq!(reply_text(&b), Some(&b"a:1\r\n"[..]));
        assert_eq!(reply_text(&Bytes::from_static(b"-ERR x\r\n")), None);
        assert_eq!(reply_text(&Bytes::from_static(b"$99\r\nshort\r\n")), None);
    }
}
