//! `COMMAND` and its subcommands: the node's commands described as Redis 7.0 describes them
//! (INFO, LIST with FILTERBY, COUNT, DOCS), and where a call's keys are (GETKEYS,
//! GETKEYSANDFLAGS) from Redis's own key specs ([`keyspec`]).

use super::keyspec::{self, flag_names};
use super::{all, lookup, Args, Command, Ctx, Flags, Reply};
use crate::node::args::syntax;

/// `COMMAND [COUNT|LIST|INFO|DOCS|GETKEYS|GETKEYSANDFLAGS ...]`
pub(crate) fn command(_ctx: &mut Ctx, args: &Args) -> Reply {
    let n = args.len();
    if n == 1 {
        return Reply::Array(all().map(entry).collect());
    }
    if args.is(1, "COUNT") && n == 2 {
        Reply::Int(all().count() as i64)
    } else if args.is(1, "LIST") {
        list(args)
    } else if args.is(1, "INFO") {
        if n == 2 {
            return Reply::Array(all().map(entry).collect());
        }
        Reply::Array(
            args.from(2)
                .map(|name| lookup(name).map_or(Reply::Null, entry))
                .collect(),
        )
    } else if args.is(1, "DOCS") {
        // Client libraries only need to know the command exists; the docs are left empty.
        let names: Vec<&'static str> = if n == 2 {
            all().map(|c| c.name).collect()
        } else {
            args.from(2).filter_map(lookup).map(|c| c.name).collect()
        };
        Reply::Map(
            names
                .into_iter()
                .map(|name| (Reply::bulk(name.as_bytes()), Reply::Map(vec![])))
                .collect(),
        )
    } else if (args.is(1, "GETKEYS") || args.is(1, "GETKEYSANDFLAGS")) && n >= 4 {
        getkeys(args, args.is(1, "GETKEYSANDFLAGS"))
    } else if ["COUNT", "GETKEYS", "GETKEYSANDFLAGS"]
        .iter()
        .any(|w| args.is(1, w))
    {
        super::subcommand_arity(args)
    } else {
        super::subcommand_error(args, "COMMAND")
    }
}

/// One COMMAND INFO entry, Redis 7.0's ten fields (no key specs, tips or subcommands);
/// `movablekeys` and the ACL categories come from Redis's table.
fn entry(c: &Command) -> Reply {
    let status = |s: &str| Reply::Simple(s.to_string().into());
    let spec = keyspec::entry(c.name);
    let mut flags: Vec<Reply> = c.flags.names().map(status).collect();
    if spec.is_some_and(|s| s.movable) {
        flags.push(status("movablekeys"));
    }
    let cats = match spec {
        Some(s) => s.categories.iter().map(|c| status(c)).collect(),
        None => own_categories(c).into_iter().map(status).collect(),
    };
    Reply::Array(vec![
        Reply::bulk(c.name.as_bytes()),
        Reply::Int(i64::from(c.arity)),
        Reply::Set(flags),
        Reply::Int(i64::from(c.first_key)),
        Reply::Int(i64::from(c.last_key)),
        Reply::Int(i64::from(c.key_step)),
        Reply::Set(cats),
        Reply::Set(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
    ])
}

/// Categories from the node's flags, for a command Redis 7.0 does not have.
fn own_categories(c: &Command) -> Vec<&'static str> {
    let mut cats = Vec::new();
    for (f, name) in [
        (Flags::WRITE, "@write"),
        (Flags::READONLY, "@read"),
        (Flags::ADMIN, "@admin"),
        (Flags::ADMIN, "@dangerous"),
        (Flags::PUBSUB, "@pubsub"),
        (Flags::BLOCKING, "@blocking"),
    ] {
        if c.flags.has(f) {
            cats.push(name);
        }
    }
    cats.push(if c.flags.has(Flags::FAST) {
        "@fast"
    } else {
        "@slow"
    });
    cats
}

/// Every name COMMAND LIST shows: the node's commands and, for containers, Redis's
/// subcommands of them (`config|get`).
fn listed_names() -> impl Iterator<Item = (&'static str, Option<&'static keyspec::Entry>)> {
    all().flat_map(|c| {
        let own = std::iter::once((c.name, keyspec::entry(c.name)));
        let subs = keyspec::subcommands(c.name)
            .into_iter()
            .map(|e| (e.name, Some(e)));
        own.chain(subs)
    })
}

/// `COMMAND LIST [FILTERBY MODULE m|ACLCAT cat|PATTERN p]`
fn list(args: &Args) -> Reply {
    let n = args.len();
    let filter = match n {
        2 => None,
        5 if args.is(2, "FILTERBY") => {
            let what = args.get(4);
            if args.is(3, "MODULE") || args.is(3, "ACLCAT") || args.is(3, "PATTERN") {
                Some((args.get(3).to_ascii_lowercase(), what))
            } else {
                return syntax();
            }
        }
        _ => return syntax(),
    };
    let keep = |name: &str, e: Option<&keyspec::Entry>| match &filter {
        None => true,
        Some((kind, what)) => match kind.as_slice() {
            b"pattern" => crate::node::glob::matches_case(what, name.as_bytes(), true),
            b"aclcat" => e.is_some_and(|e| {
                e.categories.iter().any(|c| {
                    c.as_bytes()
                        .get(1..)
                        .is_some_and(|c| c.eq_ignore_ascii_case(what))
                })
            }),
            // No modules in node mode.
            _ => false,
        },
    };
    Reply::Array(
        listed_names()
            .filter(|(name, e)| keep(name, *e))
            .map(|(name, _)| Reply::bulk(name.as_bytes()))
            .collect(),
    )
}

/// `COMMAND GETKEYS|GETKEYSANDFLAGS cmd arg...`, Redis's `getKeysSubcommandImpl`.
fn getkeys(args: &Args, with_flags: bool) -> Reply {
    let argv: Vec<&[u8]> = args.from(2).collect();
    let spec = keyspec::resolve(&argv).filter(|_| lookup(argv[0]).is_some());
    let Some(spec) = spec else {
        return Reply::error("ERR Invalid command specified");
    };
    if !spec.has_keys() {
        return Reply::error("ERR The command has no key arguments");
    }
    if !arity_ok(spec.name, &argv) {
        return Reply::error("ERR Invalid number of arguments specified for command");
    }
    let keys = spec.keys(&argv);
    if keys.is_empty() {
        let optional = crate::command::lookup_name(spec.name.as_bytes())
            .is_some_and(|c| c.flags & crate::command::flags::NO_MANDATORY_KEYS != 0);
        return if optional {
            Reply::Array(vec![])
        } else {
            Reply::error("ERR Invalid arguments specified for command")
        };
    }
    Reply::Array(
        keys.into_iter()
            .map(|(pos, flags)| {
                let key = Reply::bulk(argv[pos]);
                if with_flags {
                    let names = flag_names(flags)
                        .map(|f| Reply::Simple(f.to_string().into()))
                        .collect();
                    Reply::Array(vec![key, Reply::Set(names)])
                } else {
                    key
                }
            })
            .collect(),
    )
}

/// Redis's arity of the command or subcommand `name` for `argv`, from the proxy's copy of
/// Redis's table (it has the subcommands' arities; the node's table has its containers').
fn arity_ok(name: &str, argv: &[&[u8]]) -> bool {
    let arity = crate::command::lookup_name(name.as_bytes())
        .map(|c| i64::from(c.arity))
        .or_else(|| lookup(argv[0]).map(|c| i64::from(c.arity)))
        .unwrap_or(0);
    let argc = argv.len() as i64;
    if arity >= 0 {
        argc == arity
    } else {
        argc >= -arity
    }
}
