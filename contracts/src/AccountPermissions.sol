// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title AccountPermissions: which accounts may transact, deploy contracts and call restricted
/// contracts on a Fogchain network, changed only by M-of-N approval of the network's admins.
/// @notice Predeployed at genesis at 0xF0C0000000000000000000000000000000000001. Every node
/// reads this contract's storage directly (Rust `fogchain_evm::permissions`) when it admits a
/// transaction to its pool and when it builds or validates a block, against the state of the
/// parent block: a change takes effect from the block after the one that made it.
///
/// The rule for a transaction from `sender` to `to` (none for a creation):
///   1. `accounts[sender].status` is ACTIVE (NONE: "not permitted to transact", SUSPENDED:
///      "account suspended");
///   2. the account's organisation's status is ACTIVE ("organisation suspended");
///   3. the account's roles include TRANSACT;
///   4. a creation needs DEPLOY too;
///   5. a call to a contract marked `restricted` needs `mayCall[to][sender]`.
/// Only the transaction's own sender and `to` are checked, as in Besu and GoQuorum: contracts
/// that call or create other contracts are not (a restricted contract that must only be
/// reached directly should check `msg.sender == tx.origin` itself).
///
/// CONSENSUS INTERFACE: the first five state variables (slots 0-4) and the packing of
/// `Account` and `Organisation` are read by every node. Changing them forks the network.
contract AccountPermissions {
    /// Account and organisation status.
    uint8 public constant NONE = 0;
    uint8 public constant ACTIVE = 1;
    uint8 public constant SUSPENDED = 2;
    /// Role bits.
    uint8 public constant TRANSACT = 1;
    uint8 public constant DEPLOY = 2;
    /// Most actions in one proposal and most admins (bounds the approval count loop).
    uint256 public constant MAX_ACTIONS = 64;
    uint256 public constant MAX_ADMINS = 64;

    /// One storage word: byte 0 status, byte 1 roles, bytes 2-9 organisation id.
    struct Account {
        uint8 status;
        uint8 roles;
        uint64 org;
    }

    /// Status in the low byte of the first word; the name follows in the next slot.
    struct Organisation {
        uint8 status;
        string name;
    }

    /// A change waiting for approvals: calls to this contract's governed functions, executed
    /// in order, all or none, when `threshold` current admins have approved.
    struct Proposal {
        address proposer;
        bool executed;
        bool cancelled;
        bytes[] actions;
    }

    // ---- read by every node (slots 0-4) ----
    mapping(address => Account) public accounts; // slot 0
    mapping(uint64 => Organisation) public organisations; // slot 1
    mapping(address => bool) public restricted; // slot 2
    mapping(address => mapping(address => bool)) public mayCall; // slot 3: contract => account
    /// How many contracts are restricted: nodes skip the `restricted[to]` read while it is 0.
    uint256 public restrictedCount; // slot 4

    // ---- governance ----
    address[] private adminList;
    mapping(address => bool) public isAdmin;
    /// Approvals a proposal needs (M of the N admins).
    uint256 public threshold;
    Proposal[] private proposals;
    mapping(uint256 => mapping(address => bool)) public approved;

    event AccountChanged(address indexed account, uint64 indexed org, uint8 roles, uint8 status);
    event AccountRemoved(address indexed account);
    event OrganisationChanged(uint64 indexed org, string name, uint8 status);
    event ContractRestricted(address indexed target, bool restricted);
    event CallPermissionChanged(address indexed target, address indexed account, bool allowed);
    event AdminAdded(address indexed admin);
    event AdminRemoved(address indexed admin);
    event ThresholdChanged(uint256 threshold);
    event ProposalCreated(uint256 indexed id, address indexed proposer, bytes[] actions);
    event ProposalApproved(uint256 indexed id, address indexed admin, uint256 approvals);
    event ApprovalRevoked(uint256 indexed id, address indexed admin);
    event ProposalExecuted(uint256 indexed id);
    event ProposalCancelled(uint256 indexed id);

    /// The deployer is the only admin and the threshold is 1, so that the genesis setup can run
    /// through the same proposals as every later change; the last setup proposal hands over to
    /// the network's admins.
    constructor() {
        adminList.push(msg.sender);
        isAdmin[msg.sender] = true;
        threshold = 1;
        emit AdminAdded(msg.sender);
        emit ThresholdChanged(1);
    }

    modifier onlyAdmin() {
        require(isAdmin[msg.sender], "caller is not an admin");
        _;
    }

    /// Governed functions run only as an action of an approved proposal.
    modifier onlySelf() {
        require(msg.sender == address(this), "only through an approved proposal");
        _;
    }

    // ---- the rule, as views (nodes compute the same from storage) ----

    /// @notice Whether `account` may send transactions at all.
    function canTransact(address account) public view returns (bool) {
        Account memory a = accounts[account];
        return a.status == ACTIVE && organisations[a.org].status == ACTIVE && (a.roles & TRANSACT) != 0;
    }

    /// @notice Whether `account` may send contract-creation transactions.
    function canDeploy(address account) external view returns (bool) {
        return canTransact(account) && (accounts[account].roles & DEPLOY) != 0;
    }

    /// @notice Whether `account` may send a transaction to `target`.
    function canCall(address account, address target) external view returns (bool) {
        return canTransact(account) && (!restricted[target] || mayCall[target][account]);
    }

    // ---- governance ----

    /// @notice Current admins.
    function admins() external view returns (address[] memory) {
        return adminList;
    }

    /// @notice Number of proposals ever made (ids are 0 .. count-1).
    function proposalCount() external view returns (uint256) {
        return proposals.length;
    }

    /// @notice A proposal and its approvals by current admins.
    function proposal(uint256 id)
        external
        view
        returns (address proposer, bytes[] memory actions, uint256 approvals, bool executed, bool cancelled)
    {
        Proposal storage p = proposals[id];
        return (p.proposer, p.actions, approvalCount(id), p.executed, p.cancelled);
    }

    /// @notice Approvals of proposal `id` by accounts that are admins now (a removed admin's
    /// approval no longer counts).
    function approvalCount(uint256 id) public view returns (uint256 n) {
        for (uint256 i = 0; i < adminList.length; i++) {
            if (approved[id][adminList[i]]) n++;
        }
    }

    /// @notice Proposes `actions` (ABI-encoded calls of this contract's governed functions) and
    /// approves them; executes at once when the caller's approval reaches the threshold.
    function propose(bytes[] calldata actions) external onlyAdmin returns (uint256 id) {
        require(actions.length > 0 && actions.length <= MAX_ACTIONS, "a proposal has 1 to 64 actions");
        id = proposals.length;
        Proposal storage p = proposals.push();
        p.proposer = msg.sender;
        for (uint256 i = 0; i < actions.length; i++) {
            p.actions.push(actions[i]);
        }
        emit ProposalCreated(id, msg.sender, actions);
        _approve(id);
    }

    /// @notice Approves a pending proposal; executes it when approvals reach the threshold. If an
    /// action fails, the whole call reverts with that action's reason.
    function approve(uint256 id) external onlyAdmin {
        _pending(id);
        require(!approved[id][msg.sender], "already approved");
        _approve(id);
    }

    /// @notice Withdraws the caller's approval of a pending proposal.
    function revokeApproval(uint256 id) external onlyAdmin {
        _pending(id);
        require(approved[id][msg.sender], "not approved");
        approved[id][msg.sender] = false;
        emit ApprovalRevoked(id, msg.sender);
    }

    /// @notice The proposer withdraws a pending proposal.
    function cancel(uint256 id) external onlyAdmin {
        _pending(id);
        require(proposals[id].proposer == msg.sender, "only the proposer can cancel");
        proposals[id].cancelled = true;
        emit ProposalCancelled(id);
    }

    function _pending(uint256 id) private view {
        require(id < proposals.length, "no such proposal");
        require(!proposals[id].executed && !proposals[id].cancelled, "proposal is not pending");
    }

    function _approve(uint256 id) private {
        approved[id][msg.sender] = true;
        uint256 n = approvalCount(id);
        emit ProposalApproved(id, msg.sender, n);
        if (n >= threshold) {
            Proposal storage p = proposals[id];
            p.executed = true;
            for (uint256 i = 0; i < p.actions.length; i++) {
                (bool ok, bytes memory reason) = address(this).call(p.actions[i]);
                if (!ok) {
                    assembly {
                        revert(add(reason, 32), mload(reason))
                    }
                }
            }
            emit ProposalExecuted(id);
        }
    }

    // ---- governed functions (actions of proposals) ----

    function addAdmin(address admin) external onlySelf {
        require(admin != address(0) && admin != address(this), "admin must be an account");
        require(!isAdmin[admin], "already an admin");
        require(adminList.length < MAX_ADMINS, "too many admins");
        adminList.push(admin);
        isAdmin[admin] = true;
        emit AdminAdded(admin);
    }

    function removeAdmin(address admin) external onlySelf {
        require(isAdmin[admin], "not an admin");
        require(adminList.length - 1 >= threshold, "lower the threshold first");
        isAdmin[admin] = false;
        for (uint256 i = 0; i < adminList.length; i++) {
            if (adminList[i] == admin) {
                adminList[i] = adminList[adminList.length - 1];
                adminList.pop();
                break;
            }
        }
        emit AdminRemoved(admin);
    }

    function setThreshold(uint256 m) external onlySelf {
        require(m >= 1 && m <= adminList.length, "threshold must be 1 to the number of admins");
        threshold = m;
        emit ThresholdChanged(m);
    }

    /// @notice Creates or renames an organisation (id > 0) and sets its status (ACTIVE or
    /// SUSPENDED: a suspended organisation's accounts cannot transact).
    function setOrganisation(uint64 org, string calldata name, uint8 status) external onlySelf {
        require(org != 0, "organisation id 0 is reserved");
        require(status == ACTIVE || status == SUSPENDED, "status must be ACTIVE or SUSPENDED");
        organisations[org] = Organisation(status, name);
        emit OrganisationChanged(org, name, status);
    }

    /// @notice Makes `account` an ACTIVE member of `org` with `roles` (TRANSACT | DEPLOY).
    function setAccount(address account, uint64 org, uint8 roles) public onlySelf {
        require(organisations[org].status != NONE, "no such organisation");
        require(roles <= (TRANSACT | DEPLOY), "unknown role bits");
        accounts[account] = Account(ACTIVE, roles, org);
        emit AccountChanged(account, org, roles, ACTIVE);
    }

    /// @notice `setAccount` for many accounts.
    function setAccounts(address[] calldata list, uint64 org, uint8 roles) external onlySelf {
        for (uint256 i = 0; i < list.length; i++) {
            setAccount(list[i], org, roles);
        }
    }

    /// @notice Suspends (SUSPENDED) or reactivates (ACTIVE) a known account.
    function setAccountStatus(address account, uint8 status) external onlySelf {
        Account storage a = accounts[account];
        require(a.status != NONE, "no such account");
        require(status == ACTIVE || status == SUSPENDED, "status must be ACTIVE or SUSPENDED");
        a.status = status;
        emit AccountChanged(account, a.org, a.roles, status);
    }

    /// @notice Forgets an account: it can no longer transact.
    function removeAccount(address account) external onlySelf {
        require(accounts[account].status != NONE, "no such account");
        delete accounts[account];
        emit AccountRemoved(account);
    }

    /// @notice Marks `target` restricted: only accounts given `setCallPermission` may send it
    /// transactions.
    function setRestricted(address target, bool on) external onlySelf {
        if (restricted[target] != on) {
            if (on) restrictedCount++;
            else restrictedCount--;
        }
        restricted[target] = on;
        emit ContractRestricted(target, on);
    }

    /// @notice Lets `account` send transactions to the restricted `target` (or stops it).
    function setCallPermission(address target, address account, bool allowed) external onlySelf {
        mayCall[target][account] = allowed;
        emit CallPermissionChanged(target, account, allowed);
    }
}
