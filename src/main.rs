//! The `sluice` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

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
    /// Validate a config file and print what it would run.
    CheckConfig {
        /// Config file (TOML).
        file: PathBuf,
    },
}

fn main() -> ExitCode {
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
        Command::Proxy { config, threads } => {
            let config = Config::load(&config)?;
            let mut builder = if threads == 1 {
                tokio::runtime::Builder::new_current_thread()
            } else {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                if threads > 1 {
                    b.worker_threads(threads);
                }
                b
            };
            let runtime = builder.enable_all().build().context("cannot start the async runtime")?;
            runtime.block_on(sluice::app::run(config, shutdown_signal(), |bound| {
                // Plain lines on stdout: scripts and tests read the resolved ports from here.
                for (name, addr) in &bound.pools {
                    println!("sluice: pool {name} listening on {addr}");
                }
                if let Some(a) = bound.admin {
                    println!("sluice: admin listening on {a}");
                }
            }))?;
            Ok(())
        }
    }
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
