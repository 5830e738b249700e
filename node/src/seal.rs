//! Node keys and block seals.
//!
//! Every block is sealed by the node that minted it: `extraData` holds the 65-byte secp256k1
//! signature `r ‖ s ‖ v` (v = y-parity, 0 or 1) of the seal hash, which is the keccak-256 of the
//! RLP header with an empty `extraData` (the scheme of Clique, EIP-225, without the vanity).
//! The signer must be a member of the network and equal the block's beneficiary.

use alloy_consensus::Header;
use alloy_primitives::{Address, Bytes, Signature, B256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use std::path::Path;

/// Length of a seal in `extraData`, bytes.
pub const SEAL_LEN: usize = 65;

/// Errors about node keys and seals.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key file cannot be read or written.
    #[error("node key {path}: {reason}")]
    KeyFile {
        /// Key file path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// `extraData` is not a 65-byte signature.
    #[error("invalid seal: extraData is {0} bytes, want 65")]
    Length(usize),
    /// The signature does not recover.
    #[error("invalid seal signature: {0}")]
    Signature(String),
}

/// The hash a seal signs: keccak-256 of the RLP header with empty `extraData`.
pub fn seal_hash(header: &Header) -> B256 {
    let mut unsealed = header.clone();
    unsealed.extra_data = Bytes::new();
    unsealed.hash_slow()
}

/// Signs `header` in place with the node key.
pub fn seal(header: &mut Header, key: &PrivateKeySigner) -> Result<(), SealError> {
    header.extra_data = Bytes::new();
    let signature =
        key.sign_hash_sync(&seal_hash(header)).map_err(|e| SealError::Signature(e.to_string()))?;
    header.extra_data = Bytes::from(signature.as_bytes().to_vec());
    Ok(())
}

/// The address that sealed `header`.
pub fn sealer(header: &Header) -> Result<Address, SealError> {
    let bytes: &[u8; SEAL_LEN] =
        header.extra_data.as_ref().try_into().map_err(|_| SealError::Length(header.extra_data.len()))?;
    let signature = Signature::from_raw_array(bytes).map_err(|e| SealError::Signature(e.to_string()))?;
    signature
        .recover_address_from_prehash(&seal_hash(header))
        .map_err(|e| SealError::Signature(e.to_string()))
}

/// Loads the node key (hex, as geth's `nodekey` file) or creates a random one.
pub fn load_or_create_key(path: &Path) -> Result<PrivateKeySigner, SealError> {
    let err = |reason: String| SealError::KeyFile { path: path.display().to_string(), reason };
    if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let bytes = hex::decode(text.trim().trim_start_matches("0x")).map_err(|e| err(e.to_string()))?;
        return PrivateKeySigner::from_slice(&bytes).map_err(|e| err(e.to_string()));
    }
    let key = PrivateKeySigner::random();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
    }
    write_private(path, &hex::encode(key.to_bytes())).map_err(|e| err(e.to_string()))?;
    Ok(key)
}

/// Writes a file readable by its owner only (keys).
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    std::io::Write::write_all(&mut file, contents.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_detects_tampering() {
        let key = PrivateKeySigner::random();
        let mut header = Header { number: 7, gas_limit: 30_000_000, ..Default::default() };
        seal(&mut header, &key).unwrap();
        assert_eq!(header.extra_data.len(), SEAL_LEN);
        assert_eq!(sealer(&header).unwrap(), key.address());
        header.number = 8;
        assert_ne!(sealer(&header).unwrap(), key.address());
        header.extra_data = Bytes::from_static(b"short");
        assert!(matches!(sealer(&header), Err(SealError::Length(5))));
    }

    #[test]
    fn key_file_is_created_once_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nodekey");
        let a = load_or_create_key(&path).unwrap();
        let b = load_or_create_key(&path).unwrap();
        assert_eq!(a.address(), b.address());
    }
}
