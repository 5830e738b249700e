// Mocha tests run by `hardhat test --network fogchain`: deploy the Sale contract of the
// sales-order scenario and exercise it through Hardhat's ethers plugin.
const { expect } = require("chai");
const { ethers, network } = require("hardhat");
const Sale = require("../../../contracts/artifacts/Sale.json");

describe("Sale on Fogchain through Hardhat", function () {
  let seller, buyer, stranger, sale;
  const price = ethers.parseEther("1.5");

  before(async function () {
    [seller, buyer, stranger] = await ethers.getSigners();
    expect(network.name).to.equal("fogchain");
    expect((await ethers.provider.getNetwork()).chainId).to.equal(BigInt(network.config.chainId));
    const factory = new ethers.ContractFactory(Sale.abi, Sale.bytecode, seller);
    sale = await factory.deploy("Bosch", "Locker item", 2024, price, "SN-HH-1");
    await sale.waitForDeployment();
  });

  it("is deployed with the seller's item", async function () {
    const item = await sale.getItem();
    expect(item.model_).to.equal("Locker item");
    expect(item.price_).to.equal(price);
    expect(item.owner_).to.equal(seller.address);
    expect(await ethers.provider.getCode(await sale.getAddress())).to.not.equal("0x");
  });

  it("refuses a wrong price with the contract's reason", async function () {
    let error;
    try {
      await sale.connect(buyer).buy({ value: price - 1n });
    } catch (e) {
      error = e;
    }
    expect(error, "buy with a wrong price must fail").to.not.equal(undefined);
    expect(error.reason ?? error.message).to.match(/wrong price/);
  });

  it("sells to the buyer and pays the seller", async function () {
    const before = await ethers.provider.getBalance(seller.address);
    const tx = await sale.connect(buyer).buy({ value: price });
    const receipt = await tx.wait();
    expect(receipt.status).to.equal(1);
    expect(await ethers.provider.getBalance(seller.address)).to.equal(before + price);
    expect(await sale.verifyOwnership(buyer.address)).to.equal(true);
    expect(await sale.verifyOwnership(stranger.address)).to.equal(false);
  });

  it("emits events that a filter query finds", async function () {
    const events = await sale.queryFilter("*", 0);
    expect(events.length).to.be.greaterThan(0);
  });
});
