//! Log output of the `fogchain` and `fogchain-proxy` binaries: `--log-format text` (default,
//! human-readable, coloured on a terminal) or `json` (one JSON object per line, for log
//! shippers; fields such as a block's `number` and `hash` or a transaction's `tx` stay separate
//! keys). The level comes from `RUST_LOG` (default `info`).

/// The `--log-format` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global `tracing` subscriber writing to stdout in `format`.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    match format {
        LogFormat::Text => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
            builder.with_ansi(ansi).init();
        }
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
