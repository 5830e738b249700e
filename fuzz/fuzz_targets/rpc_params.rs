//! Arbitrary JSON params for every method the node serves over the chain and the pool (`eth_`,
//! `web3_`, `txpool_`, `debug_`): the first input byte picks the method, the rest is the
//! `params` value as sent. Every answer must be a result or a JSON-RPC error, never a panic;
//! the EVM budget is small so execution-heavy inputs stay fast. (`net_`, `raft_` and `admin_`
//! need a running consensus and are covered by the e2e tests.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Rpc {
    runtime: tokio::runtime::Runtime,
    module: jsonrpsee::RpcModule<()>,
    methods: Vec<String>,
}

fn rpc() -> &'static Rpc {
    static RPC: OnceLock<Rpc> = OnceLock::new();
    RPC.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let module = runtime.block_on(async { fogchain_fuzz::rpc_methods() });
        let mut methods: Vec<String> = module.method_names().map(str::to_owned).collect();
        methods.sort();
        Rpc { runtime, module, methods }
    })
}

fuzz_target!(|data: &[u8]| {
    let rpc = rpc();
    let Some((&pick, params)) = data.split_first() else { return };
    let Ok(params) = std::str::from_utf8(params) else { return };
    let method = &rpc.methods[usize::from(pick) % rpc.methods.len()];
    let request = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":{},"params":{params}}}"#,
        serde_json::Value::from(method.as_str())
    );
    // A malformed request (params that break the envelope) is refused by jsonrpsee before any
    // method runs: that is an answer too.
    let _ = rpc.runtime.block_on(rpc.module.raw_json_request(&request, 16));
});
