package io.draftmesh.engine.runtime;

/**
 * What to return for each scored position besides the chosen token.
 *
 * @param topKProbs 0 = none; otherwise the k most likely tokens of the transformed distribution
 * @param fullDistribution the whole transformed distribution
 */
public record ResultOptions(int topKProbs, boolean fullDistribution) {
  public static final ResultOptions NONE = new ResultOptions(0, false);
}
