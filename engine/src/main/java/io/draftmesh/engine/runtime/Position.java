package io.draftmesh.engine.runtime;

import io.draftmesh.engine.sampling.ProbDist;

/**
 * The model's prediction for the position after some prefix.
 *
 * @param tokenId the chosen token: argmax when greedy, else sampled from the session's random
 *     stream
 * @param tokenProb its probability under the transformed distribution
 * @param argmaxTokenId argmax of the raw logits
 * @param argmaxProb top-1 probability of the raw softmax
 * @param entropyBits entropy of the raw softmax, in bits
 * @param top the top-k of the transformed distribution, or null when not asked for
 * @param full the transformed distribution, or null when not asked for
 */
public record Position(
    int tokenId,
    float tokenProb,
    int argmaxTokenId,
    float argmaxProb,
    float entropyBits,
    ProbDist top,
    ProbDist full) {}
