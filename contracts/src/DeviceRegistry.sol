// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title DeviceRegistry: identities of IoT devices and the keys they sign readings with.
/// @notice Admins (the deployer first; admins add and remove admins) register a device under a
/// 32-byte id with its secp256k1 key address and a kind ("sensor", "actuator", "locker", ...),
/// rotate its key and revoke it. Other contracts (SensorRegistry) check signatures against it.
contract DeviceRegistry {
    struct Device {
        address key;
        bool active;
        string kind;
    }

    mapping(address => bool) public isAdmin;
    /// @notice Number of admins (never drops to zero).
    uint256 public adminCount;
    mapping(bytes32 => Device) private devices;

    event AdminAdded(address indexed admin);
    event AdminRemoved(address indexed admin);
    event DeviceRegistered(bytes32 indexed deviceId, address key, string kind);
    event DeviceRevoked(bytes32 indexed deviceId);
    event DeviceKeyRotated(bytes32 indexed deviceId, address oldKey, address newKey);

    constructor() {
        isAdmin[msg.sender] = true;
        adminCount = 1;
        emit AdminAdded(msg.sender);
    }

    modifier onlyAdmin() {
        require(isAdmin[msg.sender], "caller is not an admin");
        _;
    }

    function addAdmin(address admin) external onlyAdmin {
        require(!isAdmin[admin], "already an admin");
        isAdmin[admin] = true;
        adminCount += 1;
        emit AdminAdded(admin);
    }

    function removeAdmin(address admin) external onlyAdmin {
        require(isAdmin[admin], "not an admin");
        require(admin != msg.sender, "cannot remove yourself");
        isAdmin[admin] = false;
        adminCount -= 1;
        emit AdminRemoved(admin);
    }

    /// @notice The caller gives up its admin role, provided another admin remains.
    function renounceAdmin() external onlyAdmin {
        require(adminCount > 1, "last admin cannot renounce");
        isAdmin[msg.sender] = false;
        adminCount -= 1;
        emit AdminRemoved(msg.sender);
    }

    /// @notice Registers a new device (an id is never reused, even after revocation).
    function register(bytes32 deviceId, address key, string calldata kind) external onlyAdmin {
        require(key != address(0), "key cannot be the zero address");
        require(devices[deviceId].key == address(0), "device already registered");
        devices[deviceId] = Device(key, true, kind);
        emit DeviceRegistered(deviceId, key, kind);
    }

    /// @notice Revokes a device for good: its signatures are no longer accepted.
    function revoke(bytes32 deviceId) external onlyAdmin {
        require(devices[deviceId].active, "device not active");
        devices[deviceId].active = false;
        emit DeviceRevoked(deviceId);
    }

    /// @notice Replaces an active device's key.
    function rotateKey(bytes32 deviceId, address newKey) external onlyAdmin {
        Device storage d = devices[deviceId];
        require(d.active, "device not active");
        require(newKey != address(0), "key cannot be the zero address");
        emit DeviceKeyRotated(deviceId, d.key, newKey);
        d.key = newKey;
    }

    function isActive(bytes32 deviceId) external view returns (bool) {
        return devices[deviceId].active;
    }

    /// @notice The device's current key (zero when unknown; check `isActive` too).
    function keyOf(bytes32 deviceId) external view returns (address) {
        return devices[deviceId].key;
    }

    function kindOf(bytes32 deviceId) external view returns (string memory) {
        return devices[deviceId].kind;
    }
}
