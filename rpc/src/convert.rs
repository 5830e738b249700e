//! Stored blocks, transactions and receipts -> Ethereum JSON-RPC objects (alloy RPC types).

use alloy_consensus::{transaction::Recovered, Header, ReceiptEnvelope, Transaction as _, TxEnvelope};

use alloy_primitives::{B256, U256};
use alloy_rlp::Encodable;
use alloy_rpc_types_eth::{Block, BlockTransactions, Log, Transaction, TransactionReceipt};
use fogchain_storage::StoredBody;

/// Where an included transaction sits.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TxContext {
    pub(crate) block_hash: B256,
    pub(crate) block_number: u64,
    pub(crate) timestamp: u64,
    pub(crate) base_fee: Option<u64>,
    pub(crate) index: u64,
}

impl TxContext {
    pub(crate) fn new(hash: B256, header: &Header, index: usize) -> Self {
        Self {
            block_hash: hash,
            block_number: header.number,
            timestamp: header.timestamp,
            base_fee: header.base_fee_per_gas,
            index: index as u64,
        }
    }
}

/// A transaction object; `context` is `None` for a pending (pooled) transaction.
pub(crate) fn rpc_transaction(tx: Recovered<TxEnvelope>, context: Option<TxContext>) -> Transaction {
    // Mined: the price paid. Pending: the fee cap, as geth reports `gasPrice` for a pooled
    // EIP-1559 transaction (the execution-apis schema requires the field).
    let effective_gas_price =
        Some(context.map_or_else(|| tx.max_fee_per_gas(), |c| tx.effective_gas_price(c.base_fee)));
    Transaction {
        inner: tx,
        block_hash: context.map(|c| c.block_hash),
        block_number: context.map(|c| c.block_number),
        transaction_index: context.map(|c| c.index),
        effective_gas_price,
        block_timestamp: context.map(|c| c.timestamp),
    }
}

/// A block object with transaction hashes or full transactions.
pub(crate) fn rpc_block(hash: B256, header: Header, body: StoredBody, full: bool) -> Block {
    let size = block_size(&header, &body);
    let transactions = if full {
        let txs = body
            .transactions
            .into_iter()
            .zip(body.senders)
            .enumerate()
            .map(|(i, (tx, sender))| {
                rpc_transaction(Recovered::new_unchecked(tx, sender), Some(TxContext::new(hash, &header, i)))
            })
            .collect();
        BlockTransactions::Full(txs)
    } else {
        BlockTransactions::Hashes(body.transactions.iter().map(|t| *t.tx_hash()).collect())
    };
    let withdrawals = header.withdrawals_root.map(|_| Default::default());
    let mut rpc_header = alloy_rpc_types_eth::Header::new(header);
    rpc_header.hash = hash;
    rpc_header.total_difficulty = Some(U256::ZERO);
    rpc_header.size = Some(U256::from(size));
    Block { header: rpc_header, uncles: vec![], transactions, withdrawals }
}

/// Size in bytes of the RLP block `[header, transactions, ommers(, withdrawals)]`.
fn block_size(header: &Header, body: &StoredBody) -> usize {
    let txs: usize = body.transactions.iter().map(|t| t.length()).sum();
    let txs_list = alloy_rlp::length_of_length(txs) + txs;
    let withdrawals = if header.withdrawals_root.is_some() { 1 } else { 0 };
    let payload = header.length() + txs_list + 1 + withdrawals;
    alloy_rlp::length_of_length(payload) + payload
}

/// Every log of a block as RPC log objects (block, transaction and log indexes filled in), in
/// order; `keep` selects which to return (log index counting is not affected).
pub(crate) fn block_logs(
    hash: B256,
    header: &Header,
    body: &StoredBody,
    receipts: &[ReceiptEnvelope],
    mut keep: impl FnMut(&alloy_primitives::Log) -> bool,
) -> Vec<Log> {
    let mut out = Vec::new();
    let mut log_index = 0u64;
    for (index, (receipt, tx)) in receipts.iter().zip(&body.transactions).enumerate() {
        for inner in receipt.logs() {
            if keep(inner) {
                out.push(Log {
                    inner: inner.clone(),
                    block_hash: Some(hash),
                    block_number: Some(header.number),
                    block_timestamp: Some(header.timestamp),
                    transaction_hash: Some(*tx.tx_hash()),
                    transaction_index: Some(index as u64),
                    log_index: Some(log_index),
                    removed: false,
                });
            }
            log_index += 1;
        }
    }
    out
}

/// A receipt object for transaction `index` of a block.
pub(crate) fn rpc_receipt(
    hash: B256,
    header: &Header,
    body: &StoredBody,
    receipts: &[ReceiptEnvelope],
    index: usize,
) -> Option<TransactionReceipt> {
    let tx = body.transactions.get(index)?;
    let sender = *body.senders.get(index)?;
    let receipt = receipts.get(index)?.clone();
    let previous_cumulative = index.checked_sub(1).map_or(0, |i| receipts[i].cumulative_gas_used());
    let first_log_index: usize = receipts[..index].iter().map(|r| r.logs().len()).sum();
    let context = TxContext::new(hash, header, index);
    let tx_hash = *tx.tx_hash();
    let mut log_index = first_log_index as u64;
    let inner = receipt.map_logs(|inner| {
        let log = Log {
            inner,
            block_hash: Some(hash),
            block_number: Some(header.number),
            block_timestamp: Some(header.timestamp),
            transaction_hash: Some(tx_hash),
            transaction_index: Some(index as u64),
            log_index: Some(log_index),
            removed: false,
        };
        log_index += 1;
        log
    });
    let contract_address = tx.kind().is_create().then(|| sender.create(tx.nonce()));
    Some(TransactionReceipt {
        gas_used: inner.cumulative_gas_used() - previous_cumulative,
        inner,
        transaction_hash: tx_hash,
        transaction_index: Some(index as u64),
        block_hash: Some(hash),
        block_number: Some(header.number),
        effective_gas_price: tx.effective_gas_price(context.base_fee),
        blob_gas_used: None,
        blob_gas_price: None,
        from: sender,
        to: tx.to(),
        contract_address,
    })
}
