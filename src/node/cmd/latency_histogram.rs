//! LATENCY HISTOGRAM: per command (and container subcommand), how many calls and the
//! cumulative distribution of their run times over power-of-two buckets, as Redis 7.0
//! reports its HDR histograms (`calls`, `histogram_usec` bucket → calls at or below it).

use super::{all, Args, Ctx, Reply, SUBCOMMANDS};
use crate::node::stats::{CmdStat, HIST_BUCKETS};

/// `LATENCY HISTOGRAM [command ...]`.
pub(super) fn reply(ctx: &mut Ctx, args: &Args) -> Reply {
    let stats = &ctx.store.stats;
    let mut named: Vec<(&'static str, CmdStat)> = Vec::new();
    let known: Vec<(&'static str, CmdStat)> = all()
        .map(|c| c.name)
        .zip(stats.commands.iter().copied())
        .chain(stats.subcommands.iter().map(|(n, s)| (*n, *s)))
        .filter(|(_, s)| s.calls > 0)
        .collect();
    if args.len() == 2 {
        named = known;
    } else {
        for want in args.from(2) {
            let want = String::from_utf8_lossy(want).to_ascii_lowercase();
            // A container command stands for its subcommands too ("client" -> "client|id").
            let prefix = format!("{want}|");
            for (name, st) in &known {
                let hit =
                    *name == want || (name.starts_with(&prefix) && SUBCOMMANDS.contains(name));
                if hit && !named.iter().any(|(n, _)| n == name) {
                    named.push((name, *st));
                }
            }
        }
    }
    Reply::Map(
        named
            .into_iter()
            .map(|(name, st)| (Reply::bulk(name.as_bytes()), histogram(&st)))
            .collect(),
    )
}

/// `calls N histogram_usec {bucket: cumulative count}` for one command.
fn histogram(st: &CmdStat) -> Reply {
    let mut cumulative = 0u64;
    let mut buckets = Vec::new();
    for (k, &n) in st.hist.iter().enumerate().take(HIST_BUCKETS) {
        if n == 0 {
            continue;
        }
        cumulative += u64::from(n);
        // Bucket k holds up to 1024 * 2^k ns, reported in µs as Redis does.
        let micros = ((1024u64 << k) - 1) / 1000;
        buckets.push((Reply::Int(micros as i64), Reply::Int(cumulative as i64)));
    }
    Reply::Map(vec![
        (Reply::bulk(b"calls"), Reply::Int(st.calls as i64)),
        (Reply::bulk(b"histogram_usec"), Reply::Map(buckets)),
    ])
}
