//! `fogchain-proxy`: the IoT proxy (`--config FILE`) and its tools. It links no RocksDB and
//! talks to the nodes over JSON-RPC only, so it runs on its own small host. `fogchain proxy
//! ARGS` and `fogchain sale ARGS` run this binary.

use alloy_primitives::Address;
use clap::{Parser, Subcommand};
use fogchain_proxy::{barcode::Barcode, config::ProxyConfig, ListenAddrs, Proxy};
use std::path::PathBuf;

/// Options of `fogchain-proxy`.
#[derive(Debug, Parser)]
#[command(
    name = "fogchain-proxy",
    version,
    about = "Fogchain IoT proxy: authenticated JSON-RPC gateway, MQTT bridge, shadows, warehouse",
    args_conflicts_with_subcommands = true
)]
struct ProxyArgs {
    /// Run the proxy from this config file (format: README.md, "IoT proxy").
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log lines as text or as JSON objects (one per line).
    #[arg(long, value_enum, default_value_t, env = "FOGCHAIN_LOG_FORMAT")]
    log_format: fogchain_metrics::logs::LogFormat,
    #[command(subcommand)]
    tool: Option<ProxyTool>,
}

#[derive(Debug, Subcommand)]
enum ProxyTool {
    /// Make a CA (once), a server certificate and device client certificates (CN = device id).
    Certs {
        /// Output directory (ca.pem/ca.key are reused when present).
        #[arg(long)]
        out: PathBuf,
        /// DNS names / IP addresses of the server certificate, comma separated.
        #[arg(long, value_delimiter = ',')]
        hosts: Vec<String>,
        /// Device ids to issue client certificates for, comma separated.
        #[arg(long, value_delimiter = ',')]
        devices: Vec<String>,
    },
    /// Print the argon2id hash of a password read from standard input (for password-hash).
    HashPassword,
    /// Print a new bearer token and its SHA-256 (for token-sha256).
    Token,
    /// Sales-order tools.
    #[command(subcommand)]
    Sale(SaleCommand),
}

/// `fogchain-proxy sale ...`.
#[derive(Debug, Subcommand)]
enum SaleCommand {
    /// Write the buyer's QR barcode (EIP-681 URI of the sale) as PNG or SVG (by --out's extension).
    Barcode {
        /// Chain id.
        #[arg(long)]
        chain_id: u64,
        /// Sale contract address.
        #[arg(long)]
        sale: Address,
        /// Buyer address.
        #[arg(long)]
        buyer: Address,
        /// Output file, .png or .svg.
        #[arg(long)]
        out: PathBuf,
    },
}

fn run(args: ProxyArgs) -> eyre::Result<()> {
    match (args.config, args.tool) {
        (Some(config), None) => {
            fogchain_metrics::logs::init(args.log_format);
            tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(serve(config))
        }
        (None, Some(ProxyTool::Sale(command))) => sale(command),
        (None, Some(ProxyTool::Certs { out, hosts, devices })) => {
            for f in fogchain_proxy::certs::issue(&out, &hosts, &devices)? {
                println!("wrote {f}");
            }
            Ok(())
        }
        (None, Some(ProxyTool::HashPassword)) => {
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                eyre::bail!("no password on standard input");
            }
            println!("{}", fogchain_proxy::auth::hash_password(password)?);
            Ok(())
        }
        (None, Some(ProxyTool::Token)) => {
            let (token, hash) = fogchain_proxy::auth::new_token();
            println!("token         {token}\ntoken-sha256  {hash}");
            Ok(())
        }
        _ => eyre::bail!("use `fogchain-proxy --config FILE` or one of its tools (see --help)"),
    }
}

async fn serve(config_path: PathBuf) -> eyre::Result<()> {
    let config = ProxyConfig::load(&config_path)?;
    let proxy = Proxy::start(&config).await?;
    // Where it listens, for launchers and tests (ports may be 0 in the config).
    let addr =
        ListenAddrs { http: proxy.http, mqtt: proxy.mqtt, mqtt_ws: proxy.mqtt_ws, metrics: proxy.metrics };
    let path = config.data_dir.join(fogchain_proxy::LISTEN_ADDRS_FILE);
    std::fs::write(&path, serde_json::to_string(&addr)?)?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted, stopping"),
        _ = sigterm.recv() => tracing::info!("terminated, stopping"),
    }
    let _ = std::fs::remove_file(&path);
    proxy.stop().await;
    Ok(())
}

fn sale(command: SaleCommand) -> eyre::Result<()> {
    match command {
        SaleCommand::Barcode { chain_id, sale, buyer, out } => {
            let barcode = Barcode { chain_id, sale, buyer };
            match out.extension().and_then(|e| e.to_str()) {
                Some("png") => std::fs::write(&out, fogchain_proxy::barcode::png(&barcode)?)?,
                Some("svg") => std::fs::write(&out, fogchain_proxy::barcode::svg(&barcode)?)?,
                _ => eyre::bail!("--out must end in .png or .svg"),
            }
            println!("{}\nwrote {}", barcode.uri(), out.display());
            Ok(())
        }
    }
}

fn main() -> std::process::ExitCode {
    match run(ProxyArgs::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
