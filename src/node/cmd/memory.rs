//! MEMORY USAGE / DOCTOR / PURGE / HELP. Sizes are estimates in the spirit of Redis's (entry,
//! key and object headers plus the payload), not allocator measurements.

use super::{Args, Command, Ctx, Flags, Reply, Value};
use crate::node::args::{parse_int, syntax, NOT_INT};

/// The memory family.
pub static COMMANDS: &[Command] = &[Command::new("memory", memory, -2, Flags::READONLY)
    .has_subcommands()
    .keys(2, 2, 1)];

/// Per-key overhead: dict entry, key header, object header.
const KEY_OVERHEAD: usize = 56;
/// Per-element overhead inside aggregates.
const ELEMENT_OVERHEAD: usize = 16;

fn memory(ctx: &mut Ctx, args: &Args) -> Reply {
    if args.is(1, "USAGE") && args.len() >= 3 {
        let mut i = 3;
        while i < args.len() {
            if args.is(i, "SAMPLES") && i + 1 < args.len() {
                if parse_int(args.get(i + 1)).is_none() {
                    return Reply::error(NOT_INT);
                }
                i += 2;
            } else {
                return syntax();
            }
        }
        let key_len = args.get(2).len();
        match ctx.lookup(args.get(2)) {
            None => Reply::Null,
            Some(v) => Reply::Int((KEY_OVERHEAD + key_len + payload(v)) as i64),
        }
    } else if args.is(1, "DOCTOR") && args.len() == 2 {
        Reply::Verbatim("Sam, I detected no issues in this instance.".into())
    } else if args.is(1, "PURGE") && args.len() == 2 {
        Reply::Ok
    } else if ["USAGE", "DOCTOR", "PURGE"].iter().any(|w| args.is(1, w)) {
        super::subcommand_arity(args)
    } else {
        super::subcommand_error(args, "MEMORY")
    }
}

/// Approximate bytes a value takes.
fn payload(v: &Value) -> usize {
    let el = |n: usize| n + ELEMENT_OVERHEAD;
    match v {
        Value::Str(s) => s.len() + 8,
        Value::List(l) => l.iter().map(|e| el(e.len())).sum(),
        Value::Set(s) => s.iter().map(|e| el(e.len())).sum(),
        Value::Hash(h) => h.iter().map(|(k, v)| el(k.len() + v.len())).sum(),
        Value::ZSet(z) => z.iter().map(|(m, _)| el(m.len() + 8) * 2).sum(),
    }
}
