//! SLOWLOG and LATENCY, and what every command leaves in them (see `slowlog.rs`,
//! `latency.rs`, and the per-command histograms in `stats.rs`).

use bytes::Bytes;

use super::scripting::help;
use super::{Args, Command, Ctx, Flags, Reply};
use crate::node::args::parse_int;
use crate::node::clock::unix_ms;

const ADMIN: Flags = Flags::ADMIN
    .with(Flags::NOSCRIPT)
    .with(Flags::LOADING)
    .with(Flags::STALE);

/// The monitoring family.
pub static COMMANDS: &[Command] = &[
    Command::new("slowlog", slowlog, -2, ADMIN).has_subcommands(),
    Command::new("latency", latency, -2, ADMIN),
];

/// After a command ran for `usec` µs (not one that blocked, not one called by a script):
/// the latency monitor's `command` / `fast-command` event and the slow log.
pub(super) fn record(ctx: &mut Ctx, cmd: &Command, args: &Args, usec: u64) {
    let store = &mut *ctx.store;
    if store.latency.threshold_ms > 0 {
        let event = if cmd.flags.has(Flags::FAST) {
            "fast-command"
        } else {
            "command"
        };
        store.latency.add(event, usec / 1000, unix_ms() / 1000);
    }
    // EXEC is not logged itself: the commands it ran are, one by one.
    if store.slowlog.wants(usec) && cmd.name != "exec" {
        let addr = store
            .clients
            .get(ctx.client.id)
            .map(|c| c.addr.to_string())
            .unwrap_or_default();
        let name = ctx.client.name.clone().unwrap_or_default();
        let argv: Vec<&[u8]> = args.from(0).collect();
        store
            .slowlog
            .push(&argv, usec, unix_ms() / 1000, addr, name);
    }
}

const SLOWLOG_HELP: &[&str] = &[
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
];

fn slowlog(ctx: &mut Ctx, args: &Args) -> Reply {
    let n = args.len();
    if args.is(1, "HELP") && n == 2 {
        help(SLOWLOG_HELP)
    } else if args.is(1, "RESET") && n == 2 {
        ctx.store.slowlog.reset();
        Reply::Ok
    } else if args.is(1, "LEN") && n == 2 {
        Reply::Int(ctx.store.slowlog.len() as i64)
    } else if args.is(1, "GET") && (n == 2 || n == 3) {
        let count = if n == 3 {
            match parse_int(args.get(2)) {
                Some(-1) => usize::MAX,
                Some(c) if c >= 0 => usize::try_from(c).unwrap_or(usize::MAX),
                _ => return Reply::error("ERR count should be greater than or equal to -1"),
            }
        } else {
            10
        };
        let entries = ctx.store.slowlog.iter().take(count).map(|e| {
            Reply::Array(vec![
                Reply::Int(e.id as i64),
                Reply::Int(e.time),
                Reply::Int(i64::try_from(e.duration).unwrap_or(i64::MAX)),
                Reply::Array(e.args.iter().cloned().map(Reply::Bulk).collect()),
                Reply::Bulk(Bytes::from(e.addr.clone())),
                Reply::Bulk(e.name.clone()),
            ])
        });
        Reply::Array(entries.collect())
    } else {
        subcommand_syntax(args)
    }
}

/// Redis's `addReplySubcommandSyntaxError`.
fn subcommand_syntax(args: &Args) -> Reply {
    let name = String::from_utf8_lossy(args.get(0)).to_ascii_uppercase();
    Reply::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {name} HELP.",
        String::from_utf8_lossy(args.get(1))
    ))
}

const LATENCY_HELP: &[&str] = &[
    "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
    "HELP",
    "    Prints this help.",
];

fn latency(ctx: &mut Ctx, args: &Args) -> Reply {
    let n = args.len();
    let sub = String::from_utf8_lossy(args.get(1)).to_ascii_lowercase();
    let l = &ctx.store.latency;
    match sub.as_str() {
        "help" if n == 2 => help(LATENCY_HELP),
        "latest" if n == 2 => Reply::Array(
            l.iter()
                .filter_map(|(name, s)| {
                    let (t, ms) = *s.samples.back()?;
                    Some(Reply::Array(vec![
                        Reply::bulk(name.as_bytes()),
                        Reply::Int(t),
                        Reply::Int(ms as i64),
                        Reply::Int(s.max as i64),
                    ]))
                })
                .collect(),
        ),
        "history" if n == 3 => {
            let event = String::from_utf8_lossy(args.get(2));
            let samples = l
                .series(&event)
                .map(|s| s.samples.clone())
                .unwrap_or_default();
            Reply::Array(
                samples
                    .into_iter()
                    .map(|(t, ms)| Reply::Array(vec![Reply::Int(t), Reply::Int(ms as i64)]))
                    .collect(),
            )
        }
        "reset" => {
            let events: Vec<String> = args
                .from(2)
                .map(|e| String::from_utf8_lossy(e).into_owned())
                .collect();
            Reply::Int(ctx.store.latency.reset(&events) as i64)
        }
        "doctor" if n == 2 => Reply::Verbatim(Bytes::from(doctor(ctx))),
        "graph" if n == 3 => {
            let event = String::from_utf8_lossy(args.get(2)).into_owned();
            match l.series(&event) {
                Some(s) => Reply::Verbatim(Bytes::from(graph(&event, s))),
                None => Reply::error(format!("ERR No samples available for event '{event}'")),
            }
        }
        "histogram" => super::latency_histogram::reply(ctx, args),
        "help" | "latest" | "history" | "doctor" | "graph" => super::subcommand_arity(args),
        _ => subcommand_syntax(args),
    }
}

/// LATENCY DOCTOR: the events, their worst and average latency, and the usual advice.
fn doctor(ctx: &Ctx) -> String {
    let l = &ctx.store.latency;
    if l.threshold_ms == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis \
                instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" \
                in order to enable it.\n"
            .into();
    }
    let mut out = String::new();
    let mut any = false;
    for (i, (name, s)) in l.iter().enumerate() {
        any = true;
        let n = s.samples.len().max(1) as u64;
        let avg = s.samples.iter().map(|(_, ms)| ms).sum::<u64>() / n;
        out.push_str(&format!(
            "{}. {name}: {} latency spikes (average {avg}ms, worst {}ms).\n",
            i + 1,
            s.samples.len(),
            s.max
        ));
    }
    if any {
        out.insert_str(
            0,
            "Dave, I have observed latency spikes in this Redis instance. You don't mind talking \
             about it, do you Dave?\n\n",
        );
        out.push_str(
            "\nI have a few advices for you:\n\n- Check your system for slow commands (SLOWLOG \
             GET) and large keys deleted by expiry.\n",
        );
    } else {
        out.push_str(
            "Dave, no latency spike was observed during the lifetime of this Redis instance, not \
             in the slightest bit. I honestly think you ought to sleep better and stop worrying \
             so much.\n",
        );
    }
    out
}

/// LATENCY GRAPH: one column per sample, as tall as its share of the worst one.
fn graph(event: &str, s: &crate::node::latency::Series) -> String {
    const ROWS: u64 = 4;
    let max = s.max.max(1);
    let mut out = format!(
        "{event} - high {max} ms, low {} ms (all time high {max} ms)\n",
        { s.samples.iter().map(|(_, m)| *m).min().unwrap_or(0) }
    );
    out.push_str(&"-".repeat(80));
    out.push('\n');
    for row in (1..=ROWS).rev() {
        for (_, ms) in &s.samples {
            out.push(if ms * ROWS >= row * max { '#' } else { ' ' });
        }
        out.push('\n');
    }
    out
}
