// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Gateways} from "./Gateways.sol";

/// @title DangerIndex: forest-fire danger index and risk class from sensor readings.
/// @notice The Korea Forest Service formula used by the forest-fire IoT paper:
///   EH = (1 - r)(H0 + r H1 + r^2 H2 + r^3 H3 + r^4 H4), r = 0.7   (effective humidity, %)
///   DI = 6.87 + 0.64 P + 0.15 EH + 1774.94 / CS                  (danger index)
///   risk: DI < 60 low (0), DI < 80 high (1), otherwise extreme (2).
/// Inputs are fixed-point hundredths: p = P*100 and h[i] = H_i*100 in [0, 10000], cs = CS*100 >= 1.
/// Outputs are exact: diX100 = floor(DI * 100), ehX100 = floor(EH * 100), computed with integers
/// only (no rounding before the final floor), matching shared/data/danger-index-vectors.json.
/// @dev The paper's listing mixes scales (687 is x100, P and EH unscaled, CS x10^4) and declares
/// its state-writing `Set` as `view`; this contract computes the formula exactly in one scale and
/// keeps the paper's `Set`/`Get` ABI for clients written against it (region 0).
contract DangerIndex is Gateways {
    /// Largest percentage in hundredths (100.00 %).
    uint256 internal constant MAX_PERCENT_X100 = 10_000;
    /// Largest solar radiation accepted, in hundredths (keeps every product far below 2^256).
    uint256 internal constant MAX_CS_X100 = type(uint128).max;

    struct Reading {
        uint256 diX100;
        uint8 risk;
        uint64 blockNumber;
        uint64 timestamp;
    }

    mapping(bytes32 => Reading) private latestByRegion;

    /// @notice A region's index was updated by `reporter`.
    event DangerIndexUpdated(bytes32 indexed region, uint256 diX100, uint256 ehX100, uint8 risk, address reporter);

    /// @notice The danger index, effective humidity and risk class for one set of readings.
    /// @param p precipitation in hundredths of a percent, 0..10000
    /// @param h humidity of today and the 4 days before, hundredths of a percent, 0..10000
    /// @param cs solar radiation in hundredths, >= 1
    /// @return diX100 floor(DI * 100)
    /// @return ehX100 floor(EH * 100)
    /// @return risk 0 low, 1 high, 2 extreme
    function compute(uint256 p, uint256[5] calldata h, uint256 cs)
        public
        pure
        returns (uint256 diX100, uint256 ehX100, uint8 risk)
    {
        return _compute(p, [h[0], h[1], h[2], h[3], h[4]], cs);
    }

    function _compute(uint256 p, uint256[5] memory h, uint256 cs)
        internal
        pure
        returns (uint256 diX100, uint256 ehX100, uint8 risk)
    {
        require(cs > 0, "solar radiation must be positive");
        require(cs <= MAX_CS_X100, "solar radiation out of range");
        require(p <= MAX_PERCENT_X100, "precipitation out of range");
        for (uint256 i = 0; i < 5; i++) {
            require(h[i] <= MAX_PERCENT_X100, "humidity out of range");
        }
        // EH * 10^7 = 3 * sum(7^i * h_i * 10^(4-i))   (h in hundredths, r = 7/10, 1 - r = 3/10)
        uint256 eh7 = 3 * (h[0] * 10_000 + 7 * h[1] * 1_000 + 49 * h[2] * 100 + 343 * h[3] * 10 + 2_401 * h[4]);
        ehX100 = eh7 / 100_000;
        // DI * 100 = 687 + 0.64 p + 15 EH + 17749400 / cs, over the common denominator 10^7 * cs.
        uint256 numerator = 687e7 * cs + 64 * p * 1e5 * cs + 15 * eh7 * cs + 17_749_400 * 1e7;
        diX100 = numerator / (1e7 * cs);
        risk = diX100 < 6_000 ? 0 : (diX100 < 8_000 ? 1 : 2);
    }

    /// @notice Computes and records the index of `region`; gateways only.
    /// @return diX100 floor(DI * 100)
    /// @return risk 0 low, 1 high, 2 extreme
    function submit(bytes32 region, uint256 p, uint256[5] calldata h, uint256 cs)
        external
        onlyGateway
        returns (uint256 diX100, uint8 risk)
    {
        return _submit(region, p, [h[0], h[1], h[2], h[3], h[4]], cs);
    }

    function _submit(bytes32 region, uint256 p, uint256[5] memory h, uint256 cs)
        internal
        returns (uint256 diX100, uint8 risk)
    {
        uint256 ehX100;
        (diX100, ehX100, risk) = _compute(p, h, cs);
        latestByRegion[region] = Reading(diX100, risk, uint64(block.number), uint64(block.timestamp));
        emit DangerIndexUpdated(region, diX100, ehX100, risk, msg.sender);
    }

    /// @notice The last index recorded for `region` (all zero when none).
    function latest(bytes32 region)
        external
        view
        returns (uint256 diX100, uint8 risk, uint64 blockNumber, uint64 timestamp)
    {
        Reading memory r = latestByRegion[region];
        return (r.diX100, r.risk, r.blockNumber, r.timestamp);
    }

    /// @notice The paper's ABI: records region 0 and returns diX100 (same units as `submit`).
    function Set(uint256 _CS, uint256 _P, uint256 _H0, uint256 _H1, uint256 _H2, uint256 _H3, uint256 _H4)
        external
        onlyGateway
        returns (uint256)
    {
        (uint256 diX100,) = _submit(bytes32(0), _P, [_H0, _H1, _H2, _H3, _H4], _CS);
        return diX100;
    }

    /// @notice The paper's ABI: diX100 last recorded for region 0.
    function Get() external view returns (uint256) {
        return latestByRegion[bytes32(0)].diX100;
    }
}
