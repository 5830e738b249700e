//! The proxy's gateway account: builds, estimates and signs its transactions (EIP-1559).

use crate::upstream::{Upstream, UpstreamError};
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use alloy_signer_local::PrivateKeySigner;
use fogchain_client::jsonrpc::{quantity, quantity_u64};
pub use fogchain_client::Fees;
use serde_json::{json, Value};
use std::{path::Path, sync::Arc};

/// The gateway account and the nodes it talks to.
#[derive(Debug)]
pub struct Chain {
    /// The nodes.
    pub upstream: Arc<Upstream>,
    signer: PrivateKeySigner,
    /// Chain id.
    pub chain_id: u64,
    /// eth_maxPriorityFeePerGas and when it was asked.
    tip: parking_lot::Mutex<Option<(u128, std::time::Instant)>>,
}

impl Chain {
    /// Loads the gateway key (hex, optional 0x, surrounding whitespace ignored).
    pub fn new(upstream: Arc<Upstream>, key_file: &Path, chain_id: u64) -> crate::Result<Self> {
        let text = std::fs::read_to_string(key_file)
            .map_err(|source| crate::error::ProxyError::File { path: key_file.to_path_buf(), source })?;
        let signer: PrivateKeySigner = text
            .trim()
            .trim_start_matches("0x")
            .parse()
            .map_err(|e| crate::error::ProxyError::Key(format!("{}: {e}", key_file.display())))?;
        Ok(Self { upstream, signer, chain_id, tip: parking_lot::Mutex::new(None) })
    }

    /// The gateway account's address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// Checks that the nodes serve `chain_id`.
    pub async fn check_chain_id(&self) -> crate::Result<()> {
        let v = self.upstream.call("eth_chainId", json!([])).await?;
        let got = quantity_u64(&v).ok_or_else(|| UpstreamError::BadAnswer("eth_chainId".into()))?;
        if got != self.chain_id {
            return Err(crate::error::ProxyError::ChainIdMismatch { nodes: got, config: self.chain_id });
        }
        Ok(())
    }

    /// Whether the network lets the gateway account transact: true on an open chain (no
    /// `AccountPermissions` code), else the contract's `canTransact` (docs/permissioning.md).
    pub async fn gateway_permitted(&self) -> Result<bool, UpstreamError> {
        use alloy_sol_types::SolCall;
        use fogchain_contracts::{AccountPermissions::canTransactCall, ACCOUNT_PERMISSIONS_ADDRESS as AT};
        let code = self.upstream.call("eth_getCode", json!([AT, "latest"])).await?;
        if code.as_str().is_none_or(|c| c == "0x") {
            return Ok(true);
        }
        let out = self.call(AT, canTransactCall { account: self.address() }.abi_encode().into()).await?;
        canTransactCall::abi_decode_returns(&out).map_err(|_| UpstreamError::BadAnswer("canTransact".into()))
    }

    /// The account's next nonce counting pending transactions.
    pub async fn pending_nonce(&self) -> Result<u64, UpstreamError> {
        self.nonce_at("pending").await
    }

    /// The account's nonce at `block` ("latest", "pending").
    pub async fn nonce_at(&self, block: &str) -> Result<u64, UpstreamError> {
        let v = self.upstream.call("eth_getTransactionCount", json!([self.address(), block])).await?;
        quantity_u64(&v).ok_or_else(|| UpstreamError::BadAnswer("eth_getTransactionCount".into()))
    }

    /// Current fees: maxFee = 2 x eth_gasPrice + tip (room for base-fee growth), tip =
    /// eth_maxPriorityFeePerGas.
    pub async fn fees(&self) -> Result<Fees, UpstreamError> {
        let answers = self
            .upstream
            .batch(&[("eth_gasPrice", json!([])), ("eth_maxPriorityFeePerGas", json!([]))])
            .await?;
        let [price, tip]: [Result<Value, UpstreamError>; 2] =
            answers.try_into().map_err(|_| UpstreamError::BadAnswer("fee batch".into()))?;
        let price = quantity(&price?).ok_or_else(|| UpstreamError::BadAnswer("eth_gasPrice".into()))?;
        let tip = tip.ok().as_ref().and_then(quantity).unwrap_or(0);
        Ok(Fees { max_fee: price.saturating_mul(2).saturating_add(tip), tip })
    }

    /// Fees over a known base fee (wei): maxFee = 2 x base fee + tip, tip =
    /// eth_maxPriorityFeePerGas, asked of a node at most once a minute.
    pub async fn fees_over(&self, base_fee: u128) -> Result<Fees, UpstreamError> {
        let cached = *self.tip.lock();
        let tip = match cached.filter(|(_, at)| at.elapsed() < std::time::Duration::from_secs(60)) {
            Some((tip, _)) => tip,
            None => {
                let v = self.upstream.call("eth_maxPriorityFeePerGas", json!([])).await?;
                let tip = quantity(&v).unwrap_or(0);
                *self.tip.lock() = Some((tip, std::time::Instant::now()));
                tip
            }
        };
        Ok(Fees { max_fee: base_fee.saturating_mul(2).saturating_add(tip), tip })
    }

    /// eth_estimateGas of a call from the gateway account, plus 20% headroom.
    pub async fn estimate(&self, to: Address, input: &Bytes) -> Result<u64, UpstreamError> {
        let v = self
            .upstream
            .call("eth_estimateGas", json!([{"from": self.address(), "to": to, "data": input}]))
            .await?;
        let gas = quantity_u64(&v).ok_or_else(|| UpstreamError::BadAnswer("eth_estimateGas".into()))?;
        Ok(gas.saturating_add(gas / 5))
    }

    /// keccak256 of the runtime code at `address` (latest block).
    pub async fn code_hash(&self, address: Address) -> Result<B256, UpstreamError> {
        let v = self.upstream.call("eth_getCode", json!([address, "latest"])).await?;
        let code = v
            .as_str()
            .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
            .ok_or_else(|| UpstreamError::BadAnswer("eth_getCode".into()))?;
        Ok(alloy_primitives::keccak256(code))
    }

    /// eth_call at the latest block.
    pub async fn call(&self, to: Address, input: Bytes) -> Result<Bytes, UpstreamError> {
        let v = self.upstream.call("eth_call", json!([{"to": to, "data": input}, "latest"])).await?;
        v.as_str()
            .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
            .map(Bytes::from)
            .ok_or_else(|| UpstreamError::BadAnswer("eth_call".into()))
    }

    /// Signs a call; returns its hash and EIP-2718 bytes.
    pub fn sign(
        &self,
        nonce: u64,
        to: Address,
        input: Bytes,
        gas: u64,
        fees: Fees,
    ) -> crate::Result<(B256, Bytes)> {
        let tx =
            fogchain_client::eip1559(self.chain_id, nonce, TxKind::Call(to), U256::ZERO, input, gas, fees);
        let signed = fogchain_client::sign(&self.signer, tx)
            .map_err(|e| crate::error::ProxyError::Key(e.to_string()))?;
        Ok((signed.hash, signed.raw))
    }

    /// A 0-value transfer to itself that only uses up `nonce` (fills a nonce gap).
    pub fn sign_filler(&self, nonce: u64, fees: Fees) -> crate::Result<(B256, Bytes)> {
        self.sign(nonce, self.address(), Bytes::new(), 21_000, fees)
    }
}
