//! Redis 7.0's key specifications: where a command's keys are and what it does to each
//! (COMMAND GETKEYS, COMMAND GETKEYSANDFLAGS), its ACL categories and `movablekeys` flag
//! (COMMAND INFO, COMMAND LIST FILTERBY ACLCAT).
//!
//! The data is Redis's own, generated from a live redis-server's `COMMAND INFO` into
//! `command_specs.txt` (the `node_command_specs` test regenerates it and checks it against
//! redis-server). The search follows Redis's `getKeysUsingKeySpecs`; the commands whose
//! specs Redis itself marks unreliable (unknown positions, `incomplete`, `variable_flags`:
//! SET, BITFIELD, SORT, SORT_RO, MIGRATE) have their own extraction as in Redis's
//! `*GetKeys` procedures.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Key flags, in the order Redis lists them.
pub(crate) mod flag {
    pub const RO: u16 = 1;
    pub const RW: u16 = 1 << 1;
    pub const OW: u16 = 1 << 2;
    #[allow(dead_code)] // named for completeness: no built-in 7.0 procedure sets it
    pub const RM: u16 = 1 << 3;
    pub const ACCESS: u16 = 1 << 4;
    pub const UPDATE: u16 = 1 << 5;
    #[allow(dead_code)]
    pub const INSERT: u16 = 1 << 6;
    pub const DELETE: u16 = 1 << 7;
    pub const NOT_KEY: u16 = 1 << 8;
    pub const INCOMPLETE: u16 = 1 << 9;
    pub const VARIABLE_FLAGS: u16 = 1 << 10;
}

const FLAG_NAMES: [&str; 11] = [
    "RO",
    "RW",
    "OW",
    "RM",
    "access",
    "update",
    "insert",
    "delete",
    "not_key",
    "incomplete",
    "variable_flags",
];

/// The names of the flags set in `flags`, in Redis's order.
pub(crate) fn flag_names(flags: u16) -> impl Iterator<Item = &'static str> {
    FLAG_NAMES
        .iter()
        .enumerate()
        .filter(move |(i, _)| flags & (1 << i) != 0)
        .map(|(_, n)| *n)
}

/// Where the search for a spec's keys begins.
#[derive(Debug, Clone, PartialEq)]
enum Begin {
    /// A fixed argument position.
    Index(usize),
    /// After `keyword`, searched from `startfrom` (negative: from the end, backwards).
    Keyword {
        keyword: &'static str,
        startfrom: i64,
    },
    /// Only the command's own procedure knows.
    Unknown,
}

/// How the keys run on from where the search began.
#[derive(Debug, Clone, PartialEq)]
enum Find {
    /// Up to `lastkey` (relative; negative from the end, or with `limit` a fraction of the
    /// rest), every `step`.
    Range {
        lastkey: i64,
        step: usize,
        limit: i64,
    },
    /// A count at `numidx`, keys from `first` on, every `step`.
    Keynum {
        numidx: usize,
        first: usize,
        step: usize,
    },
    Unknown,
}

#[derive(Debug, Clone)]
struct Spec {
    flags: u16,
    begin: Begin,
    find: Find,
}

/// One command's or subcommand's row.
#[derive(Debug)]
pub(crate) struct Entry {
    /// `name` or `container|sub`.
    pub name: &'static str,
    /// Redis's `movablekeys` flag.
    pub movable: bool,
    /// ACL categories (`@read`, ...).
    pub categories: Vec<&'static str>,
    specs: Vec<Spec>,
}

fn parse_flags(text: &str) -> u16 {
    text.split(',')
        .filter_map(|f| FLAG_NAMES.iter().position(|n| *n == f))
        .fold(0, |acc, i| acc | (1 << i))
}

fn parse_nums<const N: usize>(text: &str) -> Option<[i64; N]> {
    let mut out = [0; N];
    let mut parts = text.split(',');
    for slot in &mut out {
        *slot = parts.next()?.parse().ok()?;
    }
    Some(out)
}

fn parse_spec(text: &'static str) -> Option<Spec> {
    let mut parts = text.split(' ');
    let flags = parse_flags(parts.next()?);
    let begin = parts.next()?;
    let begin = if let Some(i) = begin.strip_prefix('i') {
        Begin::Index(i.parse().ok()?)
    } else if let Some(k) = begin.strip_prefix('k') {
        let (from, keyword) = k.split_once(':')?;
        Begin::Keyword {
            keyword,
            startfrom: from.parse().ok()?,
        }
    } else {
        Begin::Unknown
    };
    let find = parts.next()?;
    let find = if let Some(r) = find.strip_prefix('r') {
        let [lastkey, step, limit] = parse_nums(r)?;
        Find::Range {
            lastkey,
            step: usize::try_from(step).ok()?,
            limit,
        }
    } else if let Some(n) = find.strip_prefix('n') {
        let [numidx, first, step] = parse_nums(n)?;
        Find::Keynum {
            numidx: usize::try_from(numidx).ok()?,
            first: usize::try_from(first).ok()?,
            step: usize::try_from(step).ok()?,
        }
    } else {
        Find::Unknown
    };
    Some(Spec { flags, begin, find })
}

fn parse_line(line: &'static str) -> Option<Entry> {
    let mut cols = line.split('\t');
    let name = cols.next()?;
    let movable = cols.next()? == "1";
    let categories = match cols.next()? {
        "-" => Vec::new(),
        c => c.split(',').collect(),
    };
    let specs = match cols.next()? {
        "-" => Vec::new(),
        s => s.split(';').map(parse_spec).collect::<Option<Vec<_>>>()?,
    };
    Some(Entry {
        name,
        movable,
        categories,
        specs,
    })
}

fn table() -> &'static HashMap<&'static str, Entry> {
    static TABLE: OnceLock<HashMap<&'static str, Entry>> = OnceLock::new();
    TABLE.get_or_init(|| {
        include_str!("command_specs.txt")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(parse_line)
            .map(|e| (e.name, e))
            .collect()
    })
}

/// The row of `name` (`cmd` or `cmd|sub`, lower case).
pub(crate) fn entry(name: &str) -> Option<&'static Entry> {
    table().get(name)
}

/// The subcommand rows of container `name`, sorted by name.
pub(crate) fn subcommands(name: &str) -> Vec<&'static Entry> {
    let mut subs: Vec<&Entry> = table()
        .values()
        .filter(|e| {
            e.name
                .split_once('|')
                .is_some_and(|(container, _)| container == name)
        })
        .collect();
    subs.sort_by_key(|e| e.name);
    subs
}

/// The row a call resolves to (Redis's `lookupCommand` on the argument vector): a container
/// with arguments resolves to its subcommand, and an unknown subcommand to nothing.
pub(crate) fn resolve(argv: &[&[u8]]) -> Option<&'static Entry> {
    let name = String::from_utf8_lossy(argv.first()?).to_ascii_lowercase();
    let container = !subcommands(&name).is_empty();
    match argv.get(1) {
        Some(sub) if container => {
            let sub = String::from_utf8_lossy(sub).to_ascii_lowercase();
            entry(&format!("{name}|{sub}"))
        }
        _ => entry(&name),
    }
}

impl Entry {
    /// Redis's `doesCommandHaveKeys`: a spec that is a real key.
    pub(crate) fn has_keys(&self) -> bool {
        self.specs.iter().any(|s| s.flags & flag::NOT_KEY == 0)
    }

    /// The key positions in `argv` (the command's own name at 0) with their flags, as
    /// `getKeysFromCommandWithSpecs` finds them; empty when the arguments are malformed.
    pub(crate) fn keys(&self, argv: &[&[u8]]) -> Vec<(usize, u16)> {
        let varflags = self
            .specs
            .iter()
            .any(|s| s.flags & flag::VARIABLE_FLAGS != 0);
        if self.has_keys() && !varflags {
            if let Some(keys) = self.keys_from_specs(argv) {
                return keys;
            }
        }
        special_keys(self.name, argv)
    }

    /// `getKeysUsingKeySpecs`; `None` for an invalid or incomplete spec.
    fn keys_from_specs(&self, argv: &[&[u8]]) -> Option<Vec<(usize, u16)>> {
        let argc = argv.len() as i64;
        let mut keys = Vec::new();
        for spec in &self.specs {
            if spec.flags & flag::NOT_KEY != 0 {
                continue;
            }
            let Some(first) = begin_at(&spec.begin, argv)? else {
                continue; // keyword not found: this spec has no keys here
            };
            let (first, last, step) = match spec.find {
                Find::Range {
                    lastkey,
                    step,
                    limit,
                } => {
                    let last = if lastkey >= 0 {
                        first + lastkey
                    } else if limit == 0 {
                        argc + lastkey
                    } else {
                        first + ((argc - first) / limit + lastkey)
                    };
                    (first, last, step)
                }
                Find::Keynum {
                    numidx,
                    first: skip,
                    step,
                } => {
                    let at = usize::try_from(first).ok()? + numidx;
                    let count: i64 = std::str::from_utf8(argv.get(at)?)
                        .ok()?
                        .parse()
                        .ok()
                        .filter(|&n| n >= 0)?;
                    let first = first + skip as i64;
                    (first, first + count - 1, step)
                }
                Find::Unknown => return None,
            };
            if last >= argc || last < first || first >= argc {
                return None;
            }
            let mut i = first;
            while i <= last {
                keys.push((usize::try_from(i).ok()?, spec.flags));
                i += step.max(1) as i64;
            }
            if spec.flags & flag::INCOMPLETE != 0 {
                return None;
            }
        }
        Some(keys)
    }
}

/// Where a spec's search begins: `Some(Some(i))`, `Some(None)` when its keyword is absent,
/// `None` when only the command's procedure knows.
fn begin_at(begin: &Begin, argv: &[&[u8]]) -> Option<Option<i64>> {
    let argc = argv.len() as i64;
    match begin {
        Begin::Index(i) => Some(Some(*i as i64)),
        Begin::Keyword { keyword, startfrom } => {
            let (start, end) = if *startfrom > 0 {
                (*startfrom, argc - 1)
            } else {
                (argc + startfrom, 0)
            };
            let mut i = start;
            while i != end {
                if i >= argc || i < 1 {
                    break;
                }
                if argv[i as usize].eq_ignore_ascii_case(keyword.as_bytes()) {
                    return Some(Some(i + 1));
                }
                i += if start <= end { 1 } else { -1 };
            }
            Some(None)
        }
        Begin::Unknown => None,
    }
}

/// Redis's own extraction for commands whose specs cannot say it all (`setGetKeys`,
/// `bitfieldGetKeys`, `sortGetKeys`, `sortROGetKeys`, `migrateGetKeys`). Commands that
/// count their keys (EVAL, ZUNIONSTORE, ...) get here only with a bad count, where Redis's
/// procedures find no keys either.
fn special_keys(name: &str, argv: &[&[u8]]) -> Vec<(usize, u16)> {
    use flag::*;
    let is = |i: usize, w: &str| {
        argv.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(w.as_bytes()))
    };
    match name {
        "set" => {
            let get = (3..argv.len()).any(|i| is(i, "get"));
            let flags = if get {
                RW | ACCESS | UPDATE
            } else {
                OW | UPDATE
            };
            vec![(1, flags)]
        }
        "bitfield" => vec![(1, bitfield_flags(argv))],
        "sort_ro" => vec![(1, RO | ACCESS)],
        "sort" => {
            let mut keys = vec![(1, RO | ACCESS)];
            let mut store = None;
            let mut i = 2;
            while i < argv.len() {
                if is(i, "limit") {
                    i += 2;
                } else if is(i, "get") || is(i, "by") {
                    i += 1;
                } else if is(i, "store") && i + 1 < argv.len() {
                    // The last STORE wins, as in SORT itself.
                    store = Some(i + 1);
                }
                i += 1;
            }
            keys.extend(store.map(|s| (s, OW | UPDATE)));
            keys
        }
        "migrate" => migrate_keys(argv),
        _ => Vec::new(),
    }
}

/// BITFIELD only reads its key when every subcommand is a GET (or OVERFLOW).
fn bitfield_flags(argv: &[&[u8]]) -> u16 {
    use flag::*;
    let mut i = 2;
    while i < argv.len() {
        let rest = argv.len() - i - 1;
        let arg = argv[i];
        if arg.eq_ignore_ascii_case(b"get") && rest >= 2 {
            i += 3;
        } else if arg.eq_ignore_ascii_case(b"overflow") && rest >= 1 {
            i += 2;
        } else {
            // SET, INCRBY or a syntax error: assume a write.
            return RW | ACCESS | UPDATE;
        }
    }
    RO | ACCESS
}

/// MIGRATE's key: argument 3, or every argument after KEYS (then argument 3 must be empty).
fn migrate_keys(argv: &[&[u8]]) -> Vec<(usize, u16)> {
    let flags = flag::RW | flag::ACCESS | flag::DELETE;
    let mut i = 6;
    while i < argv.len() {
        let arg = argv[i];
        if arg.eq_ignore_ascii_case(b"keys") {
            if argv.get(3).is_some_and(|k| !k.is_empty()) {
                return Vec::new();
            }
            return (i + 1..argv.len()).map(|k| (k, flags)).collect();
        }
        if arg.eq_ignore_ascii_case(b"auth") {
            i += 1;
        } else if arg.eq_ignore_ascii_case(b"auth2") {
            i += 2;
        }
        i += 1;
    }
    vec![(3, flags)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(args: &[&str]) -> Vec<(usize, Vec<&'static str>)> {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let e = resolve(&argv).expect("known command");
        e.keys(&argv)
            .into_iter()
            .map(|(i, f)| (i, flag_names(f).collect()))
            .collect()
    }

    #[test]
    fn the_table_parses_whole() {
        let lines = include_str!("command_specs.txt")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .count();
        assert_eq!(table().len(), lines);
        assert!(entry("get").is_some_and(|e| e.has_keys() && !e.movable));
        assert!(entry("ping").is_some_and(|e| !e.has_keys()));
    }

    #[test]
    fn specs_and_procedures_find_redis_keys() {
        assert_eq!(keys(&["set", "k", "v"]), vec![(1, vec!["OW", "update"])]);
        assert_eq!(
            keys(&["lmove", "a", "b", "left", "right"]),
            vec![
                (1, vec!["RW", "access", "delete"]),
                (2, vec!["RW", "insert"])
            ]
        );
        assert_eq!(
            keys(&["sort", "a", "store", "x", "store", "y"]),
            vec![(1, vec!["RO", "access"]), (5, vec!["OW", "update"])]
        );
        assert_eq!(keys(&["eval", "s", "0"]), vec![]);
        assert_eq!(keys(&["eval", "s", "2", "a"]), vec![]);
        assert_eq!(keys(&["memory", "usage", "k"]).len(), 1);
        assert_eq!(
            keys(&["xread", "streams", "a", "b", "0", "0"])
                .iter()
                .map(|k| k.0)
                .collect::<Vec<_>>(),
            vec![2, 3]
        );
        assert!(resolve(&[b"memory", b"nosuch"]).is_none());
        assert_eq!(
            keys(&["bitfield", "k", "get", "u8", "0"]),
            vec![(1, vec!["RO", "access"])]
        );
        assert_eq!(
            keys(&["bitfield", "k", "get", "u8", "0", "set", "u8", "0", "1"]),
            vec![(1, vec!["RW", "access", "update"])]
        );
        assert_eq!(
            keys(&["migrate", "h", "1", "", "0", "9", "auth", "keys", "keys", "a", "b"]),
            vec![
                (9, vec!["RW", "access", "delete"]),
                (10, vec!["RW", "access", "delete"])
            ]
        );
    }
}
