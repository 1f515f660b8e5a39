//! The operator kit in `deploy/`: every metric the Prometheus rules and the Grafana dashboard
//! name must be exported by a running proxy, or an alert or a panel silently shows nothing.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{standalone_config, Redis, Resp, Sluice};

/// Every `sluice_...` name in `text` (a metric name is letters, digits and `_`).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("sluice_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// The series names in a Prometheus text exposition, plus each histogram's family name (its
/// series are `NAME_bucket`, `NAME_sum`, `NAME_count`; rules and panels may name the family).
fn exported(body: &str) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    let families: Vec<String> = names
        .iter()
        .filter_map(|n| n.strip_suffix("_bucket"))
        .map(str::to_string)
        .collect();
    names.extend(families);
    names
}

#[test]
fn every_metric_in_rules_and_dashboard_is_exported() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut wanted = BTreeSet::new();
    for file in [
        "deploy/prometheus/sluice-rules.yml",
        "deploy/grafana/sluice.json",
    ] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).expect(file);
        let names = metric_names(&text);
        assert!(!names.is_empty(), "{file} names no sluice metric");
        wanted.extend(names);
    }

    let master = Redis::start();
    let replica = Redis::replica_of(&master);
    replica.wait_synced();
    let proxy = Sluice::start(&standalone_config(
        &master,
        &[&replica],
        "prefer-replica",
        "",
    ));
    let mut c = proxy.client();
    // Enough requests for the sampled latency histogram to have buckets.
    for i in 0..64 {
        assert_eq!(
            c.cmd(&["SET", "k", &i.to_string()]),
            Resp::Simple("OK".into())
        );
    }
    // Gauges fed by the health probes appear after the first probe round: poll, then name
    // what is still missing.
    let deadline = Instant::now() + Duration::from_secs(10);
    let missing: Vec<String> = loop {
        let have = exported(&proxy.http_get("/metrics").1);
        let missing: Vec<String> = wanted.difference(&have).cloned().collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(missing.is_empty(), "not exported: {missing:?}");
}
