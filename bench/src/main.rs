//! `fogchain-bench`: load generators for a Fogchain network or any Ethereum JSON-RPC endpoint
//! (Hardhat, Ganache, geth, ...), and the reproduction of the forest-fire paper's IoT test.
//!
//! Each run writes machine-readable results (`<out>/<name>.json`), SVG plots and rewrites the
//! Markdown report `<out>/report.md`. docs/benchmarks.md says how to run each workload.

mod chain;
mod chaos;
mod iot;
mod iot_saturation;
mod load;
mod report;
mod restart;
mod rpc;

use clap::{Parser, Subcommand};
use load::{Call, LoadArgs};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "fogchain-bench", version, about = "Fogchain load generators and benchmark report")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the load goes.
#[derive(Debug, Clone, clap::Args)]
struct TargetArgs {
    /// A Fogchain devnet's network.json (all its nodes get load; the default target).
    #[arg(long, default_value = "devnet-data/network.json")]
    network: PathBuf,
    /// JSON-RPC endpoints instead of a devnet (repeat or comma-separate; e.g. a Hardhat node).
    /// The accounts of the test mnemonic ("test ... junk") must be funded there.
    #[arg(long)]
    rpc: Vec<String>,
    /// Name of the target in results ("fogchain" for a devnet, else "endpoint").
    #[arg(long)]
    label: Option<String>,
    /// maxFeePerGas of load transactions, gwei (a high cap: pre-signed transactions must stay
    /// includable while full blocks raise the base fee by 1/8 each, EIP-1559).
    #[arg(long, default_value_t = 10_000)]
    max_fee_gwei: u128,
    /// Directory for results, plots and report.md.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Pre-signed value transfers from many accounts, batched eth_sendRawTransaction over all
    /// nodes; measured until every transaction is in a block and has a receipt.
    RpcTransfers {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        load: LoadArgs,
        /// Transactions to send (rounded up to a multiple of --accounts).
        #[arg(long, default_value_t = 50_000)]
        txs: usize,
        /// Offered rate, transactions/s (default: as fast as the endpoint accepts).
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Contract calls: DangerIndex.submit or SensorRegistry.recordSigned (the bench deploys its
    /// own instances, so any endpoint works).
    RpcContract {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        load: LoadArgs,
        /// The call.
        #[arg(long, value_enum, default_value = "danger-index")]
        call: Call,
        /// Transactions to send (rounded up to a multiple of --accounts).
        #[arg(long, default_value_t = 20_000)]
        txs: usize,
        /// Offered rate, transactions/s (default: as fast as the endpoint accepts).
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Raises the offered load step by step until p99 latency exceeds the limit.
    Saturation {
        #[command(flatten)]
        target: TargetArgs,
        #[command(flatten)]
        load: LoadArgs,
        /// The call.
        #[arg(long, value_enum, default_value = "transfer")]
        call: Call,
        /// First step's offered rate, transactions/s.
        #[arg(long, default_value_t = 500.0)]
        start_tps: f64,
        /// Each step offers this many times the previous one.
        #[arg(long, default_value_t = 1.5)]
        factor: f64,
        /// Length of a step, seconds.
        #[arg(long, default_value_t = 10.0)]
        step_seconds: f64,
        /// Most steps.
        #[arg(long, default_value_t = 12)]
        max_steps: usize,
        /// The p99 latency that ends the search, ms.
        #[arg(long, default_value_t = 1000.0)]
        p99_limit_ms: f64,
    },
    /// The forest-fire paper's test: MQTT devices publish registry messages (RM) and action
    /// messages (AM) through a Fogchain proxy at fixed rates; latency = device send ->
    /// ack (RM) / decision (AM) received by the device.
    SeedIot(iot::IotArgs),
    /// IoT ingest capacity: MQTT devices publish registry messages through a proxy at rising
    /// rates until p99 publish -> recorded passes a limit; readings/s recorded and p50/p99 per
    /// step.
    IotSaturation(iot_saturation::SaturationArgs),
    /// Node memory (RSS of every node of a devnet), then a restart of one node: time to
    /// serving JSON-RPC and to catching up with the chain.
    Restart(restart::RestartArgs),
    /// Faults piled up under load (kills, pauses, partitions, clock jumps, proxy crashes, a full
    /// disk) on a devnet of its own with a proxy, then a checker over the history: no receipted
    /// transaction lost, no fork, every acknowledged device message on chain exactly once,
    /// time from each leader loss to the next commit (docs/chaos.md). Exits 1 when a check fails.
    Chaos(chaos::ChaosArgs),
    /// Rewrites report.md from the JSON results in a directory.
    Report {
        /// Results directory.
        #[arg(long, default_value = "bench-results")]
        out: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => match rt.block_on(run(Cli::parse())) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("fogchain-bench {}", args.join(" "))
}

async fn connect(t: &TargetArgs) -> eyre::Result<chain::Target> {
    std::fs::create_dir_all(&t.out)?;
    chain::Target::connect(&t.rpc, &t.network, t.label.clone(), t.max_fee_gwei).await
}

async fn run(cli: Cli) -> eyre::Result<()> {
    let (result, out) = match cli.command {
        Command::RpcTransfers { target, load, txs, rate } => {
            let t = connect(&target).await?;
            let workload = "rpc-transfers";
            let r = load::burst(&t, Call::Transfer, txs, rate, &load, &target.out, workload);
            (r.await?, target.out)
        }
        Command::RpcContract { target, load, call, txs, rate } => {
            let t = connect(&target).await?;
            let r = load::burst(&t, call, txs, rate, &load, &target.out, "rpc-contract");
            (r.await?, target.out)
        }
        Command::Saturation {
            target,
            load,
            call,
            start_tps,
            factor,
            step_seconds,
            max_steps,
            p99_limit_ms,
        } => {
            let t = connect(&target).await?;
            let r = load::saturation(
                &t,
                call,
                start_tps,
                factor,
                step_seconds,
                max_steps,
                p99_limit_ms,
                &load,
                &target.out,
                command_line(),
            );
            (r.await?, target.out)
        }
        Command::SeedIot(args) => {
            std::fs::create_dir_all(&args.rig.out)?;
            (iot::run(&args, command_line()).await?, args.rig.out)
        }
        Command::IotSaturation(args) => {
            std::fs::create_dir_all(&args.rig.out)?;
            (iot_saturation::run(&args, command_line()).await?, args.rig.out)
        }
        Command::Restart(args) => {
            std::fs::create_dir_all(&args.out)?;
            (restart::run(&args, command_line()).await?, args.out)
        }
        Command::Chaos(args) => {
            std::fs::create_dir_all(&args.out)?;
            let (result, failures) = chaos::run(&args, command_line()).await?;
            print_summary(&result);
            report::save(&args.out, &result)?;
            if !failures.is_empty() {
                eyre::bail!("chaos: {}", failures.join("; "));
            }
            return Ok(());
        }
        Command::Report { out } => {
            let path = report::write_report(&out)?;
            println!("{}", path.display());
            return Ok(());
        }
    };
    print_summary(&result);
    report::save(&out, &result)
}

fn print_summary(r: &report::RunResult) {
    println!("{} on {}", r.workload, r.target);
    for (k, v) in &r.summary {
        println!("  {:<40} {}", k.replace("**", ""), v.replace("**", ""));
    }
    if let Some(t) = &r.table {
        println!("  {}", t.columns.join(" | "));
        for row in &t.rows {
            println!("  {}", row.join(" | "));
        }
    }
}
