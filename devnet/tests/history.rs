//! A Fogchain network's EIP-2935 history contract (predeployed by the devnet genesis): each
//! block's pre-block system call stores its parent's hash, as on Ethereum since Prague.

use alloy_consensus::{transaction::Recovered, TxEnvelope};
use alloy_eips::eip2935::HISTORY_STORAGE_ADDRESS;
use alloy_primitives::{Address, B256, U256};
use fogchain_devnet::genesis_spec;
use fogchain_evm::{call, child_header, execute_block, Budget, CallOutcome, CallParams, Mode};
use fogchain_storage::{ChainReader, Storage};

#[test]
fn history_contract_serves_the_hashes_of_earlier_blocks() {
    let spec = genesis_spec(1337, 30_000_000, vec![], &[], None, None, false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), &spec).unwrap();
    let mut hashes = vec![spec.genesis_hash];
    for _ in 0..3 {
        let (hash, head) = storage.head().unwrap();
        let template = child_header(&spec, hash, &head, head.timestamp + 1, Address::ZERO);
        let out = execute_block(
            &spec,
            &storage,
            &head,
            template,
            Vec::<Recovered<TxEnvelope>>::new(),
            None,
            Mode::Validate,
        )
        .unwrap();
        let hash = out.header.hash_slow();
        storage.write_block(&out.into_block_write(hash, None)).unwrap();
        hashes.push(hash);
    }
    let (_, head) = storage.head().unwrap();
    assert_eq!(head.number, 3);
    let ask = |number: u64| {
        let params = CallParams {
            to: Some(HISTORY_STORAGE_ADDRESS),
            input: U256::from(number).to_be_bytes::<32>().to_vec().into(),
            ..Default::default()
        };
        call(&spec, &storage, &head, &params, 1_000_000, Budget::unlimited()).unwrap()
    };
    for number in 0..3u64 {
        match ask(number) {
            CallOutcome::Success { output, .. } => {
                assert_eq!(B256::from_slice(&output), hashes[number as usize], "block {number}")
            }
            other => panic!("block {number}: {other:?}"),
        }
    }
    // The head itself (and later blocks) are not in the history: the contract reverts.
    assert!(!matches!(ask(3), CallOutcome::Success { .. }));
}
