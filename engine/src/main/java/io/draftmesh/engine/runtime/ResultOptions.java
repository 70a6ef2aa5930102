package io.draftmesh.engine.runtime;

/**
 * What to return for each scored position besides the chosen token.
 *
 * @param topKProbs 0 = none; otherwise the k most likely tokens of the transformed distribution
 * @param fullDistribution the whole transformed distribution
 * @param nodeTopK tree verify only: 0 = none; otherwise the k most likely tokens after every draft
 *     node, accepted or not ({@link TreeVerification#nodeTop})
 */
public record ResultOptions(int topKProbs, boolean fullDistribution, int nodeTopK) {
  public static final ResultOptions NONE = new ResultOptions(0, false, 0);

  public ResultOptions(int topKProbs, boolean fullDistribution) {
    this(topKProbs, fullDistribution, 0);
  }
}
