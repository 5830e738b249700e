//! Genesis predeploys: run contract constructors (and setup calls) in memory and turn the
//! resulting contracts into genesis alloc entries, so a network starts with them at fixed
//! addresses, with immutables and storage exactly as their constructors left them.

use alloy_primitives::{Address, Bytes, TxKind, U256};
use revm::{
    context::{BlockEnv, TxEnv},
    database::{CacheDB, EmptyDB},
    primitives::hardfork::SpecId,
    Context, ExecuteCommitEvm, MainBuilder, MainContext,
};
use std::collections::BTreeMap;

/// A contract as it stands after the setup transactions: runtime code and non-zero storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predeployed {
    /// Runtime bytecode.
    pub code: Bytes,
    /// Non-zero storage slots.
    pub storage: BTreeMap<U256, U256>,
}

/// One setup transaction from the deployer: `to = None` creates a contract from `input`.
#[derive(Debug, Clone)]
pub struct SetupTx {
    /// Callee, or `None` for a creation.
    pub to: Option<Address>,
    /// Init code or calldata.
    pub input: Bytes,
}

/// Why a genesis setup transaction did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum PredeployError {
    /// revm refused the transaction.
    #[error("setup transaction {index}: {reason}")]
    Invalid {
        /// Position in the setup list (= the deployer's nonce).
        index: usize,
        /// revm's reason.
        reason: String,
    },
    /// It ran but reverted or halted.
    #[error("setup transaction {index} failed: {outcome}")]
    Failed {
        /// Position in the setup list.
        index: usize,
        /// The execution result.
        outcome: String,
    },
}

/// Runs `txs` from `deployer` (nonce 0, 1, ...) on an empty state under Prague rules with zero
/// gas price, and returns every contract account that exists afterwards. A creation lands at
/// `deployer.create(nonce)`. Fails with the index and reason of the first transaction that does
/// not succeed.
pub fn predeploy(
    chain_id: u64,
    deployer: Address,
    txs: &[SetupTx],
) -> Result<BTreeMap<Address, Predeployed>, PredeployError> {
    let mut db = CacheDB::new(EmptyDB::default());
    {
        let mut cfg = crate::cfg_env_for(chain_id, SpecId::PRAGUE);
        cfg.disable_base_fee = true;
        let mut evm = Context::mainnet()
            .with_db(&mut db)
            .with_cfg(cfg)
            .with_block(BlockEnv { gas_limit: 1_000_000_000, ..Default::default() })
            .build_mainnet();
        for (nonce, tx) in txs.iter().enumerate() {
            let env = TxEnv {
                caller: deployer,
                gas_limit: 100_000_000,
                gas_price: 0,
                kind: tx.to.map_or(TxKind::Create, TxKind::Call),
                data: tx.input.clone(),
                nonce: nonce as u64,
                chain_id: Some(chain_id),
                ..Default::default()
            };
            let result = evm
                .transact_commit(env)
                .map_err(|e| PredeployError::Invalid { index: nonce, reason: e.to_string() })?;
            if !result.is_success() {
                return Err(PredeployError::Failed { index: nonce, outcome: format!("{result:?}") });
            }
        }
    }
    let mut out = BTreeMap::new();
    for (address, account) in &db.cache.accounts {
        let Some(code) = db.cache.contracts.get(&account.info.code_hash) else { continue };
        if code.is_empty() {
            continue;
        }
        let storage = account.storage.iter().filter(|(_, v)| !v.is_zero()).map(|(k, v)| (*k, *v)).collect();
        out.insert(*address, Predeployed { code: code.original_bytes(), storage });
    }
    Ok(out)
}
