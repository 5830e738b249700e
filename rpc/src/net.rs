//! `net_` and `web3_`.

use crate::{NetApiServer, RpcResult, Web3ApiServer};
use alloy_primitives::{Bytes, B256};

/// Implementation of `net_`.
#[derive(Clone)]
pub struct NetRpc {
    chain_id: u64,
    cluster: crate::ClusterRpc,
}

impl std::fmt::Debug for NetRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetRpc").field("chain_id", &self.chain_id).finish()
    }
}

impl NetRpc {
    /// For the chain with this id; peers are counted by `cluster`.
    pub fn new(chain_id: u64, cluster: crate::ClusterRpc) -> Self {
        Self { chain_id, cluster }
    }
}

impl NetApiServer for NetRpc {
    fn version(&self) -> RpcResult<String> {
        Ok(self.chain_id.to_string())
    }
    fn peer_count(&self) -> RpcResult<alloy_primitives::U64> {
        Ok(alloy_primitives::U64::from(self.cluster.peer_count()))
    }
    fn listening(&self) -> RpcResult<bool> {
        Ok(true)
    }
}

/// Implementation of `web3_`.
#[derive(Debug, Clone, Default)]
pub struct Web3Rpc;

impl Web3ApiServer for Web3Rpc {
    fn client_version(&self) -> RpcResult<String> {
        Ok(crate::client_version())
    }
    fn sha3(&self, data: Bytes) -> RpcResult<B256> {
        Ok(alloy_primitives::keccak256(&data))
    }
}
