package io.draftmesh.engine.model;

/**
 * What a batched forward step returns for one sequence.
 *
 * @param logits one row per requested logit row: (rows, vocab)
 * @param attention when captured: per layer, the attention probabilities (heads, newTokens,
 *     length), flattened row-major; keys are positions 0..length-1 of the sequence
 */
public record StepResult(float[][] logits, float[][] attention) {}
