// Run by tests/tests/permissioning.rs with FOGCHAIN_KEYS holding one key: an account the
// network's AccountPermissions lets transact but not deploy. A Hardhat deployment from it fails
// with the node's clear error (docs/permissioning.md).
const { expect } = require("chai");
const { ethers } = require("hardhat");
const Sale = require("../../../contracts/artifacts/Sale.json");

describe("A Hardhat deployment by an account that may not deploy", function () {
  it("fails with 'account not permitted to deploy contracts'", async function () {
    const [deployer] = await ethers.getSigners();
    const factory = new ethers.ContractFactory(Sale.abi, Sale.bytecode, deployer);
    let error;
    try {
      const sale = await factory.deploy("Bosch", "Locker item", 2024, 1n, "SN-HH-DENIED");
      await sale.waitForDeployment();
    } catch (e) {
      error = e;
    }
    expect(error, "the deployment must be refused").to.not.equal(undefined);
    expect(error.message).to.match(/account not permitted to deploy contracts/);
  });

  it("still lets it transact", async function () {
    const [account] = await ethers.getSigners();
    const tx = await account.sendTransaction({ to: account.address, value: 1n });
    expect((await tx.wait()).status).to.equal(1);
  });
});
