//! Node identities: one secp256k1 key gives the libp2p PeerId and the block-sealing address.

use alloy_primitives::{keccak256, Address};
use libp2p::{identity, multiaddr::Protocol, Multiaddr, PeerId};

/// Errors about keys, PeerIds and multiaddrs.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The secret is not a valid secp256k1 scalar.
    #[error("invalid node key: {0}")]
    Key(String),
    /// The PeerId does not embed a secp256k1 public key.
    #[error("PeerId {0} does not embed a secp256k1 public key (Fogchain node ids are secp256k1)")]
    NotSecp256k1(String),
    /// Not a multiaddr of the form `/ip4/HOST/tcp/PORT/p2p/PEERID`.
    #[error("invalid peer address {addr}: {reason}")]
    Addr {
        /// The address given.
        addr: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The libp2p keypair of a node key (32-byte secp256k1 secret).
pub fn keypair(secret: [u8; 32]) -> Result<identity::Keypair, IdentityError> {
    let secret = identity::secp256k1::SecretKey::try_from_bytes(secret)
        .map_err(|e| IdentityError::Key(e.to_string()))?;
    Ok(identity::Keypair::from(identity::secp256k1::Keypair::from(secret)))
}

/// The PeerId of a node key.
pub fn peer_id(secret: [u8; 32]) -> Result<PeerId, IdentityError> {
    Ok(keypair(secret)?.public().to_peer_id())
}

/// The Ethereum address (sealing address) of the secp256k1 key a PeerId embeds: keccak-256 of
/// the uncompressed public key without its 0x04 prefix, last 20 bytes.
pub fn peer_address(peer: &PeerId) -> Result<Address, IdentityError> {
    let not = || IdentityError::NotSecp256k1(peer.to_string());
    // secp256k1 public keys (33 bytes compressed) are short enough to be inlined in the PeerId
    // with the identity multihash (code 0).
    let multihash: &libp2p::multihash::Multihash<64> = peer.as_ref();
    if multihash.code() != 0 {
        return Err(not());
    }
    let key = identity::PublicKey::try_decode_protobuf(multihash.digest()).map_err(|_| not())?;
    let key = key.try_into_secp256k1().map_err(|_| not())?;
    let uncompressed = key.to_bytes_uncompressed();
    Ok(Address::from_slice(&keccak256(&uncompressed[1..])[12..]))
}

/// Splits `/ip4/HOST/tcp/PORT/p2p/PEERID` into the dial address and the PeerId.
pub fn split_peer_addr(addr: &str) -> Result<(Multiaddr, PeerId), IdentityError> {
    let err = |reason: &str| IdentityError::Addr { addr: addr.to_string(), reason: reason.to_string() };
    let mut multiaddr: Multiaddr = addr.parse().map_err(|e: libp2p::multiaddr::Error| err(&e.to_string()))?;
    match multiaddr.pop() {
        Some(Protocol::P2p(peer)) => {
            if multiaddr.is_empty() {
                return Err(err("no transport address before /p2p"));
            }
            Ok((multiaddr, peer))
        }
        _ => Err(err("it must end with /p2p/<PeerId>")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_embeds_the_sealing_address() {
        // Hardhat account 0: its address is well known.
        let secret: [u8; 32] =
            alloy_primitives::hex!("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
        let peer = peer_id(secret).unwrap();
        assert_eq!(
            peer_address(&peer).unwrap(),
            alloy_primitives::address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
        );
        let (addr, parsed) = split_peer_addr(&format!("/ip4/127.0.0.1/tcp/30400/p2p/{peer}")).unwrap();
        assert_eq!(parsed, peer);
        assert_eq!(addr.to_string(), "/ip4/127.0.0.1/tcp/30400");
        assert!(split_peer_addr("/ip4/127.0.0.1/tcp/30400").is_err());
        let ed = identity::Keypair::generate_ed25519().public().to_peer_id();
        assert!(matches!(peer_address(&ed), Err(IdentityError::NotSecp256k1(_))));
    }
}
