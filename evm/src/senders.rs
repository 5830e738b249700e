//! Sender recovery for a block's transactions, spread over the machine's cores.
//!
//! Recovery (secp256k1 public-key recovery, ~45 µs with libsecp256k1) dominates the cost of
//! validating a block of simple transactions; a follower recovers every sender of every block
//! it did not build, so the work is split across scoped threads.

use alloy_consensus::{
    transaction::{Recovered, SignerRecoverable},
    TxEnvelope,
};
use alloy_primitives::{Address, B256};

/// Below this many transactions one thread does the work (thread start-up would dominate).
const PARALLEL_THRESHOLD: usize = 64;

/// Recovers the sender of every transaction, in order, using all available cores. On failure
/// returns the index of the first transaction whose signature does not recover.
pub fn recover_senders(txs: &[TxEnvelope]) -> Result<Vec<Recovered<TxEnvelope>>, usize> {
    recover_senders_with(txs, |_| None)
}

/// [`recover_senders`], taking the sender of a transaction from `known` (by transaction hash)
/// when it has one: a node that pooled a transaction recovered its sender at admission, and the
/// hash binds the signed bytes, so the sender cannot differ.
pub fn recover_senders_with(
    txs: &[TxEnvelope],
    known: impl Fn(&B256) -> Option<Address> + Sync,
) -> Result<Vec<Recovered<TxEnvelope>>, usize> {
    let known = &known;
    let recover = |offset: usize, chunk: &[TxEnvelope]| -> Result<Vec<Recovered<TxEnvelope>>, usize> {
        chunk
            .iter()
            .enumerate()
            .map(|(i, tx)| match known(tx.tx_hash()) {
                Some(sender) => Ok(Recovered::new_unchecked(tx.clone(), sender)),
                None => tx.clone().try_into_recovered().map_err(|_| offset + i),
            })
            .collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if txs.len() < PARALLEL_THRESHOLD || threads < 2 {
        return recover(0, txs);
    }
    let chunk_len = txs.len().div_ceil(threads);
    let parts: Vec<Result<Vec<_>, usize>> = std::thread::scope(|scope| {
        let handles: Vec<_> = txs
            .chunks(chunk_len)
            .enumerate()
            .map(|(n, chunk)| scope.spawn(move || recover(n * chunk_len, chunk)))
            .collect();
        // A panic in a worker would be a bug in signature recovery; report the chunk as invalid.
        handles.into_iter().enumerate().map(|(n, h)| h.join().unwrap_or(Err(n * chunk_len))).collect()
    });
    let mut out = Vec::with_capacity(txs.len());
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::{SignableTransaction, TxLegacy};
    use alloy_network::TxSignerSync;
    use alloy_primitives::{keccak256, Signature, TxKind, U256};
    use alloy_signer_local::PrivateKeySigner;

    fn tx(i: u64) -> (TxEnvelope, alloy_primitives::Address) {
        let key = PrivateKeySigner::from_bytes(&keccak256(i.to_be_bytes())).unwrap();
        let mut tx = TxLegacy {
            chain_id: Some(1337),
            nonce: i,
            gas_price: 1,
            gas_limit: 21_000,
            to: TxKind::Call(alloy_primitives::Address::ZERO),
            value: U256::from(i),
            input: Default::default(),
        };
        let sig = key.sign_transaction_sync(&mut tx).unwrap();
        (tx.into_signed(sig).into(), key.address())
    }

    #[test]
    fn parallel_recovery_keeps_order_and_finds_the_bad_signature() {
        let (txs, senders): (Vec<_>, Vec<_>) = (0..300).map(tx).unzip();
        let recovered = recover_senders(&txs).unwrap();
        assert_eq!(recovered.iter().map(|r| r.signer()).collect::<Vec<_>>(), senders);
        assert_eq!(recover_senders(&txs[..3]).unwrap().len(), 3);
        // Corrupt transaction 250: r = s = 0 never recovers.
        let mut bad = txs.clone();
        let TxEnvelope::Legacy(signed) = &bad[250] else { unreachable!() };
        let zero = Signature::new(U256::ZERO, U256::ZERO, false);
        bad[250] = TxEnvelope::Legacy(alloy_consensus::Signed::new_unchecked(
            signed.tx().clone(),
            zero,
            Default::default(),
        ));
        assert_eq!(recover_senders(&bad).unwrap_err(), 250);
    }

    #[test]
    fn known_senders_are_taken_as_given_and_the_rest_recovered() {
        let (txs, senders): (Vec<_>, Vec<_>) = (0..100).map(tx).unzip();
        let marker = alloy_primitives::Address::repeat_byte(0xaa);
        let known: std::collections::HashMap<B256, Address> =
            txs.iter().step_by(2).map(|t| (*t.tx_hash(), marker)).collect();
        let recovered = recover_senders_with(&txs, |h| known.get(h).copied()).unwrap();
        for (i, r) in recovered.iter().enumerate() {
            // the lookup wins where it answers (no recovery there), recovery everywhere else
            assert_eq!(r.signer(), if i % 2 == 0 { marker } else { senders[i] }, "tx {i}");
        }
    }
}
