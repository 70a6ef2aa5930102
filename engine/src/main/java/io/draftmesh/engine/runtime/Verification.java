package io.draftmesh.engine.runtime;

import java.util.List;

/**
 * The outcome of verifying draft tokens.
 *
 * @param accepted draft tokens accepted, 0..k
 * @param nextToken the correction (accepted < k) or bonus (accepted == k) token, appended unfed
 * @param bonus whether every draft token was accepted
 * @param positions the target's predictions for positions 0..accepted, each with the emitted token
 */
public record Verification(int accepted, int nextToken, boolean bonus, List<Position> positions) {}
