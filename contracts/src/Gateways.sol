// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title Gateways: an admin-managed allowlist of accounts that may submit IoT data.
/// @notice The admin (the deployer, transferable) adds and removes gateways, the accounts of the
/// Fogchain IoT proxy and of trusted operators. Contracts that accept sensor data inherit it.
abstract contract Gateways {
    /// @notice The account that manages the allowlist.
    address public admin;
    /// @notice Whether an account may submit data.
    mapping(address => bool) public isGateway;

    event AdminTransferred(address indexed previousAdmin, address indexed newAdmin);
    event GatewayAdded(address indexed gateway);
    event GatewayRemoved(address indexed gateway);

    constructor() {
        admin = msg.sender;
        emit AdminTransferred(address(0), msg.sender);
    }

    modifier onlyAdmin() {
        require(msg.sender == admin, "caller is not the admin");
        _;
    }

    modifier onlyGateway() {
        require(isGateway[msg.sender], "caller is not a gateway");
        _;
    }

    /// @notice Hands the allowlist to `newAdmin` (not the zero address).
    function transferAdmin(address newAdmin) external onlyAdmin {
        require(newAdmin != address(0), "admin cannot be the zero address");
        emit AdminTransferred(admin, newAdmin);
        admin = newAdmin;
    }

    /// @notice Allows `gateway` to submit data.
    function addGateway(address gateway) external onlyAdmin {
        require(!isGateway[gateway], "already a gateway");
        isGateway[gateway] = true;
        emit GatewayAdded(gateway);
    }

    /// @notice Revokes `gateway`.
    function removeGateway(address gateway) external onlyAdmin {
        require(isGateway[gateway], "not a gateway");
        isGateway[gateway] = false;
        emit GatewayRemoved(gateway);
    }
}
