// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title Vm: the Foundry cheatcodes these scripts and tests use.
/// @notice forge-std (which declares all of them) is a git dependency and not on npm; these are
/// the same signatures, called at the same address. Source: https://getfoundry.sh/reference/cheatcodes/overview
interface Vm {
    function envAddress(string calldata name) external view returns (address);
    function envString(string calldata name) external view returns (string memory);
    function envUint(string calldata name) external view returns (uint256);
    function addr(uint256 privateKey) external pure returns (address);
    function startBroadcast(uint256 privateKey) external;
    function stopBroadcast() external;
    function deal(address account, uint256 newBalance) external;
    function prank(address sender) external;
    function expectRevert(bytes calldata revertData) external;
}

// The cheatcode address: address(uint160(uint256(keccak256("hevm cheat code")))).
Vm constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
