//! `fogchain export` and `fogchain import` (see `fogchain_devnet::chain_file`).

use clap::Args;
use eyre::WrapErr;
use fogchain_devnet::chain_file;
use fogchain_genesis::ChainSpec;
use fogchain_node::{chain::Chain, config::NodeConfig};
use fogchain_storage::Storage;
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

/// Arguments of `fogchain export`.
#[derive(Args)]
pub(crate) struct ExportArgs {
    /// The node's config file (its datadir and genesis); the node must be stopped.
    #[arg(long)]
    config: PathBuf,
    /// Output file (geth's RLP block stream).
    file: PathBuf,
    /// First block (default 1: genesis comes from the genesis file).
    #[arg(long, default_value_t = 1)]
    from: u64,
    /// Last block (default: the head).
    #[arg(long)]
    to: Option<u64>,
}

/// Arguments of `fogchain import`.
#[derive(Args)]
pub(crate) struct ImportArgs {
    /// The config file of the node to import into (its datadir and genesis; the genesis must be
    /// the exported chain's); the node must be stopped.
    #[arg(long)]
    config: PathBuf,
    /// Input file (geth's RLP block stream, e.g. from `fogchain export`).
    file: PathBuf,
}

fn open_chain(config: &Path) -> eyre::Result<Chain> {
    let config = NodeConfig::load(config)?;
    let spec = Arc::new(ChainSpec::from_file(&config.genesis)?);
    let db = config.datadir.join("db");
    let storage = Storage::open(&db, &spec)
        .wrap_err_with(|| format!("opening {} (is the node still running?)", db.display()))?;
    Ok(Chain::new(spec, storage)?)
}

pub(crate) fn export(args: ExportArgs) -> eyre::Result<()> {
    let chain = open_chain(&args.config)?;
    let to = args.to.unwrap_or(chain.head().0);
    eyre::ensure!(args.from <= to, "--from {} is after --to {to}", args.from);
    let file =
        std::fs::File::create(&args.file).wrap_err_with(|| format!("creating {}", args.file.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let n = chain_file::export(&chain, &mut out, args.from, to)?;
    eprintln!("exported blocks {}..={to} ({n}) to {}", args.from, args.file.display());
    Ok(())
}

pub(crate) fn import(args: ImportArgs) -> eyre::Result<()> {
    let chain = open_chain(&args.config)?;
    let file =
        std::fs::File::open(&args.file).wrap_err_with(|| format!("opening {}", args.file.display()))?;
    let summary = chain_file::import(&chain, &mut std::io::BufReader::new(file))?;
    let (number, hash) = chain.head();
    eprintln!(
        "imported {} blocks ({} already stored); head #{number} {hash}",
        summary.imported, summary.known
    );
    Ok(())
}
