//! EVM environment: fork -> revm spec, block and transaction environments.

use alloy_consensus::{transaction::Recovered, Header, Transaction, TxEnvelope};
use alloy_eips::Typed2718;
use alloy_primitives::{Address, U256};
use fogchain_genesis::{ChainSpec, Fork};
use revm::{
    context::{BlockEnv, CfgEnv, TxEnv},
    context_interface::cfg::gas::calculate_initial_tx_gas,
    primitives::hardfork::SpecId,
};

/// The revm rules for a fork.
pub fn spec_id(fork: Fork) -> SpecId {
    match fork {
        Fork::Frontier => SpecId::FRONTIER,
        Fork::Homestead => SpecId::HOMESTEAD,
        Fork::Tangerine => SpecId::TANGERINE,
        Fork::SpuriousDragon => SpecId::SPURIOUS_DRAGON,
        Fork::Byzantium => SpecId::BYZANTIUM,
        Fork::Constantinople | Fork::Petersburg => SpecId::PETERSBURG,
        Fork::Istanbul => SpecId::ISTANBUL,
        Fork::Berlin => SpecId::BERLIN,
        Fork::London => SpecId::LONDON,
        Fork::Paris => SpecId::MERGE,
        Fork::Shanghai => SpecId::SHANGHAI,
        Fork::Cancun => SpecId::CANCUN,
        Fork::Prague => SpecId::PRAGUE,
        Fork::Osaka | Fork::Bpo1 | Fork::Bpo2 | Fork::Bpo3 | Fork::Bpo4 | Fork::Bpo5 => SpecId::OSAKA,
    }
}

/// The revm spec for a block header of this chain.
pub fn spec_for(spec: &ChainSpec, header: &Header) -> SpecId {
    spec_id(spec.fork_at(header.number, header.timestamp))
}

/// Chain configuration for revm with the mainnet gas parameters of `spec_id` and the chain's
/// blob limit per transaction (EIP-7691 / EIP-7840).
pub fn cfg_env(chain: &ChainSpec, spec_id: SpecId) -> CfgEnv {
    let mut cfg = cfg_env_for(chain.chain_id(), spec_id);
    if let Some(params) = chain.blob_params(fork_of(spec_id)) {
        cfg.max_blobs_per_tx = Some(params.max_blobs_per_tx);
    }
    cfg
}

/// The fork whose blob limit per transaction applies under `spec_id` (the reverse of
/// [`spec_id`] from Cancun on; the blob-parameter-only forks keep Osaka's limit of 6, EIP-7594).
fn fork_of(spec_id: SpecId) -> Fork {
    if spec_id.is_enabled_in(SpecId::OSAKA) {
        Fork::Osaka
    } else if spec_id.is_enabled_in(SpecId::PRAGUE) {
        Fork::Prague
    } else if spec_id.is_enabled_in(SpecId::CANCUN) {
        Fork::Cancun
    } else {
        Fork::Shanghai
    }
}

/// [`cfg_env`] for a bare chain id.
pub fn cfg_env_for(chain_id: u64, spec_id: SpecId) -> CfgEnv {
    let mut cfg = CfgEnv::new_with_spec(spec_id).with_chain_id(chain_id);
    cfg.set_spec_and_mainnet_gas_params(spec_id);
    cfg
}

/// Block environment from a header: everything execution depends on comes from the block
/// itself (number, timestamp in seconds, coinbase, gas limit, base fee, prevrandao, excess blob
/// gas priced with the fork's update fraction), never from the executing node's clock.
pub fn block_env(chain: &ChainSpec, header: &Header, spec_id: SpecId) -> BlockEnv {
    let mut env = BlockEnv {
        number: U256::from(header.number),
        beneficiary: header.beneficiary,
        timestamp: U256::from(header.timestamp),
        gas_limit: header.gas_limit,
        basefee: header.base_fee_per_gas.unwrap_or_default(),
        difficulty: header.difficulty,
        prevrandao: spec_id.is_enabled_in(SpecId::MERGE).then_some(header.mix_hash),
        ..Default::default()
    };
    let fork = chain.fork_at(header.number, header.timestamp);
    if let Some(params) = chain.blob_params(fork).filter(|_| spec_id.is_enabled_in(SpecId::CANCUN)) {
        env.set_blob_excess_gas_and_price(
            header.excess_blob_gas.unwrap_or_default(),
            params.update_fraction as u64,
        );
    }
    env
}

/// revm transaction environment for a signed transaction and its recovered sender.
pub fn tx_env(tx: &TxEnvelope, sender: Address) -> TxEnv {
    let (gas_price, priority) = match tx.max_priority_fee_per_gas() {
        Some(tip) => (tx.max_fee_per_gas(), Some(tip)),
        None => (tx.gas_price().unwrap_or_default(), None),
    };
    TxEnv {
        tx_type: tx.ty(),
        caller: sender,
        gas_limit: tx.gas_limit(),
        gas_price,
        kind: tx.kind(),
        value: tx.value(),
        data: tx.input().clone(),
        nonce: tx.nonce(),
        chain_id: tx.chain_id(),
        access_list: tx.access_list().cloned().unwrap_or_default(),
        gas_priority_fee: priority,
        blob_hashes: tx.blob_versioned_hashes().map(|h| h.to_vec()).unwrap_or_default(),
        max_fee_per_blob_gas: tx.max_fee_per_blob_gas().unwrap_or_default(),
        authorization_list: tx
            .authorization_list()
            .map(|list| list.iter().cloned().map(revm::context_interface::either::Either::Left).collect())
            .unwrap_or_default(),
    }
}

/// revm transaction environment for a recovered transaction.
pub fn recovered_tx_env(tx: &Recovered<TxEnvelope>) -> TxEnv {
    tx_env(tx.inner(), tx.signer())
}

/// Intrinsic gas of a transaction and the EIP-7623 calldata floor, both in gas: the minimum
/// gas limit a transaction must carry (`max(intrinsic, floor)`), computed with revm's rules.
pub fn intrinsic_gas(tx: &TxEnvelope, spec_id: SpecId) -> (u64, u64) {
    let (accounts, slots) = tx
        .access_list()
        .map_or((0, 0), |list| (list.len() as u64, list.iter().map(|i| i.storage_keys.len() as u64).sum()));
    let auths = tx.authorization_list().map_or(0, |l| l.len() as u64);
    let gas =
        calculate_initial_tx_gas(spec_id, tx.input(), tx.kind().is_create(), accounts, slots, auths, None);
    (gas.initial_regular_gas + gas.initial_state_gas, gas.floor_gas)
}

/// Base fee in wei of the block after `parent` (EIP-1559 with Ethereum's parameters, or 0 on a
/// zero-base-fee chain); `None` before London.
pub fn next_base_fee(chain: &ChainSpec, parent: &Header) -> Option<u64> {
    if chain.fork_at(parent.number + 1, parent.timestamp) < Fork::London {
        return None;
    }
    if chain.fogchain.zero_base_fee {
        return Some(0);
    }
    Some(match parent.base_fee_per_gas {
        None => alloy_eips::eip1559::INITIAL_BASE_FEE,
        Some(base_fee) => alloy_eips::eip1559::BaseFeeParams::ethereum().next_block_base_fee(
            parent.gas_used,
            parent.gas_limit,
            base_fee,
        ),
    })
}

/// The header a child of `parent` (hash `parent_hash`) starts from: number, gas limit (constant),
/// base fee, `timestamp` (seconds, never below the parent's), `beneficiary` and from Cancun the
/// excess blob gas (EIP-4844) and a zero parent beacon root (no beacon chain); roots, bloom and
/// gas used are filled in by [`crate::execute_block`], the seal by the minter.
pub fn child_header(
    chain: &ChainSpec,
    parent_hash: alloy_primitives::B256,
    parent: &Header,
    timestamp: u64,
    beneficiary: Address,
) -> Header {
    let timestamp = timestamp.max(parent.timestamp);
    let cancun = chain.fork_at(parent.number + 1, timestamp) >= Fork::Cancun;
    Header {
        parent_hash,
        ommers_hash: alloy_consensus::constants::EMPTY_OMMER_ROOT_HASH,
        beneficiary,
        number: parent.number + 1,
        gas_limit: parent.gas_limit,
        timestamp,
        base_fee_per_gas: next_base_fee(chain, parent),
        excess_blob_gas: cancun.then(|| crate::next_excess_blob_gas(chain, parent, timestamp)),
        parent_beacon_block_root: cancun.then_some(alloy_primitives::B256::ZERO),
        ..Default::default()
    }
}
