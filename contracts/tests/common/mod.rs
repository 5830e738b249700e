//! Test harness shared by the contract tests: a chain in a temp dir, driven through
//! `fogchain_evm::execute_block` (one transaction per block) and `eth_call`.
#![allow(dead_code, unreachable_pub)]

use alloy_consensus::{transaction::Recovered, SignableTransaction, TxEip1559, TxEnvelope};
use alloy_genesis::{Genesis, GenesisAccount};
use alloy_network::TxSignerSync;
use alloy_primitives::{keccak256, Address, Bytes, TxKind, U256};
use alloy_signer_local::PrivateKeySigner;
use fogchain_evm::{call, execute_block, CallOutcome, CallParams, Mode};
use fogchain_genesis::{prague_chain_config, ChainSpec};
use fogchain_storage::{ChainReader, Storage};

pub const CHAIN_ID: u64 = 1337;

/// A reference data file of tests/fixtures/data (danger-index vectors, sales-order scenario).
pub fn shared_data(file: &str) -> serde_json::Value {
    let dir = std::path::Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../tests/fixtures/data");
    let text = std::fs::read_to_string(dir.join(file)).expect("reference data");
    serde_json::from_str(&text).unwrap()
}

/// A single-node chain driven directly through `execute_block` and `Storage`.
pub struct Chain {
    _dir: tempfile::TempDir,
    pub spec: ChainSpec,
    pub storage: Storage,
    pub keys: Vec<PrivateKeySigner>,
    nonces: Vec<u64>,
}

impl Chain {
    /// Two funded keys, plus `code` predeployed at the given addresses.
    pub fn new(code: &[(Address, Bytes)]) -> Self {
        let keys: Vec<PrivateKeySigner> =
            (1..=2u64).map(|i| PrivateKeySigner::from_bytes(&keccak256(i.to_be_bytes())).unwrap()).collect();
        let mut genesis =
            Genesis { config: prague_chain_config(CHAIN_ID), gas_limit: 30_000_000, ..Default::default() };
        for k in &keys {
            genesis
                .alloc
                .insert(k.address(), GenesisAccount::default().with_balance(U256::from(10u128.pow(21))));
        }
        for (address, code) in code {
            genesis.alloc.insert(*address, GenesisAccount::default().with_code(Some(code.clone())));
        }
        let spec = ChainSpec::new(genesis, Default::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &spec).unwrap();
        Self { _dir: dir, spec, storage, keys, nonces: vec![0; 2] }
    }

    /// eth_call against the head state.
    pub fn call(&self, to: Address, input: Vec<u8>) -> CallOutcome {
        let (_, head) = self.storage.head().unwrap();
        let params = CallParams { to: Some(to), input: input.into(), ..Default::default() };
        call(&self.spec, &self.storage, &head, &params, 50_000_000, fogchain_evm::Budget::unlimited())
            .unwrap()
    }

    /// Executes one transaction from key `k` in its own block; returns (status, logs, gas used).
    pub fn send(&mut self, k: usize, to: TxKind, input: Vec<u8>) -> (bool, Vec<alloy_primitives::Log>, u64) {
        let mut tx = TxEip1559 {
            chain_id: CHAIN_ID,
            nonce: self.nonces[k],
            gas_limit: 25_000_000,
            max_fee_per_gas: 10_000_000_000,
            max_priority_fee_per_gas: 1,
            to,
            value: U256::ZERO,
            access_list: Default::default(),
            input: input.into(),
        };
        self.nonces[k] += 1;
        let sig = self.keys[k].sign_transaction_sync(&mut tx).unwrap();
        let tx = Recovered::new_unchecked(TxEnvelope::from(tx.into_signed(sig)), self.keys[k].address());
        let (hash, parent) = self.storage.head().unwrap();
        let template =
            fogchain_evm::child_header(&self.spec, hash, &parent, parent.timestamp + 1, Address::ZERO);
        let out =
            execute_block(&self.spec, &self.storage, &parent, template, [tx], None, Mode::Validate).unwrap();
        let receipt = out.receipts[0].clone();
        let hash = out.header.hash_slow();
        self.storage.write_block(&out.into_block_write(hash, None)).unwrap();
        (receipt.status(), receipt.logs().to_vec(), receipt.cumulative_gas_used())
    }
}
