// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title SaleBase: one item sold once, for an exact price, to one buyer.
/// @notice The sale contract of the sales-order paper (table 1). The buyer pays exactly `price`
/// wei, which is forwarded to the seller at once; the warehouse locker then checks
/// `verifyOwnership(buyer)` with eth_call before releasing the item.
/// @dev Checks-effects-interactions plus a reentrancy lock on `buy`.
abstract contract SaleBase {
    string public make;
    string public model;
    uint16 public year;
    /// @notice Price in wei.
    uint256 public price;
    string public serialNumber;
    address public immutable seller;
    /// @notice The buyer, zero until sold.
    address public buyer;

    bool private sold;
    bool private locked;

    /// @notice The item was bought by `buyer` for `price` wei.
    event Sold(address indexed buyer, uint256 price);

    constructor(
        address seller_,
        string memory make_,
        string memory model_,
        uint16 year_,
        uint256 price_,
        string memory serialNumber_
    ) {
        require(seller_ != address(0), "seller cannot be the zero address");
        seller = seller_;
        make = make_;
        model = model_;
        year = year_;
        price = price_;
        serialNumber = serialNumber_;
    }

    /// @notice Buys the item, paying exactly `price` wei; the value goes to the seller.
    function buy() external payable {
        require(!locked, "reentrant call");
        locked = true;
        require(!sold, "already sold");
        require(msg.sender != seller, "seller cannot buy");
        require(msg.value == price, "wrong price");
        sold = true;
        buyer = msg.sender;
        emit Sold(msg.sender, msg.value);
        (bool ok,) = seller.call{value: msg.value}("");
        require(ok, "payment to seller failed");
        locked = false;
    }

    /// @notice Whether the item has been bought.
    function isSold() external view returns (bool) {
        return sold;
    }

    /// @notice Everything about the item; `owner` is the buyer once sold, else the seller.
    function getItem()
        external
        view
        returns (
            string memory make_,
            string memory model_,
            uint16 year_,
            uint256 price_,
            bool sold_,
            address owner_,
            address buyer_,
            string memory serialNumber_
        )
    {
        return (make, model, year, price, sold, sold ? buyer : seller, buyer, serialNumber);
    }

    /// @notice True when the item is sold and `who` bought it.
    function verifyOwnership(address who) external view returns (bool) {
        return sold && who == buyer;
    }
}

/// @title Sale: a sale deployed directly by its seller, as in the paper.
contract Sale is SaleBase {
    constructor(string memory make_, string memory model_, uint16 year_, uint256 price_, string memory serialNumber_)
        SaleBase(msg.sender, make_, model_, year_, price_, serialNumber_)
    {}
}

/// @title FactorySale: a sale created by `SaleFactory` on behalf of `seller` (same ABI as Sale).
contract FactorySale is SaleBase {
    constructor(
        address seller_,
        string memory make_,
        string memory model_,
        uint16 year_,
        uint256 price_,
        string memory serialNumber_
    ) SaleBase(seller_, make_, model_, year_, price_, serialNumber_) {}
}

/// @title SaleFactory: creates sales for their sellers and lists them.
contract SaleFactory {
    address[] private allSales;
    /// @notice Whether `sale` was created by this factory: what a warehouse checks before it
    /// trusts a sale's `verifyOwnership` (any contract can answer true to that call).
    mapping(address => bool) public isSale;

    /// @notice `seller` created `sale` for the item with `serialNumber`.
    event SaleCreated(address indexed sale, address indexed seller, string serialNumber);

    /// @notice Deploys a sale whose seller is the caller.
    function createSale(
        string calldata make,
        string calldata model,
        uint16 year,
        uint256 price,
        string calldata serialNumber
    ) external returns (address sale) {
        sale = address(new FactorySale(msg.sender, make, model, year, price, serialNumber));
        allSales.push(sale);
        isSale[sale] = true;
        emit SaleCreated(sale, msg.sender, serialNumber);
    }

    /// @notice Number of sales created.
    function saleCount() external view returns (uint256) {
        return allSales.length;
    }

    /// @notice Up to `limit` sales from position `offset`, oldest first.
    function listSales(uint256 offset, uint256 limit) external view returns (address[] memory page) {
        uint256 total = allSales.length;
        if (offset >= total) return new address[](0);
        uint256 end = offset + limit > total ? total : offset + limit;
        page = new address[](end - offset);
        for (uint256 i = offset; i < end; i++) {
            page[i - offset] = allSales[i];
        }
    }
}
