// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {vm} from "../src/Vm.sol";
import {Sale} from "fogchain/Sale.sol";
import {SaleFactory} from "fogchain/Sale.sol";

/// @notice The sales-order scenario with `forge script --broadcast`: the seller (SELLER_KEY)
/// deploys a Sale and lists a second item through the devnet's predeployed SaleFactory
/// (FACTORY); the buyer (BUYER_KEY) buys the first. Each call is a signed transaction.
contract SaleScript {
    function run() external returns (Sale sale, address listed) {
        uint256 sellerKey = vm.envUint("SELLER_KEY");
        uint256 buyerKey = vm.envUint("BUYER_KEY");
        SaleFactory factory = SaleFactory(vm.envAddress("FACTORY"));

        vm.startBroadcast(sellerKey);
        sale = new Sale("Bosch", "GSR 18V", 2024, 1 ether, "SN-FORGE-1");
        listed = factory.createSale("Makita", "DHP 485", 2023, 2 ether, "SN-FORGE-2");
        vm.stopBroadcast();

        vm.startBroadcast(buyerKey);
        sale.buy{value: 1 ether}();
        vm.stopBroadcast();

        require(sale.verifyOwnership(vm.addr(buyerKey)), "the buyer does not own the item");
    }
}
