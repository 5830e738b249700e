//! EIP-1559 transactions (EIP-1559, EIP-2718 type 2) signed with a local secp256k1 key (alloy).

use alloy_consensus::{SignableTransaction, Signed, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{hex, Bytes, Signature, TxKind, B256, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;

/// The fee caps of an EIP-1559 transaction, in wei per gas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fees {
    /// `maxFeePerGas`: the most the sender pays per gas (base fee + tip).
    pub max_fee: u128,
    /// `maxPriorityFeePerGas`: the tip to the block's beneficiary, per gas.
    pub tip: u128,
}

/// A signed transaction, ready for `eth_sendRawTransaction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTx {
    /// The transaction hash (keccak256 of the EIP-2718 encoding).
    pub hash: B256,
    /// The EIP-2718 encoding.
    pub raw: Bytes,
}

impl SignedTx {
    /// The encoding as `0x`-prefixed hex (the parameter of `eth_sendRawTransaction`).
    pub fn raw_hex(&self) -> String {
        format!("0x{}", hex::encode(&self.raw))
    }
}

/// An EIP-1559 transaction without an access list; a tip above `fees.max_fee` is lowered to it
/// (nodes refuse `maxPriorityFeePerGas > maxFeePerGas`).
pub fn eip1559(
    chain_id: u64,
    nonce: u64,
    to: TxKind,
    value: U256,
    input: Bytes,
    gas_limit: u64,
    fees: Fees,
) -> TxEip1559 {
    TxEip1559 {
        chain_id,
        nonce,
        gas_limit,
        max_fee_per_gas: fees.max_fee,
        max_priority_fee_per_gas: fees.tip.min(fees.max_fee),
        to,
        value,
        access_list: Default::default(),
        input,
    }
}

/// Signs `tx` (any typed transaction: EIP-1559, legacy with or without EIP-155, ...) with `key`.
///
/// # Errors
/// The signer's error (a local key fails only on a malformed signing hash).
pub fn sign<T>(key: &PrivateKeySigner, tx: T) -> Result<SignedTx, alloy_signer::Error>
where
    T: SignableTransaction<Signature>,
    TxEnvelope: From<Signed<T>>,
{
    let signature = key.sign_hash_sync(&tx.signature_hash())?;
    let envelope = TxEnvelope::from(tx.into_signed(signature));
    Ok(SignedTx { hash: *envelope.tx_hash(), raw: Bytes::from(envelope.encoded_2718()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::transaction::SignerRecoverable;
    use alloy_eips::eip2718::Decodable2718;
    use alloy_primitives::Address;

    #[test]
    fn signed_bytes_decode_and_recover_to_the_signer() {
        let key = PrivateKeySigner::random();
        let fees = Fees { max_fee: 100, tip: 500 };
        let tx = eip1559(
            1337,
            4,
            TxKind::Call(Address::repeat_byte(9)),
            U256::from(7),
            Bytes::new(),
            21_000,
            fees,
        );
        assert_eq!(tx.max_priority_fee_per_gas, 100, "tip capped at the fee cap");
        let signed = sign(&key, tx.clone()).unwrap();
        let decoded = TxEnvelope::decode_2718(&mut signed.raw.as_ref()).unwrap();
        assert_eq!(*decoded.tx_hash(), signed.hash);
        assert_eq!(decoded.recover_signer().unwrap(), key.address());
        assert_eq!(decoded.as_eip1559().unwrap().tx(), &tx);
        assert!(signed.raw_hex().starts_with("0x02"));
    }
}
