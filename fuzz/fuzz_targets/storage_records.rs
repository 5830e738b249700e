//! The storage record decoders: an arbitrary record in each table a reader decodes must read
//! back as a value or a `Corrupt` error, never a panic.
#![no_main]

use alloy_primitives::{Address, B256, U256};
use fogchain_storage::{ChainReader, RawOp, Table};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let env = fogchain_fuzz::env();
    let Some((&which, record)) = data.split_first() else { return };
    let hash = B256::repeat_byte(0xfe);
    let address = Address::repeat_byte(0xfe);
    let tables =
        [Table::Headers, Table::Bodies, Table::Receipts, Table::TxLookup, Table::Accounts, Table::Canonical];
    let table = tables[usize::from(which) % tables.len()];
    let key = match table {
        Table::Accounts => address.to_vec(),
        Table::Canonical => 0xfefe_u64.to_be_bytes().to_vec(),
        _ => hash.to_vec(),
    };
    env.storage.write_raw(&[RawOp::Put(table, key.clone(), record.to_vec())], false).unwrap();
    let s = &env.storage;
    let _ = s.header(&hash);
    let _ = s.body(&hash);
    let _ = s.receipts(&hash);
    let _ = s.tx_location(&hash);
    let _ = s.account(&address);
    let _ = s.block_hash(0xfefe);
    let _ = s.storage(&address, &U256::from(1));
    env.storage.write_raw(&[RawOp::Delete(table, key)], false).unwrap();
});
