package io.draftmesh.engine.runtime;

import java.util.List;

/**
 * Tokens a sequence generated autoregressively.
 *
 * @param tokens the proposed tokens, now appended to the sequence
 * @param positions positions.get(i) is the prediction that produced tokens[i]
 */
public record Proposal(int[] tokens, List<Position> positions) {}
