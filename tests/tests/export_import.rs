//! `fogchain export` / `fogchain import`: a devnet's chain written as geth's RLP block stream and
//! imported into a fresh datadir with the same genesis gives the same head and state root; a
//! stream that does not link, or a block whose seal is not a member's, is refused.

use alloy_primitives::Address;
use fogchain_e2e::{
    fogchain_bin,
    tx::{key, sign, transfer},
    Devnet,
};
use serde_json::json;
use std::{path::Path, process::Command};

fn fogchain(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = Command::new(fogchain_bin()).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A node config for a fresh datadir `dir` with the devnet's genesis.
fn fresh_config(dir: &Path, genesis: &Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(&config, format!("datadir = \"data\"\ngenesis = {:?}\n", genesis.display().to_string()))
        .unwrap();
    config
}

#[test]
fn export_then_import_gives_the_same_chain() {
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(dir.path());
    let rpc = devnet.rpc(0);
    let sender = key(&devnet.account_key(0));
    let mut last = String::new();
    for nonce in 0..6u64 {
        let (raw, hash) =
            sign(&sender, transfer(devnet.network.chain_id, nonce, Address::repeat_byte(7), 1_000));
        rpc.call("eth_sendRawTransaction", json!([raw]));
        last = hash;
    }
    rpc.wait_receipt(&last);
    let head = rpc.call("eth_getBlockByNumber", json!(["latest", false]));
    let genesis = dir.path().join("genesis.json");
    assert!(genesis.exists());
    devnet.stop();

    let stream = dir.path().join("chain.rlp");
    let node0 = dir.path().join("node0/config.toml");
    let (ok, err) =
        fogchain(&["export".as_ref(), "--config".as_ref(), node0.as_os_str(), stream.as_os_str()]);
    assert!(ok, "{err}");

    let fresh = fresh_config(&dir.path().join("imported"), &genesis);
    let (ok, err) =
        fogchain(&["import".as_ref(), "--config".as_ref(), fresh.as_os_str(), stream.as_os_str()]);
    assert!(ok, "{err}");
    let number = u64::from_str_radix(head["number"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    let want = format!("head #{number} {}", head["hash"].as_str().unwrap());
    assert!(err.contains(&want), "{err} (want {want})");
    // Importing again passes over the stored blocks.
    let (ok, err) =
        fogchain(&["import".as_ref(), "--config".as_ref(), fresh.as_os_str(), stream.as_os_str()]);
    assert!(ok && err.contains("imported 0 blocks"), "{err}");

    // A stream from block 2 on does not link to a fresh datadir's genesis.
    let tail = dir.path().join("tail.rlp");
    let (ok, err) = fogchain(&[
        "export".as_ref(),
        "--config".as_ref(),
        node0.as_os_str(),
        tail.as_os_str(),
        "--from".as_ref(),
        "2".as_ref(),
    ]);
    assert!(ok, "{err}");
    let other = fresh_config(&dir.path().join("unlinked"), &genesis);
    let (ok, err) = fogchain(&["import".as_ref(), "--config".as_ref(), other.as_os_str(), tail.as_os_str()]);
    assert!(!ok && err.contains("refused"), "{err}");

    // A block whose seal was altered (last byte of the first block's extraData signature) is
    // refused, and nothing after it is imported.
    let mut bytes = std::fs::read(&stream).unwrap();
    let first = first_item_len(&bytes);
    let seal_end = find_extra_data_end(&bytes[..first]);
    bytes[seal_end - 2] ^= 0x01;
    let forged = dir.path().join("forged.rlp");
    std::fs::write(&forged, &bytes).unwrap();
    let third = fresh_config(&dir.path().join("forged"), &genesis);
    let (ok, err) =
        fogchain(&["import".as_ref(), "--config".as_ref(), third.as_os_str(), forged.as_os_str()]);
    assert!(!ok && err.contains("refused"), "{err}");
}

/// Length of the first RLP list of the stream.
fn first_item_len(bytes: &[u8]) -> usize {
    match bytes[0] {
        b @ 0xc0..=0xf7 => 1 + usize::from(b - 0xc0),
        b => {
            let n = usize::from(b - 0xf7);
            1 + n + bytes[1..=n].iter().fold(0usize, |acc, x| acc * 256 + usize::from(*x))
        }
    }
}

/// End offset of the 65-byte seal in the first header's `extraData` (an RLP string of 65
/// bytes: prefix 0xb8 0x41).
fn find_extra_data_end(block: &[u8]) -> usize {
    let at = block.windows(2).position(|w| w == [0xb8, 0x41]).expect("a 65-byte extraData");
    at + 2 + 65
}
