package io.draftmesh.router;

/**
 * One request's decoding loop over its worker sessions. Each strategy is one implementation in its
 * own file; {@link RouterService} picks it from the request and runs it on the request's executor
 * thread.
 *
 * <p>{@link #run} streams every chunk, the final one included, through the request's {@link
 * TokenStream}. A failure of the target (or base, or large) worker propagates as a {@link
 * WorkerSession.WorkerFailure}; a failing helper (draft, aligned, small model) never does: the
 * strategy drops it and goes on with the target alone, from exactly the output already streamed.
 */
interface DecodingStrategy {
  void run();
}
