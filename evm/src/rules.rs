//! Header rules of the two rule sets ([`RuleSet`]): what a block's header must satisfy against
//! its parent before its transactions are executed. The seal of a Fogchain block is checked by
//! the node (it needs the membership); everything else is here.

use crate::next_base_fee;
use alloy_consensus::{constants::EMPTY_OMMER_ROOT_HASH, Header};
use alloy_eips::eip4844::DATA_GAS_PER_BLOB;
use alloy_primitives::B64;
use fogchain_genesis::{ChainSpec, Fork, RuleSet};

/// geth's `params.MaximumExtraDataSize`: `extraData` of an Ethereum header, bytes.
pub const MAX_EXTRA_DATA_BYTES: usize = 32;
/// geth's `params.MinGasLimit`: lowest gas limit of an Ethereum block, gas.
pub const MIN_GAS_LIMIT: u64 = 5_000;
/// geth's `params.GasLimitBoundDivisor`: an Ethereum block's gas limit differs from its
/// parent's by less than `parent / 1024`.
pub const GAS_LIMIT_BOUND_DIVISOR: u64 = 1_024;
/// EIP-7934 `MAX_RLP_BLOCK_SIZE` (10 MiB less a 2 MiB margin): the largest RLP block from
/// Osaka on, bytes.
pub const MAX_RLP_BLOCK_SIZE: usize = 10_485_760 - 2_097_152;
/// geth's `params.MaxGasLimit` (2^63 - 1), gas.
pub const MAX_GAS_LIMIT: u64 = 0x7fff_ffff_ffff_ffff;

/// A header that breaks a rule of its chain, in geth's words where geth has them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeaderError(pub String);

/// Checks `header` against `parent` under `chain.rules`: number, timestamp, gas limit and
/// gas used, base fee (EIP-1559), and for Ethereum's rules `extraData` size, the post-merge
/// constants (difficulty 0, nonce 0, no ommers), the presence of each fork's fields and the
/// blob gas (EIP-4844: `excessBlobGas` from the parent, `blobGasUsed` a whole number of blobs
/// within the block maximum). Roots, bloom and gas used against execution are checked by
/// [`crate::validate_block`].
pub fn check_header(chain: &ChainSpec, parent: &Header, header: &Header) -> Result<(), HeaderError> {
    let fail = |reason: String| Err(HeaderError(reason));
    if header.number != parent.number + 1 {
        return fail(format!("invalid block number: have {}, want {}", header.number, parent.number + 1));
    }
    if header.gas_used > header.gas_limit {
        return fail(format!("invalid gasUsed: have {}, gasLimit {}", header.gas_used, header.gas_limit));
    }
    let expected_base_fee = next_base_fee(chain, parent);
    if header.base_fee_per_gas != expected_base_fee {
        return fail(format!(
            "invalid baseFee: have {:?}, want {:?}, parentBaseFee {:?}, parentGasUsed {}",
            header.base_fee_per_gas, expected_base_fee, parent.base_fee_per_gas, parent.gas_used
        ));
    }
    match chain.rules {
        RuleSet::Fogchain => {
            if header.timestamp < parent.timestamp {
                return fail(format!(
                    "timestamp {} is before its parent's {}",
                    header.timestamp, parent.timestamp
                ));
            }
            if header.gas_limit != parent.gas_limit {
                return fail(format!("gas limit {} differs from {}", header.gas_limit, parent.gas_limit));
            }
            Ok(())
        }
        RuleSet::Ethereum => check_ethereum_header(chain, parent, header),
    }
}

fn check_ethereum_header(chain: &ChainSpec, parent: &Header, header: &Header) -> Result<(), HeaderError> {
    let fail = |reason: String| Err(HeaderError(reason));
    if header.extra_data.len() > MAX_EXTRA_DATA_BYTES {
        return fail(format!("extra-data too long: {} > {MAX_EXTRA_DATA_BYTES}", header.extra_data.len()));
    }
    if header.timestamp <= parent.timestamp {
        return fail("timestamp older than parent".into());
    }
    let fork = chain.fork_at(header.number, header.timestamp);
    if fork < Fork::Paris {
        return fail(format!("{fork:?} rules (proof of work) are not supported"));
    }
    if !header.difficulty.is_zero() {
        return fail("invalid difficulty: have non-zero, want 0".into());
    }
    if header.nonce != B64::ZERO {
        return fail("invalid nonce: have non-zero, want 0".into());
    }
    if header.ommers_hash != EMPTY_OMMER_ROOT_HASH {
        return fail("invalid uncle hash".into());
    }
    if header.gas_limit > MAX_GAS_LIMIT {
        return fail(format!("invalid gasLimit: have {}, max {MAX_GAS_LIMIT}", header.gas_limit));
    }
    let limit = parent.gas_limit / GAS_LIMIT_BOUND_DIVISOR;
    if header.gas_limit.abs_diff(parent.gas_limit) >= limit || header.gas_limit < MIN_GAS_LIMIT {
        return fail(format!(
            "invalid gas limit: have {}, want {} +-= {}",
            header.gas_limit,
            parent.gas_limit,
            limit.saturating_sub(1)
        ));
    }
    let present = |name: &str, is: bool, wanted: bool| -> Result<(), HeaderError> {
        match (is, wanted) {
            (false, true) => Err(HeaderError(format!("header is missing {name}"))),
            (true, false) => Err(HeaderError(format!("invalid {name}: have one before its fork"))),
            _ => Ok(()),
        }
    };
    present("withdrawalsHash", header.withdrawals_root.is_some(), fork >= Fork::Shanghai)?;
    present("blobGasUsed", header.blob_gas_used.is_some(), fork >= Fork::Cancun)?;
    present("excessBlobGas", header.excess_blob_gas.is_some(), fork >= Fork::Cancun)?;
    present("parentBeaconRoot", header.parent_beacon_block_root.is_some(), fork >= Fork::Cancun)?;
    present("requestsHash", header.requests_hash.is_some(), fork >= Fork::Prague)?;
    if let (Some(used), Some(excess)) = (header.blob_gas_used, header.excess_blob_gas) {
        let expected = next_excess_blob_gas(chain, parent, header.timestamp);
        if excess != expected {
            return fail(format!(
                "invalid excessBlobGas: have {excess}, want {expected}, parentExcessBlobGas {}, parentBlobDataUsed {}",
                parent.excess_blob_gas.unwrap_or_default(),
                parent.blob_gas_used.unwrap_or_default()
            ));
        }
        let max = chain.blob_params(fork).map_or(0, |p| p.max_blob_gas_per_block());
        if used > max {
            return fail(format!("blob gas used {used} exceeds maximum allowance {max}"));
        }
        if used % DATA_GAS_PER_BLOB != 0 {
            return fail(format!(
                "blob gas used {used} not a multiple of blob gas per blob {DATA_GAS_PER_BLOB}"
            ));
        }
    }
    Ok(())
}

/// `excessBlobGas` of the child of `parent` with timestamp `timestamp` (seconds), EIP-4844 with
/// the parameters of the child's fork (EIP-7691, EIP-7892): `max(0, parent excess + parent used
/// - target)`; 0 on the first Cancun block and before Cancun. From Osaka, EIP-7918's reserve
/// price (execution-specs' `calculate_excess_blob_gas`, all parameters the child fork's).
pub fn next_excess_blob_gas(chain: &ChainSpec, parent: &Header, timestamp: u64) -> u64 {
    let fork = chain.fork_at(parent.number + 1, timestamp);
    let Some(params) = chain.blob_params(fork) else { return 0 };
    let (Some(excess), Some(used)) = (parent.excess_blob_gas, parent.blob_gas_used) else { return 0 };
    if fork >= Fork::Osaka {
        return params.next_block_excess_blob_gas_osaka(
            excess,
            used,
            parent.base_fee_per_gas.unwrap_or_default(),
        );
    }
    (excess + used).saturating_sub(params.target_blob_gas_per_block())
}
