//! Admission checks, in geth's order (`core/txpool/validation.go`): the stateless ones (the
//! transaction alone, the head header, the chain spec and the node's minimum tip), sender
//! recovery, then the stateful ones (the sender's account).

use crate::{PoolError, MAX_INITCODE_SIZE, MAX_TX_SIZE};
use alloy_consensus::{
    transaction::{Recovered, SignerRecoverable},
    Header, Transaction, TxEnvelope,
};
use alloy_primitives::U256;
use alloy_trie::TrieAccount;
use fogchain_evm::{intrinsic_gas, spec_for};
use fogchain_genesis::ChainSpec;

/// Checks that need neither the sender nor its account; `head` is the applied head, whose gas
/// limit and fork rules the next block will have; `min_tip` is the node's price limit, wei.
pub(crate) fn check_stateless(
    chain: &ChainSpec,
    head: &Header,
    tx: &TxEnvelope,
    encoded_len: usize,
    min_tip: u128,
) -> Result<(), PoolError> {
    if encoded_len > MAX_TX_SIZE {
        return Err(PoolError::OversizedData { size: encoded_len, limit: MAX_TX_SIZE });
    }
    if tx.is_eip4844() {
        return Err(PoolError::TxTypeNotSupported);
    }
    if tx.gas_limit() > head.gas_limit {
        return Err(PoolError::GasLimitExceeded);
    }
    if tx.max_priority_fee_per_gas().is_some_and(|tip| tip > tx.max_fee_per_gas()) {
        return Err(PoolError::TipAboveFeeCap);
    }
    match tx.chain_id() {
        Some(have) if have != chain.chain_id() => {
            return Err(PoolError::InvalidChainId { have, want: chain.chain_id() })
        }
        None => return Err(PoolError::NotReplayProtected),
        _ => {}
    }
    if tx.kind().is_create() && tx.input().len() > MAX_INITCODE_SIZE {
        return Err(PoolError::MaxInitCodeSizeExceeded { size: tx.input().len(), limit: MAX_INITCODE_SIZE });
    }
    let (intrinsic, floor) = intrinsic_gas(tx, spec_for(chain, head));
    if tx.gas_limit() < intrinsic {
        return Err(PoolError::IntrinsicGasTooLow { gas: tx.gas_limit(), needed: intrinsic });
    }
    if tx.gas_limit() < floor {
        return Err(PoolError::FloorDataGasTooLow { gas: tx.gas_limit(), needed: floor });
    }
    let tip = tx.priority_fee_or_price();
    if tip < min_tip {
        return Err(PoolError::TipBelowMinimum { tip, min: min_tip });
    }
    Ok(())
}

/// Recovers the sender with libsecp256k1 (alloy-consensus' `secp256k1` feature), which refuses
/// high-s signatures (EIP-2).
pub(crate) fn recover(tx: TxEnvelope) -> Result<Recovered<TxEnvelope>, PoolError> {
    let sender = tx.recover_signer().map_err(|_| PoolError::InvalidSender)?;
    Ok(Recovered::new_unchecked(tx, sender))
}

/// Checks against the sender's latest account state (nonce and balance, wei).
pub(crate) fn check_stateful(tx: &TxEnvelope, account: &TrieAccount) -> Result<(), PoolError> {
    if tx.nonce() < account.nonce {
        return Err(PoolError::NonceTooLow { next: account.nonce, nonce: tx.nonce() });
    }
    let cost = cost(tx);
    if account.balance < cost {
        return Err(PoolError::InsufficientFunds { balance: account.balance, cost });
    }
    Ok(())
}

/// The most a transaction can take from its sender: gas limit × fee cap + value, wei.
pub(crate) fn cost(tx: &TxEnvelope) -> U256 {
    U256::from(tx.gas_limit()) * U256::from(tx.max_fee_per_gas()) + tx.value()
}
