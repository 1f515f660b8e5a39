//! Unit tests over argument slices (the request decoder is tested elsewhere).

use super::*;

fn args(line: &str) -> Vec<&[u8]> {
    line.split(' ').map(str::as_bytes).collect()
}

fn read(line: &str) -> bool {
    let a = args(line);
    is_read_args(&a[..], lookup_args(&a[..]))
}

fn blocking(line: &str) -> bool {
    let a = args(line);
    is_blocking_args(&a[..], lookup_args(&a[..]))
}

fn keys_of(line: &str) -> Vec<String> {
    let a = args(line);
    let info = lookup_args(&a[..]).unwrap_or_else(|| panic!("{line}: unknown"));
    keys_args(&a[..], info)
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

#[test]
fn table_loads_every_row() {
    let t = &*table::TABLE;
    assert_eq!(
        t.rows.len(),
        t.data_lines,
        "a row of commands.tsv failed to parse"
    );
    assert_eq!(table().len(), 366);
    assert_eq!(table().iter().filter(|i| i.name.contains('|')).count(), 126);
    assert!(table().windows(2).all(|w| w[0].name < w[1].name));
}

#[test]
fn lookup_is_case_insensitive_and_finds_subcommands() {
    assert_eq!(lookup_name(b"GeT").map(|i| i.name), Some("get"));
    assert_eq!(
        lookup_name(b"CONFIG|SET").map(|i| i.name),
        Some("config|set")
    );
    assert_eq!(
        lookup_args(&args("Config sEt a b")[..]).map(|i| i.name),
        Some("config|set")
    );
    assert_eq!(
        lookup_args(&args("object FREQ k")[..]).map(|i| i.name),
        Some("object|freq")
    );
    // A non-container's second argument is not a subcommand.
    assert_eq!(
        lookup_args(&args("GET config")[..]).map(|i| i.name),
        Some("get")
    );
    // A container with an unknown or missing subcommand is the container row.
    assert_eq!(
        lookup_args(&args("CONFIG bogus")[..]).map(|i| i.name),
        Some("config")
    );
    assert_eq!(
        lookup_args(&args("CONFIG")[..]).map(|i| i.name),
        Some("config")
    );
    assert_eq!(lookup_name(b"nosuchcommand"), None);
    assert_eq!(lookup_name(b""), None);
    assert_eq!(lookup_args::<[&[u8]]>(&[]), None);
    // Longer than the stack buffer: unknown, no panic.
    assert_eq!(lookup_name(&[b'a'; 1000]), None);
    let long_sub = [b"config".as_slice(), &[b'x'; 1000]];
    assert_eq!(lookup_args(&long_sub[..]).map(|i| i.name), Some("config"));
    // Non-ASCII and non-UTF-8 bytes are just unknown.
    assert_eq!(lookup_name(b"g\xffet"), None);
    assert_eq!(lookup_name("GÉT".as_bytes()), None);
}

#[test]
fn row_contents() {
    let get = lookup_name(b"get").unwrap();
    assert_eq!(
        (get.arity, get.first_key, get.last_key, get.step),
        (2, 1, 1, 1)
    );
    assert!(get.has(flags::READONLY | flags::FAST));
    let mset = lookup_name(b"mset").unwrap();
    assert_eq!(
        (mset.arity, mset.first_key, mset.last_key, mset.step),
        (-3, 1, -1, 2)
    );
    assert!(lookup_name(b"xread")
        .unwrap()
        .has(flags::BLOCKING | flags::MOVABLEKEYS));
    assert!(lookup_name(b"config|set").unwrap().has(flags::ADMIN));
}

#[test]
fn read_classification() {
    let reads = [
        "GET k",
        "MGET a b",
        "HGETALL h",
        "EXISTS a b",
        "TTL k",
        "PTTL k",
        "TYPE k",
        "STRLEN k",
        "GETRANGE k 0 1",
        "LRANGE l 0 -1",
        "SMEMBERS s",
        "ZRANGE z 0 -1",
        "ZSCORE z m",
        "XRANGE s - +",
        "XLEN s",
        "PFCOUNT h",
        "BITCOUNT k",
        "GEOSEARCH g FROMMEMBER m BYRADIUS 1 km",
        "GEORADIUS_RO g 0 0 1 km",
        "SCAN 0",
        "KEYS *",
        "DBSIZE",
        "RANDOMKEY",
        "DUMP k",
        "OBJECT ENCODING k",
        "MEMORY USAGE k",
        "XINFO STREAM s",
        "XREAD COUNT 1 STREAMS s 0",
        "EVAL_RO x 0",
        "EVALSHA_RO x 1 k",
        "FCALL_RO f 0",
        "SORT_RO k",
        "get k",
    ];
    let not_reads = [
        "SET k v",
        "DEL k",
        "EXPIRE k 1",
        "SORT k",
        "GEORADIUS g 0 0 1 km",
        "XREAD BLOCK 0 STREAMS s $",
        "XREADGROUP GROUP g c STREAMS s >",
        "BLPOP l 0",
        "EVAL x 0",
        "EVALSHA x 0",
        "FCALL f 0",
        "PUBLISH c m",
        "SUBSCRIBE c",
        "PUBSUB CHANNELS",
        "PUBSUB NUMSUB c",
        "CONFIG GET maxmemory",
        "CONFIG SET maxmemory 1",
        "SAVE",
        "BGSAVE",
        "FLUSHALL",
        "FLUSHDB",
        "INFO",
        "CLIENT LIST",
        "CLIENT GETNAME",
        "COMMAND",
        "COMMAND INFO get",
        "SLOWLOG GET",
        "LATENCY LATEST",
        "MEMORY DOCTOR",
        "MEMORY STATS",
        "TIME",
        "LASTSAVE",
        "ROLE",
        "MODULE LIST",
        "ACL WHOAMI",
        "FUNCTION LIST",
        "SCRIPT EXISTS abc",
        "WAIT 1 0",
        "PING",
        "ECHO x",
        "MULTI",
        "EXEC",
        "SELECT 1",
        "CONFIG bogus",
        "NOSUCHCOMMAND k",
    ];
    for r in reads {
        assert!(read(r), "{r} should be a read");
    }
    for w in not_reads {
        assert!(!read(w), "{w} should not be a read");
    }
    assert!(!is_read_args(&args("GET k")[..], None), "unknown info");
}

#[test]
fn blocking_classification() {
    for b in [
        "BLPOP l 0",
        "brpop l 1",
        "BRPOPLPUSH a b 0",
        "BLMOVE a b LEFT RIGHT 0",
        "BLMPOP 0 1 l LEFT",
        "BZPOPMIN z 0",
        "BZPOPMAX z 0",
        "BZMPOP 0 1 z MIN",
        "WAIT 1 0",
        "XREAD BLOCK 0 STREAMS s $",
        "XREAD COUNT 1 block 10 STREAMS s $",
        "XREADGROUP GROUP g c BLOCK 0 STREAMS s >",
        "XREADGROUP GROUP g c NOACK COUNT 1 Block 0 STREAMS s >",
    ] {
        assert!(blocking(b), "{b} should block");
    }
    for nb in [
        "GET k",
        "LPOP l",
        "LMPOP 1 l LEFT",
        "XREAD STREAMS s 0",
        "XREAD COUNT 1 STREAMS s 0",
        // BLOCK after STREAMS is a key or an id, not the option.
        "XREAD STREAMS BLOCK 0",
        "XREAD COUNT block STREAMS s 0",
        // A group or consumer named "block".
        "XREADGROUP GROUP block block STREAMS s >",
        "XREADGROUP GROUP g c STREAMS block >",
        "XREAD",
        "SUBSCRIBE c",
    ] {
        assert!(!blocking(nb), "{nb} should not block");
    }
    assert!(
        !is_blocking_args(&args("BLPOP l 0")[..], None),
        "unknown info"
    );
}

#[test]
fn nil_shapes() {
    for t in [
        "BLPOP l 0",
        "BRPOP l 0",
        "BRPOPLPUSH a b 0",
        "BLMOVE a b LEFT LEFT 0",
        "BZPOPMIN z 0",
        "BZPOPMAX z 0",
        "BLMPOP 0 1 l LEFT",
        "BZMPOP 0 1 z MIN",
        "LMPOP 1 l LEFT",
        "ZMPOP 1 z MIN",
        "XREAD STREAMS s 0",
        "XREADGROUP GROUP g c STREAMS s >",
        "EXEC",
        "exec",
        "LPOP l 2",
        "RPOP l 2",
    ] {
        assert!(nil_is_array_args(&args(t)[..]), "{t}");
    }
    for f in [
        "GET k",
        "LPOP l",
        "RPOP l",
        "SPOP s",
        "SPOP s 2",
        "SRANDMEMBER s 2",
        "ZRANDMEMBER z",
        "HRANDFIELD h 2",
        "RPOPLPUSH a b",
        "NOSUCH",
    ] {
        assert!(!nil_is_array_args(&args(f)[..]), "{f}");
    }
    assert!(!nil_is_array_args::<[&[u8]]>(&[]));
}

#[test]
fn keys_fixed_positions() {
    assert_eq!(keys_of("GET k"), ["k"]);
    assert_eq!(keys_of("MGET a b c"), ["a", "b", "c"]);
    assert_eq!(keys_of("MSET a 1 b 2"), ["a", "b"]);
    assert_eq!(keys_of("BLPOP a b 0"), ["a", "b"]);
    assert_eq!(keys_of("RENAME a b"), ["a", "b"]);
    assert_eq!(keys_of("OBJECT ENCODING k"), ["k"]);
    assert!(keys_of("PING").is_empty());
    assert!(keys_of("CONFIG GET x").is_empty());
    // Too few arguments for the range (an arity error Redis will report): no keys.
    assert!(keys_of("GET").is_empty());
    assert!(keys_of("BLPOP").is_empty());
    assert!(keys_of("RENAME a").is_empty());
    // step 0 or first 0: none.
    let odd = CommandInfo {
        name: "x",
        arity: -1,
        flags: 0,
        first_key: 1,
        last_key: -1,
        step: 0,
        special: crate::command::Special::None,
        hidden_may_replicate: false,
    };
    assert_eq!(keys_args(&args("x a b")[..], &odd).count(), 0);
    let neg = CommandInfo {
        first_key: -1,
        step: 1,
        ..odd.clone()
    };
    assert_eq!(keys_args(&args("x a b")[..], &neg).count(), 0);
    let far = CommandInfo {
        last_key: -1000,
        step: 1,
        ..odd
    };
    assert_eq!(keys_args(&args("x a b")[..], &far).count(), 0);
}

#[test]
fn keys_numkeys_commands() {
    assert_eq!(keys_of("EVAL s 2 a b x"), ["a", "b"]);
    assert_eq!(keys_of("evalsha s 1 a x"), ["a"]);
    assert_eq!(keys_of("EVAL_RO s 0 x"), Vec::<String>::new());
    assert_eq!(keys_of("EVALSHA_RO s 1 a"), ["a"]);
    assert_eq!(keys_of("FCALL f 2 a b"), ["a", "b"]);
    assert_eq!(keys_of("FCALL_RO f 1 a"), ["a"]);
    assert_eq!(keys_of("ZUNIONSTORE d 2 a b WEIGHTS 1 2"), ["d", "a", "b"]);
    assert_eq!(keys_of("ZINTERSTORE d 1 a"), ["d", "a"]);
    assert_eq!(keys_of("ZDIFFSTORE d 2 a b"), ["d", "a", "b"]);
    assert_eq!(keys_of("ZUNION 2 a b WITHSCORES"), ["a", "b"]);
    assert_eq!(keys_of("ZINTER 1 a"), ["a"]);
    assert_eq!(keys_of("ZDIFF 2 a b"), ["a", "b"]);
    assert_eq!(keys_of("SINTERCARD 2 a b LIMIT 1"), ["a", "b"]);
    assert_eq!(keys_of("ZINTERCARD 1 a"), ["a"]);
    assert_eq!(keys_of("LMPOP 2 a b LEFT"), ["a", "b"]);
    assert_eq!(keys_of("ZMPOP 1 a MIN"), ["a"]);
    assert_eq!(keys_of("BLMPOP 0 2 a b LEFT"), ["a", "b"]);
    assert_eq!(keys_of("BZMPOP 0 1 a MIN"), ["a"]);
    // Malformed counts: no keys, no panic.
    for bad in [
        "EVAL s x a",
        "EVAL s -1 a",
        "EVAL s 3 a b",
        "EVAL s 99999999999999999999999 a",
        "EVAL s 18446744073709551615 a",
        "EVAL s",
        "EVAL s +1 a",
        "ZUNIONSTORE d 5 a",
        "ZUNIONSTORE d x a",
        "ZUNIONSTORE d",
        "LMPOP 2 a",
        "BLMPOP 0",
    ] {
        assert!(keys_of(bad).is_empty(), "{bad}");
    }
}

#[test]
fn keys_option_scanning_commands() {
    assert_eq!(keys_of("XREAD COUNT 2 STREAMS a b 0 0"), ["a", "b"]);
    assert_eq!(keys_of("XREAD BLOCK 0 STREAMS a $"), ["a"]);
    assert_eq!(
        keys_of("XREADGROUP GROUP streams c NOACK STREAMS a >"),
        ["a"]
    );
    assert!(keys_of("XREAD STREAMS a b 0").is_empty(), "odd count");
    assert!(keys_of("XREAD STREAMS").is_empty());
    assert!(keys_of("XREAD COUNT 1").is_empty());
    assert!(keys_of("XREAD BOGUS STREAMS a 0").is_empty());
    assert_eq!(keys_of("SORT k"), ["k"]);
    assert_eq!(
        keys_of("SORT k BY w GET store LIMIT 0 1 STORE d"),
        ["k", "d"]
    );
    assert_eq!(keys_of("SORT k STORE d1 STORE d2"), ["k", "d2"]);
    assert_eq!(keys_of("SORT k STORE"), ["k"]);
    assert_eq!(keys_of("SORT_RO k BY w GET #"), ["k"]);
    assert_eq!(keys_of("GEORADIUS g 0 0 1 km STORE d"), ["g", "d"]);
    assert_eq!(
        keys_of("GEORADIUSBYMEMBER g m 1 km STOREDIST d"),
        ["g", "d"]
    );
    assert_eq!(keys_of("GEORADIUS g 0 0 1 km"), ["g"]);
    assert_eq!(keys_of("MIGRATE h 1 k 0 100"), ["k"]);
    assert_eq!(keys_of("MIGRATE h 1  0 100 COPY KEYS a b"), ["a", "b"]);
    assert_eq!(keys_of("MIGRATE h 1  0 100 AUTH keys KEYS a"), ["a"]);
    assert_eq!(keys_of("MIGRATE h 1  0 100 AUTH2 keys keys KEYS a"), ["a"]);
    assert!(
        keys_of("MIGRATE h 1 k 0 100 KEYS a").is_empty(),
        "KEYS with a key"
    );
    assert!(keys_of("MIGRATE h 1 k").is_empty());
}

#[test]
fn key_positions_iterate_in_order() {
    let a = args("ZUNIONSTORE d 2 a b");
    let info = lookup_args(&a[..]).unwrap();
    assert_eq!(key_positions(&a[..], info).collect::<Vec<_>>(), [1, 3, 4]);
    assert!(KeyPositions::NONE.is_empty());
    assert!(!key_positions(&a[..], info).is_empty());
}

/// Hostile inputs never panic in any of the predicates.
#[test]
fn no_panics_on_garbage() {
    let samples: &[&[&[u8]]] = &[
        &[],
        &[b""],
        &[b"", b""],
        &[b"\xff\xfe"],
        &[b"xread", b"block"],
        &[b"xreadgroup", b"group"],
        &[b"sort", b"k", b"limit"],
        &[b"migrate", b"", b"", b"", b"", b"", b"auth2"],
        &[b"georadius", b"g", b"store"],
        &[b"eval", b"", b"18446744073709551616"],
    ];
    for s in samples {
        let info = lookup_args(*s);
        let _ = is_read_args(*s, info);
        let _ = is_blocking_args(*s, info);
        let _ = nil_is_array_args(*s);
        for row in table() {
            let _ = keys_args(*s, row).count();
            let _ = is_read_args(*s, Some(row));
            let _ = is_blocking_args(*s, Some(row));
        }
    }
}

/// A blocking command re-sent after a redirect waits only what is left of its timeout.
#[test]
fn blocking_timeouts_shrink_by_the_time_spent() {
    use std::time::Duration;
    let shrunk = |args: &[&str], ms: u64| {
        let r = Request::from_args(args);
        with_remaining_timeout(&r, lookup(&r), Duration::from_millis(ms))
            .map(|raw| String::from_utf8_lossy(&raw).replace("\r\n", " "))
    };
    assert_eq!(
        shrunk(&["BLPOP", "a", "b", "5"], 1500).as_deref(),
        Some("*4 $5 BLPOP $1 a $1 b $5 3.500 ")
    );
    assert_eq!(
        shrunk(&["BLMPOP", "2.5", "1", "k", "LEFT"], 3000).as_deref(),
        Some("*5 $6 BLMPOP $5 0.001 $1 1 $1 k $4 LEFT ")
    );
    assert_eq!(
        shrunk(
            &["XREAD", "COUNT", "2", "BLOCK", "1000", "STREAMS", "s", "$"],
            250
        )
        .as_deref(),
        Some("*8 $5 XREAD $5 COUNT $1 2 $5 BLOCK $3 750 $7 STREAMS $1 s $1 $ ")
    );
    // A stream named "block" is not the option.
    assert_eq!(shrunk(&["XREAD", "STREAMS", "block", "5"], 10), None);
    // Forever stays forever; other commands and bad timeouts are left alone.
    assert_eq!(shrunk(&["BLPOP", "a", "0"], 1500), None);
    assert_eq!(shrunk(&["BRPOP", "a", "soon"], 1500), None);
    assert_eq!(shrunk(&["GET", "a"], 1500), None);
}

/// Found by the command_classifier fuzz target: a bare `BLMPOP` gave timeout index 1, past
/// the end of the request; a request Redis refuses for its arity has no timeout.
#[test]
fn a_blocking_command_with_too_few_arguments_has_no_timeout() {
    for args in [
        &["BLMPOP"][..],
        &["BZMPOP", "1"],
        &["BLPOP"],
        &["BLPOP", "5"],
        &["BLMOVE", "a", "b", "LEFT", "RIGHT"],
        &["XREAD", "BLOCK", "5"],
    ] {
        let r = Request::from_args(args);
        assert_eq!(blocking_timeout_at(&r, lookup(&r)), None, "{args:?}");
    }
    let r = Request::from_args(&["BLMPOP", "1", "1", "k", "LEFT"]);
    assert_eq!(blocking_timeout_at(&r, lookup(&r)), Some((1, false)));
    let r = Request::from_args(&["BLPOP", "k", "5"]);
    assert_eq!(blocking_timeout_at(&r, lookup(&r)), Some((2, false)));
}

#[test]
fn every_row_is_found_by_its_name_in_any_case() {
    for info in table() {
        let upper = info.name.to_ascii_uppercase();
        let found = lookup_name(upper.as_bytes()).map(|i| i.name);
        assert_eq!(found, Some(info.name), "{upper}");
        if let Some((parent, sub)) = upper.split_once('|') {
            let a = [parent.as_bytes(), sub.as_bytes()];
            assert_eq!(lookup_args(&a[..]).map(|i| i.name), Some(info.name));
        }
    }
    // A container with an unknown or overlong subcommand is the container itself.
    let long = "x".repeat(200);
    for sub in ["nosuchsub", long.as_str()] {
        let a = [b"Config".as_slice(), sub.as_bytes()];
        assert_eq!(lookup_args(&a[..]).map(|i| i.name), Some("config"));
    }
    assert!(lookup_name(b"nosuchcommand").is_none());
    assert!(lookup_name(long.as_bytes()).is_none());
    assert!(lookup_name(b"").is_none());
    // A prefix or an extension of a name is not that name.
    assert!(lookup_name(b"ge").is_none());
    assert!(lookup_name(b"gett").is_none());
    assert!(lookup_name(b"config|").is_none());
}
