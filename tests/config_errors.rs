//! The config file contract, through the public API: exact error texts (users and scripts
//! read them), defaults, unit parsing, and the shipped example configs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice::config::{Config, ConfigError, Consistency, Mode, ReadFrom, ReplicaLag, Source};

const FILE: &str = "sluice.toml";

/// A valid standalone pool; tests append keys or pools to it.
const POOL: &str = r#"
[[pools]]
name = "main"
listen = "127.0.0.1:6380"
master = "127.0.0.1:6379"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new(FILE))
}

/// The full `FILE: KEY: REASON` message of a config that must fail.
fn error(text: &str) -> String {
    match parse(text) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(err) => err.to_string(),
    }
}

/// Asserts the message and that it is an `Invalid` with that key.
fn assert_invalid(text: &str, key: &str, reason: &str) {
    match parse(text) {
        Ok(config) => panic!("expected {key}: {reason}, got {config:?}"),
        Err(ConfigError::Invalid {
            file,
            key: got_key,
            reason: got_reason,
        }) => {
            assert_eq!(file, PathBuf::from(FILE));
            assert_eq!((got_key.as_str(), got_reason.as_str()), (key, reason));
        }
        Err(other) => panic!("expected Invalid, got {other}"),
    }
    assert_eq!(error(text), format!("{FILE}: {key}: {reason}"));
}

fn pool_with(extra: &str) -> String {
    format!("{POOL}{extra}\n")
}

#[test]
fn unknown_read_from_value() {
    assert_eq!(
        error(&pool_with(r#"read_from = "replcia""#)),
        r#"sluice.toml: pools[0].read_from: unknown value "replcia", expected one of master, replica, prefer-replica"#
    );
}

#[test]
fn unknown_mode_and_consistency_values() {
    assert_invalid(
        &pool_with(r#"mode = "clustered""#),
        "pools[0].mode",
        r#"unknown value "clustered", expected one of standalone, sentinel, cluster"#,
    );
    assert_invalid(
        &pool_with(r#"consistency = "strong""#),
        "pools[0].consistency",
        r#"unknown value "strong", expected one of eventual, read-your-writes"#,
    );
}

#[test]
fn invalid_listen_address() {
    let text = POOL.replace("127.0.0.1:6380", "127.0.0.1:99999");
    assert_eq!(
        error(&text),
        r#"sluice.toml: pools[0].listen: invalid socket address "127.0.0.1:99999""#
    );
    // Listen addresses are IPs, not hostnames: they are bound, not resolved.
    let text = POOL.replace("127.0.0.1:6380", "localhost:6380");
    assert_invalid(
        &text,
        "pools[0].listen",
        r#"invalid socket address "localhost:6380""#,
    );
    assert_invalid(
        &format!("[admin]\nlisten = \"nowhere\"\n{POOL}"),
        "admin.listen",
        r#"invalid socket address "nowhere""#,
    );
}

#[test]
fn standalone_requires_master() {
    let text = "[[pools]]\nname = \"main\"\nlisten = \"127.0.0.1:6380\"\n";
    assert_eq!(
        error(text),
        r#"sluice.toml: pools[0].master: required when mode = "standalone""#
    );
}

#[test]
fn sentinel_requires_sentinels_and_master_name() {
    let base = "[[pools]]\nname = \"s\"\nlisten = \"127.0.0.1:6380\"\nmode = \"sentinel\"\n";
    assert_eq!(
        error(&format!("{base}master_name = \"mymaster\"\n")),
        r#"sluice.toml: pools[0].sentinels: required when mode = "sentinel""#
    );
    assert_eq!(
        error(&format!("{base}sentinels = [\"127.0.0.1:26379\"]\n")),
        r#"sluice.toml: pools[0].master_name: required when mode = "sentinel""#
    );
    assert_invalid(
        &format!("{base}sentinels = []\nmaster_name = \"m\"\n"),
        "pools[0].sentinels",
        "must list at least one host:port address",
    );
}

#[test]
fn cluster_requires_seeds() {
    let text = "[[pools]]\nname = \"c\"\nlisten = \"127.0.0.1:6380\"\nmode = \"cluster\"\n";
    assert_eq!(
        error(text),
        r#"sluice.toml: pools[0].seeds: required when mode = "cluster""#
    );
}

#[test]
fn cluster_refuses_what_it_cannot_honour() {
    let pool = "[[pools]]\nname = \"c\"\nlisten = \"127.0.0.1:6380\"\nmode = \"cluster\"\n\
                seeds = [\"127.0.0.1:7000\"]\n";
    assert_invalid(
        &format!("{pool}consistency = \"read-your-writes\"\n"),
        "pools[0].consistency",
        r#""read-your-writes" is not supported when mode = "cluster""#,
    );
    assert_invalid(
        &format!("{pool}max_replica_lag = \"2s\"\n"),
        "pools[0].max_replica_lag",
        r#"must be a size when mode = "cluster" (the cluster reports replication offsets, not ack times), e.g. "1MiB""#,
    );
    assert!(parse(&format!("{pool}max_replica_lag = \"1MiB\"\n")).is_ok());
}

#[test]
fn keys_of_another_mode_are_rejected() {
    assert_invalid(
        &pool_with(r#"seeds = ["127.0.0.1:7000"]"#),
        "pools[0].seeds",
        r#"only used when mode = "cluster", but mode = "standalone""#,
    );
    let text = "[[pools]]\nname = \"c\"\nlisten = \"127.0.0.1:6380\"\nmode = \"cluster\"\n\
                seeds = [\"h:7000\"]\nmaster = \"h:6379\"\n";
    assert_invalid(
        text,
        "pools[0].master",
        r#"only used when mode = "standalone", but mode = "cluster""#,
    );
}

#[test]
fn duplicate_listen_and_name() {
    let second =
        "[[pools]]\nname = \"other\"\nlisten = \"127.0.0.1:6380\"\nmaster = \"127.0.0.1:6379\"\n";
    assert_eq!(
        error(&format!("{POOL}{second}")),
        "sluice.toml: pools[1].listen: 127.0.0.1:6380 is already used by pools[0]"
    );
    let second =
        "[[pools]]\nname = \"main\"\nlisten = \"127.0.0.1:6390\"\nmaster = \"127.0.0.1:6379\"\n";
    assert_eq!(
        error(&format!("{POOL}{second}")),
        r#"sluice.toml: pools[1].name: "main" is already used by pools[0]"#
    );
    // A wildcard address takes the port on every interface.
    let second =
        "[[pools]]\nname = \"b\"\nlisten = \"0.0.0.0:6380\"\nmaster = \"127.0.0.1:6379\"\n";
    assert_invalid(
        &format!("{POOL}{second}"),
        "pools[1].listen",
        "0.0.0.0:6380 overlaps 127.0.0.1:6380 of pools[0]",
    );
    // The admin server cannot share a pool's port either.
    assert_invalid(
        &format!("[admin]\nlisten = \"127.0.0.1:6380\"\n{POOL}"),
        "admin.listen",
        "127.0.0.1:6380 is already used by pools[0]",
    );
}

#[test]
fn port_zero_never_conflicts() {
    let pool = |name: &str| {
        format!(
            "[[pools]]\nname = \"{name}\"\nlisten = \"127.0.0.1:0\"\nmaster = \"127.0.0.1:6379\"\n"
        )
    };
    let config = parse(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n{}{}",
        pool("a"),
        pool("b")
    ))
    .expect("port 0 lets the OS choose, so it can repeat");
    assert_eq!(config.pools.len(), 2);
}

#[test]
fn unknown_keys() {
    let message = error(&pool_with(r#"raed_from = "replica""#));
    assert!(
        message.starts_with(
            "sluice.toml: pools[0].raed_from: unknown key, expected one of name, listen, mode,"
        ),
        "{message}"
    );
    assert!(message.contains("read_from"), "{message}");
    assert_invalid(
        &format!("[admin]\nlisten = \"127.0.0.1:9121\"\nport = 1\n{POOL}"),
        "admin.port",
        "unknown key, expected one of listen, max_connections, idle_timeout, allow_remote_reload, reload_token",
    );
    assert_invalid(
        &format!("verbose = true\n{POOL}"),
        "verbose",
        "unknown key, expected one of drain_timeout, admin, pools",
    );
}

#[test]
fn at_least_one_pool() {
    assert_eq!(
        error(""),
        "sluice.toml: pools: at least one pool is required"
    );
    assert_eq!(
        error("pools = []\n[admin]\nlisten = \"127.0.0.1:9121\"\n"),
        "sluice.toml: pools: at least one pool is required"
    );
    // A classic TOML slip: a key after [admin] belongs to [admin].
    assert_invalid(
        "[admin]\nlisten = \"127.0.0.1:9121\"\npools = []\n",
        "admin.pools",
        "unknown key, expected one of listen, max_connections, idle_timeout, allow_remote_reload, reload_token",
    );
}

#[test]
fn pools_written_as_a_single_table() {
    assert_invalid(
        "[pools]\nname = \"main\"\n",
        "pools",
        "expected an array of tables: write [[pools]], not [pools]",
    );
}

#[test]
fn invalid_duration() {
    assert_eq!(
        error(&pool_with(r#"request_timeout = "5 parsecs""#)),
        r#"sluice.toml: pools[0].request_timeout: invalid duration "5 parsecs", expected e.g. "250ms", "2s", "1m""#
    );
    assert_invalid(
        &pool_with("connect_timeout = -3"),
        "pools[0].connect_timeout",
        r#"invalid duration -3, expected e.g. "250ms", "2s", "1m""#,
    );
    assert_invalid(
        &pool_with(r#"health_check_interval = "0s""#),
        "pools[0].health_check_interval",
        "must be greater than zero",
    );
    assert_invalid(
        &pool_with("request_timeout = 1.5"),
        "pools[0].request_timeout",
        r#"invalid type: floating point `1.5`, expected an integer or a string with a unit such as "2s" or "1MiB""#,
    );
}

#[test]
fn syntax_errors_have_line_and_column() {
    let message = error("[[pools]]\nname = \"main\nlisten = \"127.0.0.1:6380\"\n");
    assert!(
        message.starts_with("sluice.toml: syntax: line 2, column "),
        "{message}"
    );
    let message = error("[[pools]]\nname = \"a\"\nname = \"b\"\n");
    assert!(
        message.starts_with("sluice.toml: syntax: line 3, column 1: duplicate key"),
        "{message}"
    );
}

#[test]
fn wrong_toml_types_name_the_key() {
    assert_invalid(
        &POOL.replace("\"127.0.0.1:6380\"", "6380"),
        "pools[0].listen",
        "invalid type: integer `6380`, expected a string",
    );
    assert_invalid(
        &pool_with(r#"replicas = "127.0.0.1:6381""#),
        "pools[0].replicas",
        r#"invalid type: string "127.0.0.1:6381", expected an array"#,
    );
}

#[test]
fn node_addresses() {
    assert_invalid(
        &POOL.replace("127.0.0.1:6379", "redis-master"),
        "pools[0].master",
        r#"invalid address "redis-master", expected host:port"#,
    );
    assert_invalid(
        &pool_with(r#"replicas = ["127.0.0.1:6381", "127.0.0.1:70000"]"#),
        "pools[0].replicas[1]",
        r#"invalid port in "127.0.0.1:70000", expected 1-65535"#,
    );
    assert_invalid(
        &pool_with(r#"replicas = ["127.0.0.1:6379"]"#),
        "pools[0].replicas[0]",
        r#""127.0.0.1:6379" is the master"#,
    );
    assert_invalid(
        &pool_with(r#"replicas = ["r1:6379", "r1:6379"]"#),
        "pools[0].replicas[1]",
        r#""r1:6379" is already listed as pools[0].replicas[0]"#,
    );
    assert_invalid(
        &POOL.replace("127.0.0.1:6379", "::1:6379"),
        "pools[0].master",
        r#"invalid address "::1:6379", write IPv6 addresses as [addr]:port"#,
    );
    // Hostnames and bracketed IPv6 are kept as written.
    let config = parse(&pool_with(
        r#"replicas = ["redis-replica-1.internal:6379", "[::1]:6381"]"#,
    ))
    .expect("hostnames and [v6]:port are valid");
    assert_eq!(
        config.pools[0].source,
        Source::Standalone {
            master: "127.0.0.1:6379".into(),
            replicas: vec!["redis-replica-1.internal:6379".into(), "[::1]:6381".into()],
        }
    );
}

#[test]
fn allow_commands_are_normalised() {
    let config = parse(&pool_with(
        r#"allow_commands = ["config", "Debug", "config  set", "CONFIG"]"#,
    ))
    .expect("valid allow_commands");
    assert_eq!(
        config.pools[0].allow_commands,
        ["CONFIG", "DEBUG", "CONFIG SET"]
    );
    assert_invalid(
        &pool_with(r#"allow_commands = ["CONFIG", " "]"#),
        "pools[0].allow_commands[1]",
        "empty command name",
    );
    assert_invalid(
        &pool_with(r#"allow_commands = [""]"#),
        "pools[0].allow_commands[0]",
        "empty command name",
    );
}

#[test]
fn credentials() {
    assert_invalid(
        &pool_with(r#"password = """#),
        "pools[0].password",
        "must not be empty (remove the key instead)",
    );
    assert_invalid(
        &pool_with(r#"backend_username = "app""#),
        "pools[0].backend_password",
        "required when backend_username is set",
    );
    let config = parse(&pool_with(
        "password = \"s3cret\"\nbackend_username = \"app\"\nbackend_password = \"pw\"",
    ))
    .expect("valid credentials");
    let pool = &config.pools[0];
    assert_eq!(pool.password.as_deref(), Some("s3cret"));
    assert_eq!(pool.backend_username.as_deref(), Some("app"));
    assert_eq!(pool.backend_password.as_deref(), Some("pw"));
    // describe() says auth is on without printing any secret.
    let summary = config.describe();
    assert!(summary.contains("client auth: yes"), "{summary}");
    assert!(
        !summary.contains("s3cret") && !summary.contains("\"pw\""),
        "{summary}"
    );
}

#[test]
fn limits_are_range_checked() {
    assert_invalid(
        &pool_with("backend_connections = 0"),
        "pools[0].backend_connections",
        "0 is out of range, expected 1..=64",
    );
    assert_invalid(
        &pool_with("backend_connections = 65"),
        "pools[0].backend_connections",
        "65 is out of range, expected 1..=64",
    );
    assert_invalid(
        &pool_with("max_clients = -1"),
        "pools[0].max_clients",
        "-1 is out of range, expected 1..=1000000",
    );
    let config = parse(&pool_with("backend_connections = 64\ndatabases = 1")).expect("in range");
    assert_eq!(config.pools[0].backend_connections, 64);
    assert_eq!(config.pools[0].databases, 1);
}

#[test]
fn client_output_limits() {
    let config = parse(POOL).expect("defaults");
    assert_eq!(config.pools[0].client_output_soft_limit, 16 << 20);
    assert_eq!(config.pools[0].client_output_hard_limit, 256 << 20);
    let config = parse(&pool_with(
        "client_output_soft_limit = \"1MiB\"\nclient_output_hard_limit = 4194304",
    ))
    .expect("valid");
    assert_eq!(config.pools[0].client_output_soft_limit, 1 << 20);
    assert_eq!(config.pools[0].client_output_hard_limit, 4 << 20);
    assert_invalid(
        &pool_with("client_output_soft_limit = \"512MiB\""),
        "pools[0].client_output_hard_limit",
        "256MiB is below client_output_soft_limit (512MiB)",
    );
    assert_invalid(
        &pool_with("client_output_soft_limit = 100"),
        "pools[0].client_output_soft_limit",
        "100 is too small, expected at least 1KiB",
    );
    assert!(error(&pool_with("client_output_hard_limit = \"lots\""))
        .starts_with("sluice.toml: pools[0].client_output_hard_limit: invalid size \"lots\""));
    assert_invalid(
        &pool_with("client_output_hard_limit = -1"),
        "pools[0].client_output_hard_limit",
        r#"invalid size -1, expected e.g. "512KiB", "1MiB", "1MB" or a number of bytes"#,
    );
}

#[test]
fn admin_limits() {
    let admin = |keys: &str| format!("[admin]\nlisten = \"127.0.0.1:9121\"\n{keys}\n{POOL}");
    let config = parse(&admin("")).expect("defaults");
    let a = config.admin.expect("admin");
    assert_eq!(
        (a.max_connections, a.idle_timeout),
        (64, Duration::from_secs(10))
    );
    let config = parse(&admin("max_connections = 3\nidle_timeout = \"500ms\"")).expect("valid");
    let a = config.admin.expect("admin");
    assert_eq!(
        (a.max_connections, a.idle_timeout),
        (3, Duration::from_millis(500))
    );
    assert_invalid(
        &admin("max_connections = 0"),
        "admin.max_connections",
        "0 is out of range, expected 1..=100000",
    );
    assert_invalid(
        &admin("idle_timeout = \"0s\""),
        "admin.idle_timeout",
        "must be greater than zero",
    );
    assert_invalid(
        &admin("max_connections = \"many\""),
        "admin.max_connections",
        "invalid type: string \"many\", expected i64",
    );
}

#[test]
fn defaults_are_applied() {
    let config = parse(POOL).expect("minimal pool");
    assert!(config.admin.is_none());
    assert_eq!(config.source, PathBuf::from(FILE));
    let pool = &config.pools[0];
    assert_eq!(pool.name, "main");
    assert_eq!(pool.listen, "127.0.0.1:6380".parse().expect("literal"));
    assert_eq!(pool.mode(), Mode::Standalone);
    assert_eq!(
        pool.source,
        Source::Standalone {
            master: "127.0.0.1:6379".into(),
            replicas: Vec::new(),
        }
    );
    assert_eq!(pool.read_from, ReadFrom::Master);
    assert_eq!(pool.consistency, Consistency::Eventual);
    assert_eq!(pool.max_replica_lag, None);
    assert_eq!(pool.password, None);
    assert_eq!(pool.backend_username, None);
    assert_eq!(pool.backend_password, None);
    assert!(pool.allow_commands.is_empty());
    assert_eq!(pool.backend_connections, 2);
    assert_eq!(pool.max_dedicated_connections, 1024);
    assert_eq!(pool.connect_timeout, Duration::from_secs(1));
    assert_eq!(pool.request_timeout, Duration::from_secs(5));
    assert_eq!(pool.health_check_interval, Duration::from_millis(250));
    assert_eq!(pool.databases, 16);
    assert_eq!(pool.max_clients, 10_000);
}

#[test]
fn units_are_parsed() {
    let config = parse(&pool_with(
        "connect_timeout = 1500\nrequest_timeout = \"2m\"\nhealth_check_interval = \"100ms\"\nmax_replica_lag = \"512KiB\"",
    ))
    .expect("valid units");
    let pool = &config.pools[0];
    assert_eq!(pool.connect_timeout, Duration::from_millis(1500));
    assert_eq!(pool.request_timeout, Duration::from_secs(120));
    assert_eq!(pool.health_check_interval, Duration::from_millis(100));
    assert_eq!(pool.max_replica_lag, Some(ReplicaLag::Bytes(512 * 1024)));

    let lag = |value: &str| {
        parse(&pool_with(&format!("max_replica_lag = {value}")))
            .map(|c| c.pools[0].max_replica_lag)
            .map_err(|e| e.to_string())
    };
    assert_eq!(lag("\"1MiB\""), Ok(Some(ReplicaLag::Bytes(1 << 20))));
    assert_eq!(lag("\"1MB\""), Ok(Some(ReplicaLag::Bytes(1_000_000))));
    assert_eq!(lag("\"1000\""), Ok(Some(ReplicaLag::Bytes(1000))));
    assert_eq!(
        lag("\"2s\""),
        Ok(Some(ReplicaLag::Time(Duration::from_secs(2))))
    );
    assert_eq!(
        lag("\"lots\""),
        Err(r#"sluice.toml: pools[0].max_replica_lag: invalid replica lag "lots", expected a size such as "1MiB" or a duration such as "2s""#.to_string())
    );
}

#[test]
fn sentinel_pool() {
    let text = r#"
[[pools]]
name = "s"
listen = "127.0.0.1:6380"
mode = "sentinel"
sentinels = ["127.0.0.1:26379", "sentinel-2:26379"]
master_name = "mymaster"
sentinel_username = "su"
sentinel_password = "sp"
consistency = "read-your-writes"
read_from = "prefer-replica"
"#;
    let config = parse(text).expect("valid sentinel pool");
    let pool = &config.pools[0];
    assert_eq!(pool.mode(), Mode::Sentinel);
    assert_eq!(
        pool.source,
        Source::Sentinel {
            sentinels: vec!["127.0.0.1:26379".into(), "sentinel-2:26379".into()],
            master_name: "mymaster".into(),
            username: Some("su".into()),
            password: Some("sp".into()),
        }
    );
    assert_eq!(pool.consistency, Consistency::ReadYourWrites);
    assert_eq!(pool.read_from, ReadFrom::PreferReplica);
    assert_invalid(
        &text.replace("sentinel_password = \"sp\"\n", ""),
        "pools[0].sentinel_password",
        "required when sentinel_username is set",
    );
}

#[test]
fn load_reports_unreadable_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("absent.toml");
    match Config::load(&missing) {
        Err(ConfigError::Read { file, .. }) => assert_eq!(file, missing),
        other => panic!("expected a Read error, got {other:?}"),
    }
    let message = Config::load(&missing).map(|_| ()).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{}: cannot read: ", missing.display())),
        "{message}"
    );
}

#[test]
fn load_names_the_file_in_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[[pools]]\nname = \"x\"\nlisten = \"127.0.0.1:6380\"\n",
    )
    .expect("write");
    let message = Config::load(&path).map(|_| ()).unwrap_err().to_string();
    assert_eq!(
        message,
        format!(
            "{}: pools[0].master: required when mode = \"standalone\"",
            path.display()
        )
    );
}

/// Every shipped example must load: users start from them.
#[test]
fn example_configs_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut loaded = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("config/ exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            let config = Config::load(&path).unwrap_or_else(|err| panic!("{err}"));
            assert!(!config.pools.is_empty());
            assert!(!config.describe().is_empty());
            loaded.push(path.file_name().map(|n| n.to_string_lossy().into_owned()));
        }
    }
    for expected in [
        "standalone.toml",
        "sentinel.toml",
        "cluster.toml",
        "minimal.toml",
    ] {
        assert!(
            loaded.iter().flatten().any(|n| n == expected),
            "{expected} missing from {loaded:?}"
        );
    }
}

#[test]
fn standalone_example_matches_its_description() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/standalone.toml");
    let config = Config::load(&path).unwrap_or_else(|err| panic!("{err}"));
    let admin = config.admin.as_ref().expect("admin section");
    assert_eq!(admin.listen, "127.0.0.1:9121".parse().expect("literal"));
    let pool = &config.pools[0];
    assert_eq!(pool.listen, "127.0.0.1:6380".parse().expect("literal"));
    assert_eq!(
        pool.source,
        Source::Standalone {
            master: "127.0.0.1:6379".into(),
            replicas: vec!["127.0.0.1:6381".into(), "127.0.0.1:6382".into()],
        }
    );

    let summary = config.describe();
    for needle in [
        "admin: http://127.0.0.1:9121",
        "pool \"main\": listening on 127.0.0.1:6380",
        "mode: standalone",
        "master: 127.0.0.1:6379",
        "replicas: 127.0.0.1:6381, 127.0.0.1:6382",
        "read_from: prefer-replica",
        "consistency: eventual",
        "max_replica_lag: 1MiB",
        "client auth: no",
        "timeouts: connect 1s, request 5s, health_check_interval 250ms",
    ] {
        assert!(summary.contains(needle), "{needle:?} not in:\n{summary}");
    }
}
