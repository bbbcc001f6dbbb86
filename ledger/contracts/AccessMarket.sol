// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";

/// @title AccessMarket: escrow for data access, settled by operator-signed vouchers.
/// @notice The platform's operator signs an EIP-712 voucher when a request is approved; the
///         buyer pays it (once). Before the data is served the operator records the
///         delivery on chain (`deliver`): from then on nothing is refunded, and the escrow
///         can only be released to the payee (less the fee fixed at payment). Before
///         delivery the operator may refund at any time, and after `refundAfter` the buyer
///         can take the escrow back alone, so funds are never stranded if the platform
///         disappears; delivery and that reclaim exclude each other (as OpenZeppelin v4's
///         RefundEscrow closes or refunds, never both). The operator can cancel an unpaid
///         voucher. It also anchors Merkle roots of dataset records and audit-log batches.
/// @dev Written here because OpenZeppelin 5 ships no escrow. Checks-effects-interactions
///      throughout, a reentrancy guard (EIP-1153 transient storage: a few hundred gas
///      instead of two storage writes) on every function that moves tokens, SafeERC20 for
///      tokens that return no bool, and the received amount is measured so a
///      fee-on-transfer token cannot leave escrows under-funded.
contract AccessMarket is EIP712, ReentrancyGuardTransient, Pausable, Ownable2Step {
    using SafeERC20 for IERC20;

    struct Voucher {
        bytes32 requestId;
        address buyer;
        address payee;
        uint256 amount;
        uint64 validUntil;
        uint64 refundAfter;
        /// @dev What was bought: a hash of the listing's scope and the accepted agreement's
        ///      version, fixed by the operator and echoed in `Paid`.
        bytes32 terms;
    }

    enum Status {
        None,
        Paid,
        Delivered,
        Released,
        Refunded,
        Cancelled
    }

    /// @dev Two storage slots per escrow: (buyer, refundAfter, status, feeBps) and
    ///      (payee, amount). The fee is fixed at payment, in the first slot's free bytes.
    struct Escrow {
        address buyer;
        uint64 refundAfter;
        Status status;
        uint16 feeBps;
        address payee;
        uint96 amount;
    }

    bytes32 public constant VOUCHER_TYPEHASH = keccak256(
        "Voucher(bytes32 requestId,address buyer,address payee,uint256 amount,uint64 validUntil,uint64 refundAfter,bytes32 terms)"
    );
    uint16 public constant MAX_FEE_BPS = 1000;
    /// @notice The longest a buyer can be made to wait for a reclaim after the voucher ends.
    uint64 public constant MAX_REFUND_GRACE = 30 days;
    /// @notice How long vouchers signed by a rotated-out operator stay payable.
    uint64 public constant MAX_VOUCHER_LIFETIME = 30 days;

    IERC20 public immutable token;
    /// @dev operator and feeBps share a slot: paying reads both with one storage load.
    address public operator;
    uint16 public feeBps;
    /// @dev A rotated-out operator's vouchers stay payable until this time (0: none).
    address public previousOperator;
    uint64 public previousOperatorUntil;
    address public treasury;

    mapping(bytes32 requestId => Escrow) public escrows;

    event Paid(
        bytes32 indexed requestId, address indexed buyer, address indexed payee, uint256 amount, bytes32 terms
    );
    event Delivered(bytes32 indexed requestId);
    event Cancelled(bytes32 indexed requestId);
    event Released(bytes32 indexed requestId, address indexed payee, uint256 amount, uint256 fee);
    event Refunded(bytes32 indexed requestId, address indexed buyer, uint256 amount);
    event Anchored(bytes32 indexed root, uint8 indexed kind);
    event OperatorChanged(address indexed previous, address indexed current);
    event TreasuryChanged(address indexed previous, address indexed current);
    event FeeChanged(uint16 previous, uint16 current);

    error NotOperator();
    error WrongSigner();
    error VoucherExpired();
    error NotBuyer();
    error AlreadyPaid();
    error NotPaid();
    error NotDelivered();
    error NotOpen();
    error TooEarly();
    error BadRefundAfter();
    error RenounceDisabled();
    error AmountTooLarge();
    error ZeroAmount();
    error ShortfallReceived(uint256 expected, uint256 received);
    error FeeTooHigh();
    error ZeroAddress();

    modifier onlyOperator() {
        if (msg.sender != operator) revert NotOperator();
        _;
    }

    constructor(IERC20 token_, address operator_, address treasury_, uint16 feeBps_, address owner_)
        EIP712("AccessMarket", "1")
        Ownable(owner_)
    {
        if (address(token_) == address(0) || operator_ == address(0) || treasury_ == address(0)) {
            revert ZeroAddress();
        }
        if (feeBps_ > MAX_FEE_BPS) revert FeeTooHigh();
        token = token_;
        operator = operator_;
        treasury = treasury_;
        feeBps = feeBps_;
    }

    // ----------------------------------------------------------------- paying

    /// @notice Pay a voucher; the caller must be its buyer and have approved `amount`.
    function pay(Voucher calldata voucher, bytes calldata signature) external nonReentrant whenNotPaused {
        _pay(voucher, signature);
    }

    /// @notice Approve (EIP-2612 permit) and pay in one transaction. A permit that someone
    ///         front-ran is tolerated when the allowance is already there.
    function payWithPermit(
        Voucher calldata voucher,
        bytes calldata signature,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant whenNotPaused {
        try IERC20Permit(address(token)).permit(msg.sender, address(this), voucher.amount, deadline, v, r, s) {}
        catch {
            // The allowance check in transferFrom decides; nothing else to do here.
        }
        _pay(voucher, signature);
    }

    function _pay(Voucher calldata voucher, bytes calldata signature) private {
        if (msg.sender != voucher.buyer) revert NotBuyer();
        if (block.timestamp > voucher.validUntil) revert VoucherExpired();
        if (voucher.amount == 0) revert ZeroAmount();
        if (voucher.amount > type(uint96).max) revert AmountTooLarge();
        // The reclaim comes after the voucher ends, and not unboundedly later.
        if (voucher.refundAfter <= voucher.validUntil || voucher.refundAfter - voucher.validUntil > MAX_REFUND_GRACE)
        {
            revert BadRefundAfter();
        }
        Escrow storage escrow = escrows[voucher.requestId];
        if (escrow.status != Status.None) revert AlreadyPaid();
        address signer = ECDSA.recover(voucherDigest(voucher), signature);
        if (signer != operator && (signer != previousOperator || block.timestamp > previousOperatorUntil)) {
            revert WrongSigner();
        }

        escrow.buyer = voucher.buyer;
        escrow.refundAfter = voucher.refundAfter;
        escrow.status = Status.Paid;
        escrow.feeBps = feeBps;
        escrow.payee = voucher.payee;
        escrow.amount = uint96(voucher.amount);

        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), voucher.amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != voucher.amount) revert ShortfallReceived(voucher.amount, received);
        emit Paid(voucher.requestId, voucher.buyer, voucher.payee, voucher.amount, voucher.terms);
    }

    /// @notice The EIP-712 digest the operator signs for `voucher`.
    function voucherDigest(Voucher calldata voucher) public view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(
                abi.encode(
                    VOUCHER_TYPEHASH,
                    voucher.requestId,
                    voucher.buyer,
                    voucher.payee,
                    voucher.amount,
                    voucher.validUntil,
                    voucher.refundAfter,
                    voucher.terms
                )
            )
        );
    }

    // ------------------------------------------------------------- settling

    /// @notice Record that the data is about to be served: the buyer's refund ends here.
    ///         The operator calls it before the first grant header is served.
    function deliver(bytes32 requestId) external whenNotPaused onlyOperator {
        Escrow storage escrow = escrows[requestId];
        if (escrow.status != Status.Paid) revert NotPaid();
        escrow.status = Status.Delivered;
        emit Delivered(requestId);
    }

    /// @notice Close a voucher that was never paid, so it cannot be paid later.
    function cancel(bytes32 requestId) external onlyOperator {
        Escrow storage escrow = escrows[requestId];
        if (escrow.status != Status.None) revert NotOpen();
        escrow.status = Status.Cancelled;
        emit Cancelled(requestId);
    }

    /// @notice Pay the payee of a delivered escrow (less the fee fixed at payment, which
    ///         goes to the treasury).
    function release(bytes32 requestId) external nonReentrant whenNotPaused onlyOperator {
        Escrow storage escrow = escrows[requestId];
        if (escrow.status != Status.Delivered) revert NotDelivered();
        escrow.status = Status.Released;
        uint256 amount = escrow.amount;
        uint256 fee = amount * escrow.feeBps / 10_000;
        address payee = escrow.payee;
        token.safeTransfer(payee, amount - fee);
        if (fee != 0) token.safeTransfer(treasury, fee);
        emit Released(requestId, payee, amount - fee, fee);
    }

    /// @notice Return the escrow to the buyer: the operator any time before delivery, the
    ///         buyer alone once `refundAfter` has passed (and still before delivery). Open
    ///         even while paused, so a buyer's tokens can never be locked in by a pause.
    function refund(bytes32 requestId) external nonReentrant {
        Escrow storage escrow = escrows[requestId];
        if (escrow.status != Status.Paid) revert NotPaid();
        if (msg.sender != operator) {
            if (msg.sender != escrow.buyer) revert NotBuyer();
            if (block.timestamp < escrow.refundAfter) revert TooEarly();
        }
        escrow.status = Status.Refunded;
        uint256 amount = escrow.amount;
        address buyer = escrow.buyer;
        token.safeTransfer(buyer, amount);
        emit Refunded(requestId, buyer, amount);
    }

    // ------------------------------------------------------------- anchoring

    /// @notice Record a Merkle root (kind 1: dataset records, 2: audit entries) on chain.
    function anchor(bytes32 root, uint8 kind) external onlyOperator {
        emit Anchored(root, kind);
    }

    // ---------------------------------------------------------------- admin

    /// @notice Rotate the operator. With `honourOutstanding`, vouchers the old operator
    ///         signed stay payable for MAX_VOUCHER_LIFETIME (a planned rotation); without it
    ///         (a compromised key) they stop at once.
    function setOperator(address newOperator, bool honourOutstanding) external onlyOwner {
        if (newOperator == address(0)) revert ZeroAddress();
        emit OperatorChanged(operator, newOperator);
        if (honourOutstanding) {
            previousOperator = operator;
            previousOperatorUntil = uint64(block.timestamp) + MAX_VOUCHER_LIFETIME;
        } else {
            previousOperator = address(0);
            previousOperatorUntil = 0;
        }
        operator = newOperator;
    }

    function setTreasury(address newTreasury) external onlyOwner {
        if (newTreasury == address(0)) revert ZeroAddress();
        emit TreasuryChanged(treasury, newTreasury);
        treasury = newTreasury;
    }

    function setFeeBps(uint16 newFeeBps) external onlyOwner {
        if (newFeeBps > MAX_FEE_BPS) revert FeeTooHigh();
        emit FeeChanged(feeBps, newFeeBps);
        feeBps = newFeeBps;
    }

    function pause() external onlyOwner {
        _pause();
    }

    function unpause() external onlyOwner {
        _unpause();
    }

    /// @notice Disabled: a market without an owner could never be unpaused or rotated.
    function renounceOwnership() public view override onlyOwner {
        revert RenounceDisabled();
    }
}
