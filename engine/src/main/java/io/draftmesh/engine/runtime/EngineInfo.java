package io.draftmesh.engine.runtime;

/**
 * What an engine serves and how full it is; dtype and device are those of the compute, e.g.
 * float32, cpu(); backend says which decoder implementation and how it runs (threads, lanes).
 * kvBlocksFree counts idle prefix-cache blocks (an allocation takes them); kvBlocksCached is every
 * block the prefix cache names, held or idle; promptTokensCached/Computed split the prompt tokens
 * of every sequence opened so far into those taken from the prefix cache and those prefilled;
 * kvDtype is the KV pool's element type (float32 or float16).
 */
public record EngineInfo(
    String modelId,
    String architecture,
    int vocabSize,
    String tokenizerHash,
    int maxContext,
    long numParameters,
    int numLayers,
    int eosTokenId,
    int bosTokenId,
    int maxSessions,
    int maxTokensPerOp,
    int kvBlockSize,
    int kvBlocksTotal,
    int kvBlocksFree,
    int activeSessions,
    String dtype,
    String device,
    String backend,
    int kvBlocksCached,
    long promptTokensCached,
    long promptTokensComputed,
    String kvDtype) {}
