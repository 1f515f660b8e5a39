//! Key extraction: which arguments of a request are keys.
//!
//! Most commands describe their keys with Redis's legacy `(first, last, step)` triple. The
//! `movablekeys` commands cannot: their keys depend on a `numkeys` argument or on option
//! keywords, so they get hand-written rules here, mirroring what `COMMAND GETKEYS` answers
//! (the integration test checks a sample of them against a live server).

use super::{Args, CommandInfo};

/// The positions of a request's keys: an optional leading position (the destination of
/// ZUNIONSTORE, the sort key of SORT ... STORE) followed by `start, start+step, ...` below
/// `end`. Computed without allocation; iterate it to get argument indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyPositions {
    lead: Option<usize>,
    start: usize,
    end: usize,
    step: usize,
    /// A position yielded after the range (SORT/GEORADIUS `STORE dest`).
    tail: Option<usize>,
}

impl KeyPositions {
    /// No keys.
    pub const NONE: KeyPositions = KeyPositions {
        lead: None,
        start: 0,
        end: 0,
        step: 1,
        tail: None,
    };

    fn range(start: usize, end: usize, step: usize) -> KeyPositions {
        KeyPositions {
            start,
            end,
            step: step.max(1),
            ..KeyPositions::NONE
        }
    }

    fn single(pos: usize) -> KeyPositions {
        KeyPositions::range(pos, pos + 1, 1)
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.lead.is_none() && self.tail.is_none() && self.start >= self.end
    }
}

impl Iterator for KeyPositions {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if let Some(p) = self.lead.take() {
            return Some(p);
        }
        if self.start < self.end {
            let p = self.start;
            // Saturating: `end` bounds the range, overflow would only mean "done".
            self.start = self.start.saturating_add(self.step);
            return Some(p);
        }
        self.tail.take()
    }
}

/// Parses a `numkeys` argument: a plain non-negative decimal that fits in usize.
fn parse_count(arg: &[u8]) -> Option<usize> {
    if arg.is_empty() || arg.len() > 19 || !arg.iter().all(u8::is_ascii_digit) {
        return None;
    }
    arg.iter().try_fold(0usize, |n, &d| {
        n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    })
}

/// Keys `numkeys_at + 1 ..` counted by the `numkeys` argument at `numkeys_at`; none if the
/// count is not a number, zero, or runs past the end of the request.
fn numkeys<A: Args + ?Sized>(args: &A, numkeys_at: usize) -> KeyPositions {
    let Some(n) = parse_count(args.arg_at(numkeys_at)) else {
        return KeyPositions::NONE;
    };
    let start = numkeys_at + 1;
    match start.checked_add(n) {
        Some(end) if end <= args.arg_count() => KeyPositions::range(start, end, 1),
        _ => KeyPositions::NONE,
    }
}

/// Finds the `STREAMS` keyword of XREAD/XREADGROUP, skipping option values (so a group or
/// consumer named `streams` is not mistaken for it) and reporting whether `BLOCK` came first.
/// Returns `(streams position, block seen)`; position `None` on a syntax error.
pub(crate) fn xread_scan<A: Args + ?Sized>(args: &A) -> (Option<usize>, bool) {
    let mut block = false;
    let mut i = 1;
    while i < args.arg_count() {
        let a = args.arg_at(i);
        if a.eq_ignore_ascii_case(b"block") {
            block = true;
            i += 2;
        } else if a.eq_ignore_ascii_case(b"count") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"group") {
            i += 3;
        } else if a.eq_ignore_ascii_case(b"noack") {
            i += 1;
        } else if a.eq_ignore_ascii_case(b"streams") {
            return (Some(i), block);
        } else {
            break;
        }
    }
    (None, block)
}

/// XREAD/XREADGROUP: after `STREAMS` come N keys then N ids; the keys are the first half.
fn xread_keys<A: Args + ?Sized>(args: &A) -> KeyPositions {
    let (Some(streams), _) = xread_scan(args) else {
        return KeyPositions::NONE;
    };
    let rest = args.arg_count() - streams - 1;
    if rest == 0 || !rest.is_multiple_of(2) {
        return KeyPositions::NONE;
    }
    KeyPositions::range(streams + 1, streams + 1 + rest / 2, 1)
}

/// SORT: the sorted key, plus the `STORE` destination. `LIMIT` takes two values and
/// `BY`/`GET` one (patterns, not keys), which are skipped so that e.g. `GET store` is not
/// read as the STORE option. The last STORE wins, as in Redis.
fn sort_keys<A: Args + ?Sized>(args: &A) -> KeyPositions {
    if args.arg_count() < 2 {
        return KeyPositions::NONE;
    }
    let mut store = None;
    let mut i = 2;
    while i < args.arg_count() {
        let a = args.arg_at(i);
        if a.eq_ignore_ascii_case(b"limit") {
            i += 3;
        } else if a.eq_ignore_ascii_case(b"by") || a.eq_ignore_ascii_case(b"get") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"store") && i + 1 < args.arg_count() {
            store = Some(i + 1);
            i += 2;
        } else {
            i += 1;
        }
    }
    KeyPositions {
        tail: store,
        ..KeyPositions::single(1)
    }
}

/// GEORADIUS/GEORADIUSBYMEMBER: the source key plus a `STORE`/`STOREDIST` destination (the
/// last one given wins, as in Redis). Options start after the fixed arguments.
fn georadius_keys<A: Args + ?Sized>(args: &A, options_from: usize) -> KeyPositions {
    if args.arg_count() < 2 {
        return KeyPositions::NONE;
    }
    let mut store = None;
    let mut i = options_from;
    while i < args.arg_count() {
        let a = args.arg_at(i);
        if (a.eq_ignore_ascii_case(b"store") || a.eq_ignore_ascii_case(b"storedist"))
            && i + 1 < args.arg_count()
        {
            store = Some(i + 1);
            i += 2;
        } else {
            i += 1;
        }
    }
    KeyPositions {
        tail: store,
        ..KeyPositions::single(1)
    }
}

/// MIGRATE host port key db timeout [COPY] [REPLACE] [AUTH pw] [AUTH2 user pw] [KEYS k ...]:
/// the key at 3, or, when that is empty, the list after `KEYS`.
fn migrate_keys<A: Args + ?Sized>(args: &A) -> KeyPositions {
    let n = args.arg_count();
    if n < 6 {
        return KeyPositions::NONE;
    }
    let mut i = 6;
    while i < n {
        let a = args.arg_at(i);
        if a.eq_ignore_ascii_case(b"auth") {
            i += 2;
        } else if a.eq_ignore_ascii_case(b"auth2") {
            i += 3;
        } else if a.eq_ignore_ascii_case(b"keys") {
            // Redis rejects KEYS together with a non-empty key argument.
            if !args.arg_at(3).is_empty() {
                return KeyPositions::NONE;
            }
            return KeyPositions::range(i + 1, n, 1);
        } else {
            i += 1;
        }
    }
    KeyPositions::single(3)
}

/// The legacy `(first, last, step)` triple: `last` < 0 counts from the end (-1 = last
/// argument); `first` = 0 or `step` = 0 means no keys; a range reaching past the request
/// (an arity error Redis will report) yields no keys.
fn range_keys(n: usize, info: &CommandInfo) -> KeyPositions {
    let (Ok(first), Ok(step)) = (usize::try_from(info.first_key), usize::try_from(info.step))
    else {
        return KeyPositions::NONE;
    };
    if first == 0 || step == 0 {
        return KeyPositions::NONE;
    }
    let last = if info.last_key < 0 {
        match n.checked_sub(info.last_key.unsigned_abs() as usize) {
            Some(l) => l,
            None => return KeyPositions::NONE,
        }
    } else {
        info.last_key as usize
    };
    if last < first || last >= n {
        return KeyPositions::NONE;
    }
    KeyPositions::range(first, last + 1, step)
}

/// Key positions of `args` (argument 0 being the command name) for the command `info`.
pub fn key_positions<A: Args + ?Sized>(args: &A, info: &CommandInfo) -> KeyPositions {
    match info.name {
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => numkeys(args, 2),
        "zunionstore" | "zinterstore" | "zdiffstore" => {
            let keys = numkeys(args, 2);
            if keys.is_empty() {
                return KeyPositions::NONE;
            }
            KeyPositions {
                lead: Some(1),
                ..keys
            }
        }
        "zunion" | "zinter" | "zdiff" | "sintercard" | "zintercard" | "lmpop" | "zmpop" => {
            numkeys(args, 1)
        }
        "blmpop" | "bzmpop" => numkeys(args, 2),
        "xread" | "xreadgroup" => xread_keys(args),
        "sort" => sort_keys(args),
        // SORT_RO has no STORE option: only the sorted key.
        "sort_ro" if args.arg_count() >= 2 => KeyPositions::single(1),
        "sort_ro" => KeyPositions::NONE,
        "georadius" => georadius_keys(args, 6),
        "georadiusbymember" => georadius_keys(args, 5),
        "migrate" => migrate_keys(args),
        _ => range_keys(args.arg_count(), info),
    }
}
