//! Block decode + apply on a scratch database: what a committed Raft entry or a block served
//! by block sync carries. Arbitrary bytes must be refused (decode, seal, rule or execution
//! error), never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let env = fogchain_fuzz::env();
    if let Ok(block) = fogchain_node::chain::SealedBlock::decode(data) {
        let _ = env.chain.apply_block(&block, None, None, |_| None);
    }
});
