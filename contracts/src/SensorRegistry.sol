// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Gateways} from "./Gateways.sol";
import {DeviceRegistry} from "./DeviceRegistry.sol";

/// @title SensorRegistry: the on-chain record of sensor readings (registry messages).
/// @notice The "contract database" of the pervasive-contracts paper: readings recorded here can be
/// read by other contracts. `record` is for gateways (the proxy attests the reading);
/// `recordSigned` carries the device's own signature, so the chain, not the relay, proves who sent
/// it; anyone may relay a signed reading.
/// @dev Signed digest: keccak256(abi.encode(chainId, address(this), deviceId, seq,
/// keccak256(topic), keccak256(payload))), signed as an EIP-191 personal message
/// ("\x19Ethereum Signed Message:\n32" ++ digest). `seq` strictly increases per device, so a
/// signature binds one chain, one registry and one position: replays revert.
contract SensorRegistry is Gateways {
    struct Latest {
        uint64 seq;
        uint64 blockNumber;
        uint64 timestamp;
        string topic;
        bytes payload;
    }

    /// @dev secp256k1n / 2: larger s values are malleable (EIP-2).
    uint256 private constant HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    DeviceRegistry public immutable devices;
    /// @notice Last sequence number recorded per device.
    mapping(bytes32 => uint64) public lastSeq;
    mapping(bytes32 => Latest) private latestByDevice;

    event Reading(bytes32 indexed deviceId, bytes32 indexed topicHash, uint64 seq, string topic, bytes payload);

    constructor(DeviceRegistry devices_) {
        devices = devices_;
    }

    /// @notice Records a reading attested by a gateway; its seq is the device's next one.
    function record(bytes32 deviceId, string calldata topic, bytes calldata payload) external onlyGateway {
        _store(deviceId, lastSeq[deviceId] + 1, topic, payload);
    }

    /// @notice Records many gateway-attested readings in one transaction.
    function recordBatch(bytes32[] calldata deviceIds, string[] calldata topics, bytes[] calldata payloads)
        external
        onlyGateway
    {
        require(deviceIds.length == topics.length && topics.length == payloads.length, "length mismatch");
        for (uint256 i = 0; i < deviceIds.length; i++) {
            _store(deviceIds[i], lastSeq[deviceIds[i]] + 1, topics[i], payloads[i]);
        }
    }

    /// @notice Records a reading signed by the device's registered key.
    function recordSigned(
        bytes32 deviceId,
        uint64 seq,
        string calldata topic,
        bytes calldata payload,
        bytes calldata signature
    ) external {
        _verify(deviceId, seq, topic, payload, signature);
        _store(deviceId, seq, topic, payload);
    }

    /// @notice Records many device-signed readings in one transaction (all or nothing).
    function recordSignedBatch(
        bytes32[] calldata deviceIds,
        uint64[] calldata seqs,
        string[] calldata topics,
        bytes[] calldata payloads,
        bytes[] calldata signatures
    ) external {
        uint256 n = deviceIds.length;
        require(
            seqs.length == n && topics.length == n && payloads.length == n && signatures.length == n,
            "length mismatch"
        );
        for (uint256 i = 0; i < n; i++) {
            _verify(deviceIds[i], seqs[i], topics[i], payloads[i], signatures[i]);
            _store(deviceIds[i], seqs[i], topics[i], payloads[i]);
        }
    }

    /// @notice The digest a device signs (before the EIP-191 prefix).
    function digest(bytes32 deviceId, uint64 seq, string calldata topic, bytes calldata payload)
        public
        view
        returns (bytes32)
    {
        return keccak256(
            abi.encode(block.chainid, address(this), deviceId, seq, keccak256(bytes(topic)), keccak256(payload))
        );
    }

    /// @notice The device's latest reading.
    function latest(bytes32 deviceId)
        external
        view
        returns (uint64 seq, string memory topic, bytes memory payload, uint64 blockNumber, uint64 timestamp)
    {
        Latest storage l = latestByDevice[deviceId];
        return (l.seq, l.topic, l.payload, l.blockNumber, l.timestamp);
    }

    function _verify(
        bytes32 deviceId,
        uint64 seq,
        string calldata topic,
        bytes calldata payload,
        bytes calldata signature
    ) internal view {
        require(devices.isActive(deviceId), "device not active");
        require(seq > lastSeq[deviceId], "sequence number already used");
        require(signature.length == 65, "signature must be 65 bytes");
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v < 27) v += 27;
        require(v == 27 || v == 28, "invalid signature v");
        require(uint256(s) <= HALF_N, "invalid signature s");
        bytes32 message =
            keccak256(abi.encodePacked("\x19Ethereum Signed Message:\n32", digest(deviceId, seq, topic, payload)));
        address signer = ecrecover(message, v, r, s);
        require(signer != address(0) && signer == devices.keyOf(deviceId), "signature is not the device's");
    }

    function _store(bytes32 deviceId, uint64 seq, string calldata topic, bytes calldata payload) internal {
        lastSeq[deviceId] = seq;
        latestByDevice[deviceId] = Latest(seq, uint64(block.number), uint64(block.timestamp), topic, payload);
        emit Reading(deviceId, keccak256(bytes(topic)), seq, topic, payload);
    }
}
