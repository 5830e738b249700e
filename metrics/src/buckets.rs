//! Histogram buckets, chosen by the metric name's unit suffix, fitted to what Fogchain
//! measures on a 2-core machine (RPC answers from ~100 µs, block apply 1–50 ms, decisions of
//! the proxy up to seconds; blocks of 0–1,500 transfers; a 30M gas limit).

/// Durations, seconds: 50 µs to 10 s.
pub const SECONDS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

/// Transactions per block.
pub const TRANSACTIONS: &[f64] =
    &[0.0, 1.0, 5.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 1500.0, 2500.0, 5000.0];

/// Gas per block.
pub const GAS: &[f64] = &[
    21_000.0,
    100_000.0,
    500_000.0,
    1_000_000.0,
    2_500_000.0,
    5_000_000.0,
    10_000_000.0,
    15_000_000.0,
    20_000_000.0,
    30_000_000.0,
    60_000_000.0,
];

/// Sizes, bytes: 128 B to 64 MiB.
pub const BYTES: &[f64] = &[
    128.0,
    512.0,
    2048.0,
    8192.0,
    32_768.0,
    131_072.0,
    524_288.0,
    2_097_152.0,
    8_388_608.0,
    33_554_432.0,
    67_108_864.0,
];

/// (metric name suffix, buckets).
pub const BY_SUFFIX: &[(&str, &[f64])] =
    &[("_seconds", SECONDS), ("_transactions", TRANSACTIONS), ("_gas", GAS), ("_bytes", BYTES)];
