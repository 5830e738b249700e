//! `fogchain`: run a node, or a whole local network.

mod blocktest;
mod chain_io;
mod launcher;
mod new_network;
mod process;
mod prometheus;
mod proxy_setup;

use clap::{Parser, Subcommand};
use fogchain_node::{config::NodeConfig, Node};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "fogchain", version, about = "Fogchain: a permissioned Ethereum-compatible ledger for IoT")]
struct Cli {
    /// Log lines as text or as JSON objects (one per line); `fogchain devnet` passes it on to
    /// its nodes and proxy.
    #[arg(long, global = true, value_enum, default_value_t, env = "FOGCHAIN_LOG_FORMAT")]
    log_format: fogchain_metrics::logs::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one node from a config file (format: README.md, "Running a node").
    Node {
        /// Node config file (TOML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Start a local network with built-in defaults and prefunded test accounts.
    Devnet(launcher::DevnetArgs),
    /// Network files: `fogchain genesis new --nodes N --out DIR`.
    #[command(subcommand)]
    Genesis(GenesisCommand),
    /// The IoT proxy: runs `fogchain-proxy ARGS` (`--config FILE`; tools: certs,
    /// hash-password, token).
    #[command(disable_help_flag = true)]
    Proxy {
        /// Arguments of `fogchain-proxy`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Run Ethereum blockchain reference tests through the block pipeline (geth's `evm
    /// blocktest`): PATH... [--run REGEX] [--json]; exit 1 when any fails.
    Blocktest(blocktest::BlocktestArgs),
    /// Write the chain to FILE as geth's RLP block stream: --config NODE.toml FILE [--from N]
    /// [--to M] (the node stopped).
    Export(chain_io::ExportArgs),
    /// Apply the blocks of an RLP block stream to a node's chain (checked as committed blocks
    /// are: links, rules, members' seals): --config NODE.toml FILE (the node stopped).
    Import(chain_io::ImportArgs),
    /// Sales-order tools: runs `fogchain-proxy sale ARGS` (`barcode`).
    #[command(disable_help_flag = true)]
    Sale {
        /// Arguments of `fogchain-proxy sale`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Subcommand)]
enum GenesisCommand {
    /// Node keys, genesis.json with the members and one config per node, for a real network.
    New(new_network::NewNetworkArgs),
}

async fn run_node(config: PathBuf) -> eyre::Result<()> {
    let config = NodeConfig::load(&config)?;
    let node = Node::start(&config).await?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let fault = tokio::select! {
        _ = tokio::signal::ctrl_c() => { tracing::info!("interrupted, stopping"); None }
        _ = sigterm.recv() => { tracing::info!("terminated, stopping"); None }
        // Fail-stop: a node that cannot apply the chain exits instead of serving a stale head.
        reason = node.failed() => { tracing::error!(fault = %reason, "node failed, stopping"); Some(reason) }
    };
    node.stop().await;
    match fault {
        None => Ok(()),
        Some(reason) => Err(eyre::eyre!("node failed: {reason}")),
    }
}

fn run(cli: Cli) -> eyre::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Node { config } => {
            fogchain_metrics::logs::init(cli.log_format);
            return_freed_memory();
            runtime.block_on(run_node(config))
        }
        Command::Devnet(args) => {
            if cli.log_format == fogchain_metrics::logs::LogFormat::Json {
                // Inherited by the node and proxy processes the launcher starts.
                std::env::set_var("FOGCHAIN_LOG_FORMAT", "json");
            }
            runtime.block_on(launcher::run(args))
        }
        Command::Genesis(GenesisCommand::New(args)) => new_network::run(args),
        Command::Blocktest(args) => {
            if blocktest::run(args)? {
                Ok(())
            } else {
                std::process::exit(1)
            }
        }
        Command::Export(args) => chain_io::export(args),
        Command::Import(args) => chain_io::import(args),
        Command::Proxy { args } => Err(process::exec_proxy(args)),
        Command::Sale { args } => {
            Err(process::exec_proxy(std::iter::once("sale".into()).chain(args).collect()))
        }
    }
}

/// Keeps a node's resident memory close to what it uses (glibc malloc): at most 4 arenas (one
/// per thread up to 8 x cores by default, each keeping freed memory), and every 10 s the free
/// pages of every arena are handed back to the OS (`malloc_trim`). Bursts (a 20,000-transaction
/// pool, block-sized RPC answers) would otherwise leave RSS at its peak.
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt and malloc_trim only tune and trim glibc's allocator; both are
        // thread-safe and take no pointers.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 4);
        }
        let _ = std::thread::Builder::new().name("malloc-trim".into()).spawn(|| loop {
            std::thread::sleep(std::time::Duration::from_secs(10));
            // SAFETY: as above.
            unsafe {
                libc::malloc_trim(0);
            }
        });
    }
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The cause chain without eyre's backtrace (these are user-facing errors); a cause
            // whose text the message already shows is not repeated.
            let mut message = e.to_string();
            for cause in e.chain().skip(1).map(|c| c.to_string()) {
                if !message.contains(&cause) {
                    message = format!("{message}: {cause}");
                }
            }
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
