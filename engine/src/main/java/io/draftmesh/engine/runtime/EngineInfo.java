package io.draftmesh.engine.runtime;

/**
 * What an engine serves and how full it is; dtype and device are those of the compute, e.g.
 * float32, cpu(); backend says which decoder implementation and how it runs (threads, lanes).
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
    String backend) {}
