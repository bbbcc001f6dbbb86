// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title GeneToken: the payment token of local and test networks.
/// @notice ERC-20 with EIP-2612 permit, so a researcher can approve and pay in one
///         transaction (AccessMarket.payWithPermit). In production the market takes any
///         ERC-20; this token exists so a fresh machine has something to pay with.
contract GeneToken is ERC20, ERC20Permit, Ownable {
    constructor(address initialOwner)
        ERC20("Gene Token", "GENE")
        ERC20Permit("Gene Token")
        Ownable(initialOwner)
    {}

    /// @notice Mint new tokens; only the owner, and only meant for local and test chains.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
