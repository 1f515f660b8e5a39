//! `INFO` through the proxy: the master's sections followed by the proxy's (`# Proxy`,
//! `# Proxy_pools`, `# Proxy_topology`) for `INFO`, `INFO all` and `INFO everything`; only
//! the proxy's for `INFO proxy`; exactly Redis's for any other section.

mod common;

use common::{standalone_config, Redis, Resp, Sluice};

/// Section headers in order.
fn headers(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim().to_string())
        .collect()
}

/// Field names of an INFO text, in order (values change between two calls).
fn fields(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_once(':').map(|(k, _)| k.to_string()))
        .collect()
}

const PROXY: [&str; 3] = ["# Proxy", "# Proxy_pools", "# Proxy_topology"];

#[test]
fn info_appends_the_proxy_sections_and_leaves_redis_sections_alone() {
    let master = Redis::start();
    let proxy = Sluice::start(&standalone_config(&master, &[], "master", ""));
    let mut direct = master.client();
    let mut c = proxy.client();
    for args in [&["INFO"][..], &["INFO", "all"], &["info", "EVERYTHING"]] {
        let via = c.cmd(args).text();
        let own = direct.cmd(args).text();
        let mut want = headers(&own);
        want.extend(PROXY.iter().map(|s| s.to_string()));
        assert_eq!(headers(&via), want, "{args:?}");
        assert!(via.starts_with("# Server\r\n"), "{args:?}: {via}");
        assert!(
            via.contains("\r\npool:main\r\nmode:standalone\r\n"),
            "{via}"
        );
        assert!(
            via.contains(&format!("master:addr={},connected=1", master.addr())),
            "{via}"
        );
    }
    let only = c.cmd(&["INFO", "proxy"]).text();
    assert_eq!(headers(&only), PROXY.to_vec());
    assert!(only.contains("read_from:master\r\n"), "{only}");
    for section in ["clients", "server", "replication", "keyspace", "default"] {
        let via = c.cmd(&["INFO", section]).text();
        let own = direct.cmd(&["INFO", section]).text();
        assert_eq!(headers(&via), headers(&own), "INFO {section}");
        assert_eq!(fields(&via), fields(&own), "INFO {section}");
    }
    // RESP3: a verbatim string, as Redis answers.
    let mut c3 = proxy.client();
    assert!(matches!(c3.cmd(&["HELLO", "3"]), Resp::Map(_)));
    match c3.cmd(&["INFO"]) {
        Resp::Verbatim(text) => assert!(text.contains("# Proxy_topology\r\n"), "{text}"),
        other => panic!("INFO in RESP3: {other:?}"),
    }
    match c3.cmd(&["INFO", "proxy"]) {
        Resp::Verbatim(text) => assert!(text.contains("# Proxy\r\n"), "{text}"),
        other => panic!("INFO proxy in RESP3: {other:?}"),
    }
}
