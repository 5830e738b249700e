// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// Minimal sale contract of the sales-order paper (table 1), used by the chain-core client test
/// until the IoT contracts (issue #4) land in contracts/.
contract Sale {
    string public make;
    string public model;
    uint16 public year;
    uint256 public price;
    string public serialNumber;
    address public immutable seller;
    address public buyer;
    bool private sold;

    event Sold(address indexed buyer, uint256 price);

    constructor(string memory make_, string memory model_, uint16 year_, uint256 price_, string memory serialNumber_) {
        seller = msg.sender;
        make = make_;
        model = model_;
        year = year_;
        price = price_;
        serialNumber = serialNumber_;
    }

    function buy() external payable {
        require(!sold, "already sold");
        require(msg.sender != seller, "seller cannot buy");
        require(msg.value == price, "wrong price");
        sold = true;
        buyer = msg.sender;
        emit Sold(msg.sender, msg.value);
        (bool ok, ) = seller.call{value: msg.value}("");
        require(ok, "payment failed");
    }

    function isSold() external view returns (bool) {
        return sold;
    }

    function verifyOwnership(address who) external view returns (bool) {
        return sold && who == buyer;
    }
}
