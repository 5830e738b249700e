//! The load accounts and contracts of a workload, and signing their transactions.

use crate::chain::{load_accounts, Target};
use alloy_primitives::{keccak256, Address, Bytes, TxKind, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolConstructor, SolValue};
use fogchain_client::SignedTx;
use fogchain_contracts::{DangerIndex, DeviceRegistry, SensorRegistry};

use super::{run::Batch, Call};

/// The load accounts and contracts of a workload, and each account's next nonce.
pub(crate) struct Workload {
    pub(crate) call: Call,
    pub(crate) accounts: Vec<PrivateKeySigner>,
    pub(crate) nonces: Vec<u64>,
    /// Next reading seq per account (RecordSigned).
    pub(crate) seqs: Vec<u64>,
    pub(crate) contract: Address,
    pub(crate) gas: u64,
}

impl Workload {
    /// Funds the accounts and deploys / configures what `call` needs; `txs_per_account` sizes
    /// the funding (each account can pay its worst-case fees).
    pub(crate) async fn prepare(
        target: &Target,
        call: Call,
        accounts: usize,
        txs_per_account: u64,
    ) -> eyre::Result<Self> {
        let seed = format!("{}-{}", call.name(), std::process::id());
        let accounts = load_accounts(&seed, accounts);
        let gas_cap: u64 = match call {
            Call::Transfer => 21_000,
            _ => 200_000,
        };
        // The pool wants gas * maxFee + value per transaction at admission; execution charges
        // the base fee: funds for two transactions at the cap, the rest at up to 100 gwei.
        let fund = U256::from(2 * gas_cap as u128 * target.max_fee)
            + U256::from(txs_per_account as u128 * gas_cap as u128 * 100 * crate::chain::GWEI)
            + U256::from(txs_per_account + 2);
        target.fund(&accounts, fund).await?;
        let mut contract = Address::ZERO;
        match call {
            Call::Transfer => {}
            Call::DangerIndex => {
                contract = target.deploy("deploying DangerIndex", DangerIndex::BYTECODE.to_vec()).await?;
                let inputs = accounts
                    .iter()
                    .map(|a| DangerIndex::addGatewayCall { gateway: a.address() }.abi_encode());
                target.admin_calls("DangerIndex.addGateway", contract, inputs.collect()).await?;
            }
            Call::RecordSigned => {
                let devices =
                    target.deploy("deploying DeviceRegistry", DeviceRegistry::BYTECODE.to_vec()).await?;
                let mut code = SensorRegistry::BYTECODE.to_vec();
                code.extend(SensorRegistry::constructorCall { devices_: devices }.abi_encode());
                contract = target.deploy("deploying SensorRegistry", code).await?;
                let inputs = accounts.iter().map(|a| {
                    DeviceRegistry::registerCall {
                        deviceId: device_id(a.address()),
                        key: a.address(),
                        kind: "sensor".into(),
                    }
                    .abi_encode()
                });
                target.admin_calls("DeviceRegistry.register", devices, inputs.collect()).await?;
            }
        }
        let n = accounts.len();
        let mut w = Self { call, accounts, nonces: vec![0; n], seqs: vec![1; n], contract, gas: 21_000 };
        if call != Call::Transfer {
            // the first call of an account writes fresh slots: the most expensive one
            let probe = w.input(target, 0, 1)?;
            let est = target.estimate(w.accounts[0].address(), Some(contract), &probe).await?;
            w.gas = est * 6 / 5;
        }
        Ok(w)
    }

    /// The calldata of `account`'s call number `seq` (empty for transfers).
    pub(crate) fn input(&self, target: &Target, account: usize, seq: u64) -> eyre::Result<Vec<u8>> {
        let key = &self.accounts[account];
        Ok(match self.call {
            Call::Transfer => Vec::new(),
            Call::DangerIndex => DangerIndex::submitCall {
                region: keccak256(key.address()),
                p: U256::from(1_000 + seq % 100),
                h: [U256::from(5_000); 5],
                cs: U256::from(10_000),
            }
            .abi_encode(),
            Call::RecordSigned => {
                let id = device_id(key.address());
                let topic = "sensors/solar".to_string();
                let payload = Bytes::from(format!("{{\"CS\":{}}}", 800 + seq % 100).into_bytes());
                let digest = keccak256(
                    (
                        U256::from(target.chain_id),
                        self.contract,
                        id,
                        seq,
                        keccak256(topic.as_bytes()),
                        keccak256(&payload),
                    )
                        .abi_encode(),
                );
                let signature = key.sign_message_sync(digest.as_slice())?;
                SensorRegistry::recordSignedCall {
                    deviceId: id,
                    seq,
                    topic,
                    payload,
                    signature: Bytes::copy_from_slice(&signature.as_bytes()),
                }
                .abi_encode()
            }
        })
    }

    pub(crate) fn sign_one(
        &self,
        target: &Target,
        account: usize,
        nonce: u64,
        seq: u64,
    ) -> eyre::Result<SignedTx> {
        let key = &self.accounts[account];
        match self.call {
            Call::Transfer => {
                let to = self.accounts[(account + 1) % self.accounts.len()].address();
                target.sign(key, nonce, TxKind::Call(to), U256::from(1), Bytes::new(), self.gas)
            }
            _ => {
                let input = self.input(target, account, seq)?;
                target.sign(key, nonce, TxKind::Call(self.contract), U256::ZERO, input.into(), self.gas)
            }
        }
    }

    /// Pre-signs `total` transactions (rounded up to a multiple of the account count), on all
    /// cores, and groups them into batches: an account's transactions go to one node in nonce
    /// order; consecutive batches alternate between nodes.
    pub(crate) fn sign_batches(
        &mut self,
        target: &Target,
        total: usize,
        batch: usize,
    ) -> eyre::Result<Vec<Batch>> {
        let n = self.accounts.len();
        let per_account = total.div_ceil(n).max(1) as u64;
        let threads = std::thread::available_parallelism().map_or(2, |p| p.get());
        let chunk = n.div_ceil(threads);
        let this = &*self;
        let signed: Vec<Vec<SignedTx>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .step_by(chunk)
                .map(|start| {
                    s.spawn(move || -> eyre::Result<Vec<Vec<SignedTx>>> {
                        (start..(start + chunk).min(n))
                            .map(|a| {
                                (0..per_account)
                                    .map(|k| this.sign_one(target, a, this.nonces[a] + k, this.seqs[a] + k))
                                    .collect()
                            })
                            .collect()
                    })
                })
                .collect();
            let mut all = Vec::with_capacity(n);
            for h in handles {
                all.extend(h.join().map_err(|_| eyre::eyre!("signing thread panicked"))??);
            }
            Ok::<_, eyre::Report>(all)
        })?;
        for a in 0..n {
            self.nonces[a] += per_account;
            self.seqs[a] += per_account;
        }
        let nodes = target.nodes.len();
        let mut queues: Vec<Vec<SignedTx>> = vec![Vec::new(); nodes];
        for k in 0..per_account as usize {
            for (a, txs) in signed.iter().enumerate() {
                queues[a % nodes].push(txs[k].clone());
            }
        }
        let mut per_node: Vec<std::vec::IntoIter<Batch>> = queues
            .into_iter()
            .enumerate()
            .map(|(node, q)| {
                q.chunks(batch.max(1)).map(|c| Batch::new(node, c)).collect::<Vec<_>>().into_iter()
            })
            .collect();
        let mut batches = Vec::new();
        loop {
            let before = batches.len();
            for it in per_node.iter_mut() {
                batches.extend(it.next());
            }
            if batches.len() == before {
                break;
            }
        }
        Ok(batches)
    }
}

/// The on-chain device id of a load account (RecordSigned).
pub(crate) fn device_id(a: Address) -> B256 {
    keccak256(format!("bench-device-{a}"))
}
