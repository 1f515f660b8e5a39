//! INFO: the sections Redis 7.0 reports, in its `# Section\r\nfield:value\r\n` format.
//!
//! Tools and the proxy parse these (roles, offsets, `cmdstat_*:calls=`), so names, order and
//! value formats follow Redis; values the node does not track are reported as Redis reports
//! them when idle (mostly zeros).

use std::fmt::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::node::clock::unix_ms;
use crate::node::cmd;
use crate::node::db::DATABASES;
use crate::node::info_replication;
use crate::node::shared::Shared;
use crate::node::store::Store;

/// The Redis version the node reports (INFO, HELLO).
pub const VERSION: &str = "7.0.15";

/// Sections in output order, and whether INFO without arguments includes them.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("errorstats", true),
    ("commandstats", false),
    ("cluster", true),
    ("keyspace", true),
];

/// 40 random-looking hex digits (run id, replication id), from the clock and process id.
pub fn random_hex40() -> String {
    let mut x = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        ^ (u64::from(std::process::id()) << 32);
    let mut s = String::with_capacity(40);
    while s.len() < 40 {
        // splitmix64: spreads a weak seed over every digit.
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let _ = write!(s, "{z:016x}");
    }
    s.truncate(40);
    s
}

fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(random_hex40)
}

/// The INFO text for the requested sections (`args` as given after INFO, any case):
/// none = the default set; `all`, `everything`, `default` or section names.
pub fn render(shared: &Shared, store: &Store, args: &[Vec<u8>]) -> String {
    let wanted: Vec<&str> = if args.is_empty() {
        SECTIONS.iter().filter(|s| s.1).map(|s| s.0).collect()
    } else {
        let lower: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
            .collect();
        SECTIONS
            .iter()
            .filter(|(name, default)| {
                lower.iter().any(|a| {
                    a == name
                        || a == "everything"
                        || (a == "all" && *name != "modules")
                        || (a == "default" && *default)
                })
            })
            .map(|s| s.0)
            .collect()
    };
    let mut out = String::new();
    for name in wanted {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let mut title = name.to_string();
        if let Some(c) = title.get_mut(0..1) {
            c.make_ascii_uppercase();
        }
        if name == "cpu" {
            title = "CPU".into();
        }
        let _ = write!(out, "# {title}\r\n");
        section(&mut out, name, shared, store);
    }
    out
}

fn section(out: &mut String, name: &str, shared: &Shared, store: &Store) {
    let mut f = |k: &str, v: &dyn std::fmt::Display| {
        let _ = write!(out, "{k}:{v}\r\n");
    };
    match name {
        "server" => server_fields(&mut f, shared),
        "clients" => clients_fields(&mut f, store),
        "memory" => memory_fields(&mut f, store),
        "persistence" => persistence_fields(&mut f, store),
        "stats" => stats_fields(&mut f, store),
        "replication" => out.push_str(&info_replication::replication_section(store)),
        "cpu" => cpu_fields(&mut f),
        "commandstats" => commandstats_fields(&mut f, store),
        "errorstats" => errorstats_fields(&mut f, store),
        "cluster" => f("cluster_enabled", &u8::from(store.cluster.is_some())),
        "keyspace" => keyspace_fields(&mut f, store),
        _ => {}
    }
}

/// Where a section writes its `name:value` lines.
type Field<'a> = dyn FnMut(&str, &dyn std::fmt::Display) + 'a;

/// The server section: version, process, uptime.
fn server_fields(f: &mut Field, shared: &Shared) {
    let uptime = shared.started.elapsed().as_secs();
    f("redis_version", &VERSION);
    f("redis_git_sha1", &"00000000");
    f("redis_git_dirty", &0);
    f("redis_build_id", &"0");
    f("redis_mode", &"standalone");
    f(
        "os",
        &format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
    );
    f("arch_bits", &64);
    f("monotonic_clock", &"POSIX clock_gettime");
    f("multiplexing_api", &"epoll");
    f("atomicvar_api", &"c11-builtin");
    f("gcc_version", &"0.0.0");
    f("process_id", &std::process::id());
    f("process_supervised", &"no");
    f("run_id", &run_id());
    f("tcp_port", &shared.port());
    f("server_time_usec", &(unix_ms() * 1000));
    f("uptime_in_seconds", &uptime);
    f("uptime_in_days", &(uptime / 86400));
    f("hz", &10);
    f("configured_hz", &10);
    f("lru_clock", &((unix_ms() / 1000) & 0xFF_FFFF));
    let exe = std::env::current_exe().map(|p| p.display().to_string());
    f("executable", &exe.unwrap_or_default());
    f("config_file", &"");
    f("io_threads_active", &0);
}

/// The clients section.
fn clients_fields(f: &mut Field, store: &Store) {
    f("connected_clients", &store.clients.len());
    f("cluster_connections", &0);
    f(
        "maxclients",
        &store.settings.get("maxclients").unwrap_or("10000"),
    );
    f("client_recent_max_input_buffer", &0);
    f("client_recent_max_output_buffer", &0);
    f("blocked_clients", &store.clients.blocked);
    f("tracking_clients", &0);
    f("clients_in_timeout_table", &store.clients.blocked);
}

/// The memory section: the process's RSS stands for every `used_memory` figure.
fn memory_fields(f: &mut Field, store: &Store) {
    let rss = rss_bytes();
    let maxmemory: u64 = store
        .settings
        .get("maxmemory")
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    f("used_memory", &rss);
    f("used_memory_human", &human(rss));
    f("used_memory_rss", &rss);
    f("used_memory_rss_human", &human(rss));
    f("used_memory_peak", &rss);
    f("used_memory_peak_human", &human(rss));
    f("used_memory_peak_perc", &"100.00%");
    f("used_memory_overhead", &0);
    f("used_memory_startup", &0);
    f("used_memory_dataset", &rss);
    f("used_memory_dataset_perc", &"100.00%");
    let sc = &store.scripting;
    let (lua, fns) = (sc.lua_memory(), sc.functions_memory());
    f("used_memory_lua", &lua);
    f("used_memory_vm_eval", &lua);
    f("used_memory_lua_human", &human(lua as u64));
    f("used_memory_scripts_eval", &0);
    f("number_of_cached_scripts", &sc.cached_scripts());
    f("number_of_functions", &sc.function_count());
    f("number_of_libraries", &sc.library_count());
    f("used_memory_vm_functions", &fns);
    f("used_memory_vm_total", &(lua + fns));
    f("used_memory_vm_total_human", &human((lua + fns) as u64));
    f("maxmemory", &maxmemory);
    f("maxmemory_human", &human(maxmemory));
    f(
        "maxmemory_policy",
        &store
            .settings
            .get("maxmemory-policy")
            .unwrap_or("noeviction"),
    );
    f("mem_fragmentation_ratio", &"1.00");
    f("mem_replication_backlog", &0);
    f("mem_clients_slaves", &0);
    f("mem_clients_normal", &0);
    f("mem_aof_buffer", &0);
    f("mem_allocator", &"libc");
    f("lazyfree_pending_objects", &0);
}

/// The persistence section: RDB fields as a server that never saved, AOF as it runs.
fn persistence_fields(f: &mut Field, store: &Store) {
    f("loading", &0);
    f("async_loading", &0);
    f("rdb_changes_since_last_save", &store.dirty);
    f("rdb_bgsave_in_progress", &0);
    f("rdb_last_save_time", &store.lastsave);
    f("rdb_last_bgsave_status", &"ok");
    f("rdb_last_bgsave_time_sec", &-1);
    f("rdb_current_bgsave_time_sec", &-1);
    f("rdb_saves", &0);
    for line in info_replication::persistence_lines(store).lines() {
        if let Some((k, v)) = line.split_once(':') {
            f(k, &v);
        }
    }
    f("aof_rewrite_in_progress", &0);
    f("aof_rewrite_scheduled", &0);
    f("aof_last_rewrite_time_sec", &-1);
    f("aof_current_rewrite_time_sec", &-1);
    f("aof_last_bgrewrite_status", &"ok");
    f("aof_rewrites", &0);
    f("aof_last_write_status", &"ok");
}

/// The stats section, in Redis's field order.
fn stats_fields(f: &mut Field, store: &Store) {
    let s = &store.stats;
    let ps = &store.pubsub;
    f("total_connections_received", &s.total_connections_received);
    f("total_commands_processed", &s.total_commands_processed);
    f("instantaneous_ops_per_sec", &s.instantaneous_ops());
    f("total_net_input_bytes", &s.net_input_bytes);
    f("total_net_output_bytes", &s.net_output_bytes);
    f("total_net_repl_input_bytes", &0);
    f("total_net_repl_output_bytes", &0);
    f("instantaneous_input_kbps", &"0.00");
    f("instantaneous_output_kbps", &"0.00");
    f("rejected_connections", &0);
    for line in info_replication::stats_lines(store).lines() {
        if let Some((k, v)) = line.split_once(':') {
            f(k, &v);
        }
    }
    f("expired_keys", &store.expired_keys);
    f("expired_stale_perc", &"0.00");
    f("expired_time_cap_reached_count", &0);
    f("evicted_keys", &0);
    f("evicted_clients", &0);
    f("keyspace_hits", &s.keyspace_hits);
    f("keyspace_misses", &s.keyspace_misses);
    f("pubsub_channels", &ps.channels.len());
    f("pubsub_patterns", &ps.patterns.len());
    f("pubsubshard_channels", &ps.shard.len());
    f("latest_fork_usec", &0);
    f("total_forks", &0);
    f("unexpected_error_replies", &0);
    f("total_error_replies", &s.total_error_replies);
    f("dump_payload_sanitizations", &0);
}

/// The cpu section, from the process's rusage.
fn cpu_fields(f: &mut Field) {
    let (user, sys) = cpu_seconds();
    f("used_cpu_sys", &format!("{sys:.6}"));
    f("used_cpu_user", &format!("{user:.6}"));
    f("used_cpu_sys_children", &"0.000000");
    f("used_cpu_user_children", &"0.000000");
    f("used_cpu_sys_main_thread", &format!("{sys:.6}"));
    f("used_cpu_user_main_thread", &format!("{user:.6}"));
}

/// The commandstats section: every command and subcommand called, rejected or failed.
fn commandstats_fields(f: &mut Field, store: &Store) {
    let named = cmd::all()
        .map(|c| c.name)
        .zip(store.stats.commands.iter())
        .chain(store.stats.subcommands.iter().map(|(n, s)| (*n, s)));
    for (name, st) in named {
        if st.calls + st.rejected + st.failed == 0 {
            continue;
        }
        let per = if st.calls == 0 {
            0.0
        } else {
            st.usec as f64 / st.calls as f64
        };
        f(
            &format!("cmdstat_{name}"),
            &format_args!(
                "calls={},usec={},usec_per_call={per:.2},rejected_calls={},failed_calls={}",
                st.calls, st.usec, st.rejected, st.failed
            ),
        );
    }
}

/// The errorstats section: replies per error code.
fn errorstats_fields(f: &mut Field, store: &Store) {
    for (code, n) in &store.stats.errors {
        f(&format!("errorstat_{code}"), &format_args!("count={n}"));
    }
}

/// The keyspace section: the databases that have keys.
fn keyspace_fields(f: &mut Field, store: &Store) {
    for i in 0..DATABASES {
        let db = store.db(i);
        if !db.is_empty() {
            f(
                &format!("db{i}"),
                &format_args!("keys={},expires={},avg_ttl=0", db.len(), db.volatile_len()),
            );
        }
    }
}

/// Redis's `bytesToHuman`: `123B`, `1.50K`, `2.00M`, `1.00G`.
fn human(n: u64) -> String {
    let d = n as f64;
    match n {
        n if n < 1024 => format!("{n}B"),
        n if n < 1 << 20 => format!("{:.2}K", d / 1024.0),
        n if n < 1 << 30 => format!("{:.2}M", d / 1048576.0),
        _ => format!("{:.2}G", d / 1073741824.0),
    }
}

/// Resident set size from `/proc/self/statm` (0 where unavailable).
pub(crate) fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// User and system CPU seconds from `/proc/self/stat` (clock ticks of 1/100 s).
fn cpu_seconds() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 100.0
    };
    (tick(11), tick(12))
}
