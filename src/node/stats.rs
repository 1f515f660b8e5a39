//! Counters INFO reports (`stats` and `commandstats`). They live in the store, under the
//! node's one lock, so counting costs a plain increment.

/// Per-command counters (INFO `commandstats`).
#[derive(Clone, Copy, Debug, Default)]
pub struct CmdStat {
    /// Times the command ran (rejected calls excluded).
    pub calls: u64,
    /// Total run time in µs.
    pub usec: u64,
    /// Refused before running (arity, NOAUTH, wrong context).
    pub rejected: u64,
    /// Ran and answered an error.
    pub failed: u64,
    /// Calls per run-time bucket: bucket k holds runs of up to 1024 * 2^k ns (LATENCY
    /// HISTOGRAM).
    pub hist: [u32; HIST_BUCKETS],
}

/// Run-time buckets per command: up to about 8.6 s, longer runs go to the last one.
pub const HIST_BUCKETS: usize = 24;

impl CmdStat {
    /// Counts one run of `usec` µs in its bucket.
    pub fn record(&mut self, usec: u64) {
        let q = usec.saturating_mul(1000) / 1024;
        let k = if q == 0 {
            0
        } else {
            64 - q.leading_zeros() as usize
        };
        let k = k.min(HIST_BUCKETS - 1);
        self.hist[k] = self.hist[k].saturating_add(1);
    }
}

/// Node-wide counters. The replication side increments the `sync_*` ones.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted since start (or CONFIG RESETSTAT).
    pub total_connections_received: u64,
    /// Commands executed.
    pub total_commands_processed: u64,
    /// Full resynchronisations served to replicas (replication increments it).
    pub sync_full: u64,
    /// Accepted PSYNC partial resynchronisations (replication increments it).
    pub sync_partial_ok: u64,
    /// Refused PSYNC partial resynchronisations (replication increments it).
    pub sync_partial_err: u64,
    /// Read lookups that found their key.
    pub keyspace_hits: u64,
    /// Read lookups that did not.
    pub keyspace_misses: u64,
    /// Error replies sent.
    pub total_error_replies: u64,
    /// Bytes read from clients.
    pub net_input_bytes: u64,
    /// Bytes written to clients.
    pub net_output_bytes: u64,
    /// Per command, indexed like [`crate::node::cmd::all`].
    pub commands: Vec<CmdStat>,
    /// Error replies by their code (`ERR`, `WRONGTYPE`, ...): INFO `errorstats`.
    pub errors: std::collections::BTreeMap<String, u64>,
    /// Recent commands-per-second samples (INFO `instantaneous_ops_per_sec`).
    ops_samples: [u64; OPS_SAMPLES],
    ops_next: usize,
    ops_last: (i64, u64),
    /// Per subcommand of container commands (`config|get`), as Redis 7 reports them.
    pub subcommands: std::collections::BTreeMap<&'static str, CmdStat>,
}

/// Samples averaged for `instantaneous_ops_per_sec` (Redis: 16, one per 100 ms tick).
const OPS_SAMPLES: usize = 16;

impl Stats {
    /// Takes a commands-per-second sample at `now_ms` (called every 100 ms).
    pub fn sample_ops(&mut self, now_ms: i64) {
        let (t, n) = self.ops_last;
        let elapsed = now_ms - t;
        if t > 0 && elapsed > 0 {
            let done = self.total_commands_processed.saturating_sub(n);
            self.ops_samples[self.ops_next] = done * 1000 / elapsed as u64;
            self.ops_next = (self.ops_next + 1) % OPS_SAMPLES;
        }
        self.ops_last = (now_ms, self.total_commands_processed);
    }
    /// The average of the recent samples.
    pub fn instantaneous_ops(&self) -> u64 {
        self.ops_samples.iter().sum::<u64>() / OPS_SAMPLES as u64
    }
    /// The counters of command number `idx`.
    pub fn cmd(&mut self, idx: usize) -> &mut CmdStat {
        if idx >= self.commands.len() {
            self.commands.resize(idx + 1, CmdStat::default());
        }
        &mut self.commands[idx]
    }
    /// The counters of subcommand `name` (`client|list`).
    pub fn sub(&mut self, name: &'static str) -> &mut CmdStat {
        self.subcommands.entry(name).or_default()
    }
    /// Counts an error reply under its code (the first word of `text`).
    pub fn error(&mut self, text: &str) {
        self.total_error_replies += 1;
        let code = text.split(' ').next().unwrap_or("ERR");
        match self.errors.get_mut(code) {
            Some(n) => *n += 1,
            None => {
                self.errors.insert(code.to_string(), 1);
            }
        }
    }
    /// CONFIG RESETSTAT: zero everything.
    pub fn reset(&mut self) {
        *self = Stats::default();
    }
}
