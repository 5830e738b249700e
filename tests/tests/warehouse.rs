//! Warehouse release (sales-order scenario) through the proxy: the buyer's QR barcode from
//! `fogchain sale barcode`, a challenge signed with personal_sign, verifyOwnership by eth_call,
//! the locker's shadow delta over MQTT and the release recorded on chain. A stranger holding a
//! copy of the barcode cannot open the locker, nor can a contract that answers true to every
//! call, nor a sale whose item is not in that locker.

use alloy_primitives::{Address, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_sol_types::SolCall;
use fogchain_contracts::{Sale, SaleFactory};
use fogchain_e2e::{
    fogchain_bin,
    mqtt::Mqtt,
    tx::{eip1559, key, sign},
    Devnet,
};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(120);

fn post(url: &str, user: &str, password: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::blocking::Client::new()
        .post(url)
        .basic_auth(user, Some(password))
        .json(&body)
        .timeout(Duration::from_secs(60))
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
}

#[test]
fn buyer_opens_the_locker_and_a_barcode_copy_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let net = Devnet::start(dir.path());
    let rpc = net.rpc(0);
    let chain_id = net.network.chain_id;
    let (seller, buyer, stranger) =
        (key(&net.account_key(1)), key(&net.account_key(2)), key(&net.account_key(3)));
    let factory: Address = net.contract("SaleFactory").parse().unwrap();
    let price = U256::from(10u128.pow(18));

    // The seller lists the item; the buyer pays for it.
    let create = SaleFactory::createSaleCall {
        make: "Acme".into(),
        model: "alpha".into(),
        year: 2019,
        price,
        serialNumber: "4AA6".into(),
    };
    let (raw, hash) = sign(
        &seller,
        eip1559(chain_id, 0, TxKind::Call(factory), U256::ZERO, create.abi_encode().into(), 3_000_000),
    );
    rpc.call("eth_sendRawTransaction", json!([raw]));
    let receipt = rpc.wait_receipt(&hash);
    assert_eq!(receipt["status"], "0x1");
    let sale: Address = {
        let topic = receipt["logs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["address"].as_str().unwrap().eq_ignore_ascii_case(&factory.to_string()))
            .unwrap()["topics"][1]
            .as_str()
            .unwrap()
            .to_string();
        Address::from_slice(&alloy_primitives::hex::decode(&topic).unwrap()[12..])
    };
    let (raw, hash) = sign(
        &buyer,
        eip1559(chain_id, 0, TxKind::Call(sale), price, Sale::buyCall {}.abi_encode().into(), 300_000),
    );
    rpc.call("eth_sendRawTransaction", json!([raw]));
    assert_eq!(rpc.wait_receipt(&hash)["status"], "0x1");

    // The buyer's barcode.
    let png = dir.path().join("barcode.png");
    let out = std::process::Command::new(fogchain_bin())
        .args([
            "sale",
            "barcode",
            "--chain-id",
            &chain_id.to_string(),
            "--sale",
            &sale.to_string(),
            "--buyer",
            &buyer.address().to_string(),
            "--out",
        ])
        .arg(&png)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let barcode = String::from_utf8(out.stdout).unwrap().lines().next().unwrap().to_string();
    assert_eq!(barcode, format!("ethereum:{sale}@{chain_id}/verifyOwnership?address={}", buyer.address()));
    assert_eq!(&std::fs::read(&png).unwrap()[1..4], b"PNG");

    // The locker listens for its shadow's delta.
    let locker = net.proxy().locker.as_ref().unwrap();
    let (locker_id, locker_pw) = (locker.id.as_str(), locker.password.as_str());
    let lock = Mqtt::device(&net.proxy_mqtt(), "locker", locker_id, locker_pw);
    let shadow = format!("$fogchain/things/{locker_id}/shadow");
    assert_eq!(lock.subscribe(&format!("{shadow}/update/#")), vec![true]);
    let base = net.proxy_http();
    let try_challenge = |code: &str| {
        post(&format!("{base}/warehouse/challenge"), locker_id, locker_pw, json!({"barcode": code}))
    };
    let challenge = |code: &str| {
        let (status, c) = try_challenge(code);
        assert_eq!(status, 200, "{c}");
        c
    };
    let stock =
        |sale: Address| post(&format!("{base}/warehouse/stock"), locker_id, locker_pw, json!({"sale": sale}));

    // Until the item is in the locker, nothing opens it.
    let (status, body) = try_challenge(&barcode);
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not in any locker"), "{body}");
    let (status, body) = stock(sale);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stocked"], true);

    // A contract of 10 bytes that answers true to every call is no sale: it cannot be stocked,
    // and a barcode naming it opens nothing.
    let always_true = alloy_primitives::hex::decode("69600160005260206000f3600052600a6016f3").unwrap();
    let (raw, hash) =
        sign(&stranger, eip1559(chain_id, 0, TxKind::Create, U256::ZERO, always_true.into(), 200_000));
    rpc.call("eth_sendRawTransaction", json!([raw]));
    let receipt = rpc.wait_receipt(&hash);
    let fake: Address = receipt["contractAddress"].as_str().unwrap().parse().unwrap();
    let code = rpc.call("eth_getCode", json!([fake, "latest"]));
    assert_eq!(code, "0x600160005260206000f3");
    let (status, body) = stock(fake);
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not a genuine sale"), "{body}");
    let fake_barcode = format!("ethereum:{fake}@{chain_id}/verifyOwnership?address={}", stranger.address());
    let (status, body) = try_challenge(&fake_barcode);
    assert_eq!(status, 403, "{body}");
    let release = |c: &Value, signer: &alloy_signer_local::PrivateKeySigner| {
        let signature = signer.sign_message_sync(c["message"].as_str().unwrap().as_bytes()).unwrap();
        post(
            &format!("{base}/warehouse/release"),
            locker_id,
            locker_pw,
            json!({"challengeId": c["challengeId"], "signature": format!("0x{}", alloy_primitives::hex::encode(signature.as_bytes()))}),
        )
    };

    // A stranger with a copy of the barcode cannot sign for the buyer.
    let (status, body) = release(&challenge(&barcode), &stranger);
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not by the buyer"), "{body}");
    // nor with a barcode naming themselves: they do not own the item.
    let own = format!("ethereum:{sale}@{chain_id}/verifyOwnership?address={}", stranger.address());
    let (status, body) = release(&challenge(&own), &stranger);
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("verifyOwnership returned false"), "{body}");
    // A sensor may not use the warehouse API at all.
    let sensor = net.device(0);
    let (status, _) = post(
        &format!("{base}/warehouse/challenge"),
        &sensor.id,
        &sensor.password,
        json!({"barcode": barcode}),
    );
    assert_eq!(status, 403);

    // The buyer signs: the locker's shadow gets desired door=open as a delta.
    let (status, body) = release(&challenge(&barcode), &buyer);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["released"], true);
    let delta = lock.wait_json(&format!("{shadow}/update/delta"), WAIT, |_| true);
    assert_eq!(delta["state"], json!({"door": "open"}));
    // The locker opens and reports.
    lock.publish(
        &format!("{shadow}/update"),
        json!({"state": {"reported": {"door": "open"}}, "clientToken": "opened"}).to_string(),
    );
    let accepted =
        lock.wait_json(&format!("{shadow}/update/accepted"), WAIT, |a| a["clientToken"] == "opened");
    assert_eq!(accepted["state"]["reported"]["door"], "open");
    // The release is recorded on chain for audit.
    let registry = net.contract("SensorRegistry");
    let record = fogchain_e2e::wait_for("the release on chain", || {
        fogchain_e2e::readings(&rpc, &registry, locker_id).into_iter().find(|r| r.1 == "warehouse/release")
    });
    let audit: Value = serde_json::from_slice(&record.2).unwrap();
    assert_eq!(audit["sale"].as_str().unwrap().parse::<Address>().unwrap(), sale);
    assert_eq!(audit["buyer"].as_str().unwrap().parse::<Address>().unwrap(), buyer.address());
    // The item is released once.
    let (status, body) = try_challenge(&barcode);
    assert_eq!(status, 409, "{body}");
}
