//! `DIR/network.json`: what a running devnet is made of and how to reach it. Written by the
//! launcher once every node serves and a leader is elected (atomically: a reader never sees
//! half a file); read by tests, `fogchain-bench` and scripts.

use crate::DevnetError;
use alloy_primitives::{Address, B256};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, path::Path, path::PathBuf};

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkFile {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Hash of the genesis block.
    pub genesis_hash: B256,
    /// Bearer token of the nodes' admin methods (`admin_`, `raft_` membership changes).
    pub admin_token: String,
    /// The nodes, node *i* at index *i*.
    pub nodes: Vec<NodeEntry>,
    /// Predeployed contracts by name (`DeviceRegistry`, `SensorRegistry`, `DangerIndex`,
    /// `SaleFactory`).
    pub contracts: BTreeMap<String, Address>,
    /// The IoT proxy; `null` with `--no-proxy`.
    pub proxy: Option<ProxyEntry>,
    /// The prefunded test-mnemonic accounts.
    pub accounts: Vec<AccountEntry>,
}

/// One node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeEntry {
    /// `node<i>`.
    pub name: String,
    /// JSON-RPC over HTTP, `http://host:port`.
    pub rpc: String,
    /// JSON-RPC over WebSocket (same port), `ws://host:port`.
    pub ws: String,
    /// OS process id.
    pub pid: Option<u32>,
    /// The node's datadir.
    pub datadir: PathBuf,
    /// Raft id (i + 1).
    pub raft_id: u64,
    /// libp2p PeerId.
    pub peer_id: Option<String>,
    /// libp2p address with the PeerId, `/ip4/…/tcp/…/p2p/…`.
    pub p2p: Option<String>,
    /// Block-sealing address.
    pub address: Option<Address>,
    /// Prometheus metrics, `http://host:port/metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
}

/// A login of the browser apps (a proxy client with a password).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserEntry {
    /// User name.
    pub name: String,
    /// Proxy role: `admin`, `viewer` (read only) or `dapp` (reads and signed transactions).
    pub role: String,
    /// Password.
    pub password: String,
}

/// The IoT proxy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyEntry {
    /// JSON-RPC gateway, `http://host:port`.
    pub http: String,
    /// MQTT listener, `mqtt://host:port`.
    pub mqtt: String,
    /// MQTT over WebSocket for browsers, `ws://host:port/mqtt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtt_ws: Option<String>,
    /// An admin-role bearer token of the gateway.
    pub token: String,
    /// The proxy's gateway account.
    pub gateway: Address,
    /// Its config file.
    pub config: PathBuf,
    /// OS process id.
    pub pid: Option<u32>,
    /// Demo sensors and actuators.
    pub devices: Vec<DeviceEntry>,
    /// The demo warehouse locker.
    pub locker: Option<DeviceEntry>,
    /// Prometheus metrics, `http://host:port/metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    /// The browser apps, `http://host:port/app/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Logins of the browser apps.
    #[serde(default)]
    pub users: Vec<UserEntry>,
}

/// A demo device: its MQTT / HTTP credentials and signing key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceEntry {
    /// Device id (also its MQTT client id prefix).
    pub id: String,
    /// `sensor`, `actuator` or `locker`.
    pub kind: String,
    /// MQTT / HTTP Basic username (the id).
    pub username: String,
    /// Password.
    pub password: String,
    /// Hex secp256k1 key that signs its readings, `0x…`.
    pub private_key: String,
    /// Address of that key (registered in DeviceRegistry).
    pub address: Address,
}

/// A prefunded account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountEntry {
    /// Its address.
    pub address: Address,
    /// Hex secp256k1 key, `0x…`.
    pub private_key: String,
}

impl NetworkFile {
    /// Reads `path`.
    pub fn load(path: &Path) -> Result<Self, DevnetError> {
        let text =
            std::fs::read(path).map_err(|source| DevnetError::Io { path: path.to_path_buf(), source })?;
        serde_json::from_slice(&text).map_err(|source| DevnetError::Json { path: path.to_path_buf(), source })
    }

    /// Writes `path` atomically (a temporary file renamed over it).
    pub fn write(&self, path: &Path) -> Result<(), DevnetError> {
        let io = |source| DevnetError::Io { path: path.to_path_buf(), source };
        let text = serde_json::to_string_pretty(self)
            .map_err(|source| DevnetError::Json { path: path.to_path_buf(), source })?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// A predeployed contract's address.
    pub fn contract(&self, name: &str) -> Option<Address> {
        self.contracts.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field names are what scripts and JavaScript tests read (camelCase, as README.md
    /// documents), and a file survives a write and a load.
    #[test]
    fn camel_case_fields_round_trip() {
        let text = r#"{"chainId": 1337, "genesisHash": "0x0101010101010101010101010101010101010101010101010101010101010101",
          "adminToken": "t",
          "nodes": [{"name": "node0", "rpc": "http://127.0.0.1:8545", "ws": "ws://127.0.0.1:8545",
                     "pid": 42, "datadir": "/d/node0/data", "raftId": 1, "peerId": "16Uiu2HA",
                     "p2p": "/ip4/127.0.0.1/tcp/30400/p2p/16Uiu2HA",
                     "address": "0x0000000000000000000000000000000000000001"}],
          "contracts": {"DangerIndex": "0x0000000000000000000000000000000000000002"},
          "proxy": {"http": "http://127.0.0.1:8080", "mqtt": "mqtt://127.0.0.1:1883", "token": "fgc",
                    "gateway": "0x0000000000000000000000000000000000000003", "config": "/d/proxy/proxy.toml",
                    "pid": 43, "devices": [{"id": "sensor-1", "kind": "sensor", "username": "sensor-1",
                    "password": "p", "privateKey": "0x01", "address": "0x0000000000000000000000000000000000000004"}],
                    "locker": null},
          "accounts": [{"address": "0x0000000000000000000000000000000000000005", "privateKey": "0x02"}]}"#;
        let file: NetworkFile = serde_json::from_str(text).unwrap();
        assert_eq!(file.nodes[0].raft_id, 1);
        assert_eq!(file.contract("DangerIndex"), Some(Address::with_last_byte(2)));
        assert_eq!(file.proxy.as_ref().unwrap().devices[0].private_key, "0x01");
        let dir = std::env::temp_dir().join(format!("fogchain-network-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("network.json");
        file.write(&path).unwrap();
        let again = NetworkFile::load(&path).unwrap();
        assert_eq!(serde_json::to_value(&again).unwrap(), serde_json::to_value(&file).unwrap());
        let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(written["nodes"][0]["peerId"], "16Uiu2HA");
        assert!(written["proxy"]["locker"].is_null());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
