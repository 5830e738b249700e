//! raft-rs logs through slog; this drain forwards its records to `tracing`.

use slog::{Drain, KV};
use std::fmt::Write;

struct KvText(String);

impl slog::Serializer for KvText {
    fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}

/// Forwards slog records to `tracing` (target `raft`), keeping their key-value pairs as text.
pub(crate) struct TracingDrain;

impl Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, values: &slog::OwnedKVList) -> Result<(), slog::Never> {
        let mut kv = KvText(String::new());
        let _ = record.kv().serialize(record, &mut kv);
        let _ = values.serialize(record, &mut kv);
        let message = record.msg();
        match record.level() {
            slog::Level::Critical | slog::Level::Error => {
                tracing::error!(target: "raft", "{message}{}", kv.0)
            }
            slog::Level::Warning => tracing::warn!(target: "raft", "{message}{}", kv.0),
            slog::Level::Info => tracing::info!(target: "raft", "{message}{}", kv.0),
            slog::Level::Debug => tracing::debug!(target: "raft", "{message}{}", kv.0),
            slog::Level::Trace => tracing::trace!(target: "raft", "{message}{}", kv.0),
        }
        Ok(())
    }
}

/// The slog logger handed to raft-rs.
pub(crate) fn logger() -> slog::Logger {
    slog::Logger::root(TracingDrain.fuse(), slog::o!())
}
