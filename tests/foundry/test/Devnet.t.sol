// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {vm} from "../src/Vm.sol";
import {DeviceRegistry} from "fogchain/DeviceRegistry.sol";
import {DangerIndex} from "fogchain/DangerIndex.sol";
import {Sale, SaleFactory} from "fogchain/Sale.sol";

/// @notice Run with `forge test --fork-url <devnet RPC>`: every read below is served by a
/// Fogchain node (eth_getCode, eth_getStorageAt, eth_getBalance, ...); writes stay in forge's
/// local fork. Environment: DEVICE_REGISTRY, DANGER_INDEX, FACTORY (network.json -> contracts),
/// ADMIN (dev account 0), SENSOR_ID and SENSOR_KEY (a demo sensor, network.json
/// -> proxy.devices), SALE (the Sale script/Sale.s.sol made).
contract DevnetForkTest {
    DeviceRegistry registry = DeviceRegistry(vm.envAddress("DEVICE_REGISTRY"));
    DangerIndex dangerIndex = DangerIndex(vm.envAddress("DANGER_INDEX"));

    /// The demo devices the devnet registers in its genesis, with their keys and kinds.
    function test_predeployed_device_registry() public view {
        // The proxy's device key: keccak256 of the device id.
        bytes32 sensor = keccak256(bytes(vm.envString("SENSOR_ID")));
        require(registry.isActive(sensor), "the sensor is not active");
        require(registry.keyOf(sensor) == vm.envAddress("SENSOR_KEY"), "the sensor's key differs");
        require(keccak256(bytes(registry.kindOf(sensor))) == keccak256("sensor"), "not a sensor");
        require(!registry.isActive(keccak256("no-such-device")), "an unknown device is active");
    }

    /// DangerIndex's admin and gateway from genesis, and its pure formula run on the fork.
    function test_predeployed_danger_index() public view {
        address admin = vm.envAddress("ADMIN");
        require(dangerIndex.admin() == admin, "DangerIndex admin differs");
        require(dangerIndex.isGateway(admin), "account 0 is not a gateway");
        (uint256 diX100,, uint8 risk) = dangerIndex.compute(0, [uint256(1000), 1000, 1000, 1000, 1000], 1);
        require(risk == 2 && diX100 > 8000, "a dry, dark day is not extreme");
    }

    /// The Sale the script deployed and sold on the devnet; a second buy reverts in the fork too.
    function test_sale_from_the_script() public {
        Sale sale = Sale(vm.envAddress("SALE"));
        require(sale.isSold(), "the scripted sale is not sold");
        require(sale.verifyOwnership(sale.buyer()), "buyer does not own the item");
        require(SaleFactory(vm.envAddress("FACTORY")).saleCount() >= 1, "the factory lists no sale");
        address other = address(0xB0B);
        vm.deal(other, 2 ether);
        vm.prank(other);
        vm.expectRevert(bytes("already sold"));
        sale.buy{value: 1 ether}();
    }
}
