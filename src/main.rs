//! The `sluice` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use sluice::app::Control;
use sluice::config::Config;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "A RESP proxy for Redis: read/write splitting, live topology"
)]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Proxy {
        /// Config file (TOML).
        #[arg(short, long)]
        config: PathBuf,
        /// Worker threads: 1 runs everything on one event loop (least overhead when the proxy
        /// shares a small machine with Redis); 0 = one per core.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Run a Redis-compatible data node.
    Node(NodeArgs),
    /// Run a Redis Sentinel (reads Redis's sentinel config lines; rewrites the file as
    /// Redis does).
    Sentinel {
        /// Sentinel config file (Redis syntax: `sentinel monitor NAME HOST PORT QUORUM`, ...).
        #[arg(short, long)]
        config: PathBuf,
        /// Worker threads: 1 = one event loop; 0 = one per core.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Run a whole stack (data nodes + proxy) in this one process.
    Stack(StackArgs),
    /// Validate a config file and print what it would run.
    CheckConfig {
        /// Config file (TOML).
        file: PathBuf,
    },
}

#[derive(clap::Args)]
struct NodeArgs {
    /// Port to listen on (0 picks a free one; the bound address is printed on stdout).
    #[arg(long, default_value_t = 6379)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Replicate from this master.
    #[arg(long, num_args = 2, value_names = ["HOST", "PORT"])]
    replicaof: Option<Vec<String>>,
    /// Password clients must AUTH with.
    #[arg(long)]
    requirepass: Option<String>,
    /// Append-only persistence.
    #[arg(long, value_enum, default_value_t = YesNo::No)]
    appendonly: YesNo,
    /// Working directory (append-only file).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Worker threads: 1 runs the node on one event loop, as Redis does (one worker of a
    /// multi-thread runtime, so a long script can hand it to another thread); 0 = one per core.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Run as a Redis Cluster node.
    #[arg(long, value_enum, default_value_t = YesNo::No)]
    cluster_enabled: YesNo,
    /// The cluster's view of this node (Redis's nodes.conf format), relative to --dir.
    #[arg(long, default_value = "nodes.conf")]
    cluster_config_file: PathBuf,
    /// Milliseconds a node may be unreachable before it is considered failing.
    #[arg(long, default_value_t = 15000)]
    cluster_node_timeout: u64,
    /// The cluster bus port (default: port + 10000).
    #[arg(long)]
    cluster_port: Option<u16>,
    /// Refuse queries while some slot is not served.
    #[arg(long, value_enum, default_value_t = YesNo::Yes)]
    cluster_require_full_coverage: YesNo,
    /// Also listen for TLS clients on this port (then `--port 0` means TLS only, as in Redis).
    #[arg(long)]
    tls_port: Option<u16>,
    /// The TLS listener's certificate chain (PEM).
    #[arg(long)]
    tls_cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long)]
    tls_key_file: Option<PathBuf>,
    /// The CA that clients' certificates must be signed by.
    #[arg(long)]
    tls_ca_cert_file: Option<PathBuf>,
    /// Whether TLS clients must show a certificate (`optional`: only checked when shown).
    #[arg(long, value_enum, default_value_t = AuthClients::Yes)]
    tls_auth_clients: AuthClients,
}

/// Redis's `tls-auth-clients`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AuthClients {
    Yes,
    No,
    Optional,
}

#[derive(clap::Args)]
struct StackArgs {
    /// Which topology: `standalone` (a master, two replicas, a read/write-splitting proxy),
    /// `sentinel` (the same nodes, three sentinels and a sentinel-mode proxy) or `cluster`
    /// (three masters, three replicas, a cluster-mode proxy).
    #[arg(value_enum)]
    topology: StackKind,
    /// The proxy's port; admin HTTP is on base+1, data nodes on base+10 upward, sentinels
    /// on base+20 upward.
    #[arg(long, default_value_t = 6380)]
    base_port: u16,
    /// Address everything listens on.
    #[arg(long, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// Worker threads: 1 = one event loop for everything; 0 = one per core.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StackKind {
    Standalone,
    /// A master, two replicas, three sentinels (ports from base+20) and a sentinel-mode proxy.
    Sentinel,
    /// Three masters, three replicas (sluice cluster nodes) and a cluster-mode proxy.
    Cluster,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum YesNo {
    Yes,
    No,
}

fn main() -> ExitCode {
    sluice::memory::return_freed_memory();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::CheckConfig { file } => {
            let config = Config::load(&file)?;
            print!("{}", config.describe());
            println!("{}: OK", file.display());
            Ok(())
        }
        Command::Node(args) => run_node(args),
        Command::Sentinel { config, threads } => {
            let config = sluice::node::sentinel::SentinelConfig::load(&config)?;
            runtime(threads)?.block_on(sluice::node::sentinel::run(
                config,
                shutdown_signal(),
                |addr| {
                    // A plain line on stdout: scripts and tests read the resolved port here.
                    println!("sluice: sentinel listening on {addr}");
                },
            ))?;
            Ok(())
        }
        Command::Stack(args) => run_stack(args),
        Command::Proxy { config, threads } => {
            let config = Config::load(&config)?;
            runtime(threads)?.block_on(async {
                let (tx, rx) = tokio::sync::mpsc::channel(16);
                // Handlers are installed before the listening lines are printed, so a SIGHUP
                // sent after them reloads instead of killing the process.
                forward_signals(tx.clone())?;
                sluice::app::run_controlled(config, tx, rx, |bound| {
                    // Plain lines on stdout: scripts and tests read the resolved ports here.
                    for (name, addr) in &bound.pools {
                        println!("sluice: pool {name} listening on {addr}");
                    }
                    if let Some(a) = bound.admin {
                        println!("sluice: admin listening on {a}");
                    }
                })
                .await
                .map_err(anyhow::Error::from)
            })?;
            Ok(())
        }
    }
}

fn run_node(args: NodeArgs) -> anyhow::Result<()> {
    let replicaof = match args.replicaof.as_deref() {
        Some([host, port]) => {
            let port: u16 = port
                .parse()
                .with_context(|| format!("--replicaof: invalid port {port:?}"))?;
            Some((host.clone(), port))
        }
        _ => None,
    };
    let tls = node_tls(&args)?;
    let config = sluice::node::NodeConfig {
        tls,
        listen: std::net::SocketAddr::new(args.bind, args.port),
        replicaof,
        requirepass: args.requirepass,
        appendonly: args.appendonly == YesNo::Yes,
        dir: args.dir,
        cluster: (args.cluster_enabled == YesNo::Yes).then(|| {
            sluice::node::cluster::ClusterOptions {
                config_file: args.cluster_config_file,
                node_timeout_ms: args.cluster_node_timeout,
                bus_port: args.cluster_port,
                require_full_coverage: args.cluster_require_full_coverage == YesNo::Yes,
            }
        }),
    };
    node_runtime(args.threads)?.block_on(sluice::node::run(config, shutdown_signal(), |addr| {
        // A plain line on stdout: scripts and tests read the resolved port from here.
        println!("sluice: node listening on {addr}");
    }))?;
    Ok(())
}

/// The node's TLS listener from `--tls-*`, checked as redis-server checks them.
fn node_tls(args: &NodeArgs) -> anyhow::Result<Option<sluice::node::NodeTls>> {
    let Some(port) = args.tls_port.filter(|&p| p != 0) else {
        return Ok(None);
    };
    let (Some(cert), Some(key)) = (&args.tls_cert_file, &args.tls_key_file) else {
        anyhow::bail!("--tls-port needs --tls-cert-file and --tls-key-file");
    };
    let ca = match (args.tls_auth_clients, &args.tls_ca_cert_file) {
        (AuthClients::No, _) => None,
        (_, Some(ca)) => Some(ca.clone()),
        (_, None) => anyhow::bail!(
            "--tls-ca-cert-file must be specified when tls-auth-clients is enabled \
             (--tls-auth-clients no lets clients in without a certificate)"
        ),
    };
    let optional = args.tls_auth_clients == AuthClients::Optional;
    let files = sluice::tls::ListenerTls::load_with(cert.clone(), key.clone(), ca, optional)?;
    Ok(Some(sluice::node::NodeTls { port, files }))
}

fn run_stack(args: StackArgs) -> anyhow::Result<()> {
    if args.topology == StackKind::Cluster {
        return run_stack_cluster(args);
    }
    if args.topology == StackKind::Sentinel {
        return run_sentinel_stack(args);
    }
    let opts = stack_options(&args);
    node_runtime(args.threads)?.block_on(sluice::stack::run_standalone(
        opts,
        shutdown_signal(),
        |e| announce_stack(e.proxy, e.admin, &[e.master], &e.replicas, &[], false),
    ))?;
    Ok(())
}

/// Prints what a stack runs, as plain lines on stdout (what to connect to; tests read them
/// too). `failover`: the topology fails over, so the hint shows how to watch it.
fn announce_stack(
    proxy: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    masters: &[std::net::SocketAddr],
    replicas: &[std::net::SocketAddr],
    sentinels: &[std::net::SocketAddr],
    failover: bool,
) {
    println!("sluice: stack proxy listening on {proxy}");
    println!("sluice: stack admin listening on {admin}");
    for m in masters {
        println!("sluice: stack master node on {m}");
    }
    for r in replicas {
        println!("sluice: stack replica node on {r}");
    }
    for s in sentinels {
        println!("sluice: stack sentinel on {s}");
    }
    match masters.first().filter(|_| failover) {
        Some(master) => println!(
            "sluice: stack ready: try `redis-cli -p {} set hello world`, then `redis-cli -p {} shutdown nosave` to watch a failover; Ctrl-C stops everything",
            proxy.port(),
            master.port()
        ),
        None => println!(
            "sluice: stack ready: try `redis-cli -p {} set hello world`; Ctrl-C stops everything",
            proxy.port()
        ),
    }
}

/// The ports, address and data directory every stack topology starts from.
fn stack_options(args: &StackArgs) -> sluice::stack::StackOptions {
    sluice::stack::StackOptions {
        base_port: args.base_port,
        bind: args.bind,
        dir: std::env::temp_dir(),
    }
}

fn run_sentinel_stack(args: StackArgs) -> anyhow::Result<()> {
    let opts = stack_options(&args);
    node_runtime(args.threads)?.block_on(sluice::stack::sentinel::run(
        opts,
        shutdown_signal(),
        |e| {
            announce_stack(
                e.proxy,
                e.admin,
                &[e.master],
                &e.replicas,
                &e.sentinels,
                true,
            )
        },
    ))?;
    Ok(())
}

fn run_stack_cluster(args: StackArgs) -> anyhow::Result<()> {
    let opts = stack_options(&args);
    node_runtime(args.threads)?.block_on(sluice::stack_cluster::run_cluster(
        opts,
        shutdown_signal(),
        |e| announce_stack(e.proxy, e.admin, &e.masters, &e.replicas, &[], true),
    ))?;
    Ok(())
}

/// The runtime of a process that runs data nodes: as [`runtime`], except that one worker is
/// a multi-thread runtime with one worker rather than a current-thread one. A script that
/// wrote and then runs long can then hand that worker's event loop to another thread and
/// finish on its own (`node/script/handoff.rs`): other clients get BUSY and SHUTDOWN
/// NOSAVE still works, as in Redis, where on a current-thread runtime the node would stall
/// until the script ends. The cost is about 0.1 µs of user-space work per request (README,
/// "Lua scripting and functions").
fn node_runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    if threads != 1 {
        return runtime(threads);
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// A tokio runtime with `threads` workers (1 = current-thread, 0 = one per core).
fn runtime(threads: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if threads > 1 {
            b.worker_threads(threads);
        }
        b
    };
    builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// SIGTERM and SIGINT ask the proxy to drain (a second one: to stop at once), SIGHUP to
/// reload its config.
#[cfg(unix)]
fn forward_signals(tx: tokio::sync::mpsc::Sender<Control>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                _ = term.recv() => Control::Terminate,
                _ = int.recv() => Control::Terminate,
                _ = hup.recv() => Control::Reload(None),
            };
            if tx.send(msg).await.is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// Ctrl-C asks the proxy to drain (a second one: to stop at once).
#[cfg(not(unix))]
fn forward_signals(tx: tokio::sync::mpsc::Sender<Control>) -> anyhow::Result<()> {
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            if tx.send(Control::Terminate).await.is_err() {
                return;
            }
        }
    });
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
