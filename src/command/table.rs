//! Loading of the checked-in command table (`commands.tsv`) and the name index.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

use super::{flags, CommandInfo, Special};

/// The table as generated from Redis 7.0's `COMMAND` reply by `tests/command_table.rs`
/// (`SLUICE_REGEN_COMMANDS=1 cargo test --test command_table`). Embedded rather than read at
/// run time so that the binary is self-contained and the table cannot go missing.
const TSV: &str = include_str!("commands.tsv");

/// Longest name [`lookup_bytes`] will look for. Names are lower-cased into a stack buffer of
/// this size; the longest Redis 7.0 name (`cluster|count-failure-reports`) is 29 bytes, so
/// anything that does not fit cannot be a command and is reported unknown.
pub(crate) const MAX_NAME: usize = 64;

pub(crate) struct Table {
    /// Rows sorted by name.
    pub(crate) rows: Vec<CommandInfo>,
    /// Lower-case name → index into `rows`.
    index: HashMap<&'static [u8], usize, BuildHasherDefault<Fnv>>,
    /// `containers[i]`: row `i` has `parent|sub` rows (CONFIG, CLIENT, ...).
    containers: Vec<bool>,
    /// Number of non-comment, non-blank lines in the file, to let a test prove that no row
    /// was dropped as malformed.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) data_lines: usize,
}

pub(crate) static TABLE: LazyLock<Table> = LazyLock::new(|| parse(TSV));

/// Parses the TSV. Malformed rows are skipped rather than panicking at startup; a unit test
/// asserts `rows.len() == data_lines`, so a bad checked-in file fails CI instead.
pub(crate) fn parse(text: &'static str) -> Table {
    let mut rows = Vec::new();
    let mut data_lines = 0;
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        data_lines += 1;
        if let Some(info) = parse_row(line) {
            rows.push(info);
        }
    }
    rows.sort_by(|a, b| a.name.cmp(b.name));
    rows.dedup_by(|a, b| a.name == b.name);
    let index: HashMap<&'static [u8], usize, BuildHasherDefault<Fnv>> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.as_bytes(), i))
        .collect();
    let mut containers = vec![false; rows.len()];
    for r in &rows {
        if let Some((parent, _)) = r.name.split_once('|') {
            if let Some(&i) = index.get(parent.as_bytes()) {
                containers[i] = true;
            }
        }
    }
    Table {
        rows,
        index,
        containers,
        data_lines,
    }
}

fn parse_row(line: &'static str) -> Option<CommandInfo> {
    let mut cols = line.split('\t');
    let name = cols.next()?;
    let arity = cols.next()?.parse().ok()?;
    let flag_names = cols.next()?;
    let first_key = cols.next()?.parse().ok()?;
    let last_key = cols.next()?.parse().ok()?;
    let step = cols.next()?.parse().ok()?;
    // Names must already be lower case: the index is probed with lower-cased input.
    if name.is_empty() || name.len() > MAX_NAME || name.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut bits = 0;
    for f in flag_names.split(',').filter(|f| !f.is_empty()) {
        bits |= flags::from_name(f)?;
    }
    Some(CommandInfo {
        name,
        arity,
        flags: bits,
        first_key,
        last_key,
        step,
        special: Special::classify(name),
        hidden_may_replicate: hidden_may_replicate(name),
    })
}

/// Redis 7.0's commands flagged `may-replicate` that COMMAND INFO lists without it (their
/// `CMD_MAY_REPLICATE` is internal). EVALSHA and FCALL are left out on purpose: whether they
/// may write is in the node's script cache and function library, which the proxy cannot see.
fn hidden_may_replicate(name: &str) -> bool {
    matches!(name, "pfcount" | "publish" | "spublish" | "eval")
}

impl Table {
    /// Exact lookup of an already lower-cased name.
    fn get(&self, lower: &[u8]) -> Option<(usize, &CommandInfo)> {
        let &i = self.index.get(lower)?;
        Some((i, &self.rows[i]))
    }
}

/// Lower-cases `name` into `buf`, returning the filled prefix, or `None` if it does not fit.
fn lower_into<'b>(name: &[u8], buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let out = buf.get_mut(..name.len())?;
    for (o, &b) in out.iter_mut().zip(name) {
        *o = b.to_ascii_lowercase();
    }
    Some(out)
}

/// Case-insensitive lookup of a full name (`get`, `CONFIG|SET`), without allocating.
pub(crate) fn lookup_bytes(name: &[u8]) -> Option<&'static CommandInfo> {
    let mut buf = [0u8; MAX_NAME];
    let lower = lower_into(name, &mut buf)?;
    TABLE.get(lower).map(|(_, r)| r)
}

/// Looks up `cmd`, and `cmd|sub` when `cmd` is a container and `sub` is given. An unknown
/// subcommand yields the container row itself (no flags, no keys), which classifies as a
/// non-read, non-blocking command: Redis will answer it with an error anyway.
pub(crate) fn lookup_command(cmd: &[u8], sub: Option<&[u8]>) -> Option<&'static CommandInfo> {
    let table = &*TABLE;
    let mut buf = [0u8; MAX_NAME];
    let parent = lower_into(cmd, &mut buf)?;
    let (i, row) = table.get(parent)?;
    let Some(sub) = sub.filter(|_| table.containers[i]) else {
        return Some(row);
    };
    // Compose `parent|sub` in the same buffer, after the parent name.
    let plen = cmd.len();
    let total = plen + 1 + sub.len();
    if total > MAX_NAME {
        return Some(row);
    }
    buf[plen] = b'|';
    for (o, &b) in buf[plen + 1..total].iter_mut().zip(sub) {
        *o = b.to_ascii_lowercase();
    }
    Some(table.get(&buf[..total]).map_or(row, |(_, r)| r))
}

/// FNV-1a: the index is looked up once per request with short keys (command names) in a table
/// fixed at start, which no input can grow or flood, so the DoS resistance of the default
/// SipHash buys nothing and costs a visible share of the per-request CPU. Node mode's command
/// table uses it too.
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}
