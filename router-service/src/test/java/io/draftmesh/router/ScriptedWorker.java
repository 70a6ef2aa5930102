package io.draftmesh.router;

import io.draftmesh.proto.v1.Appended;
import io.draftmesh.proto.v1.Closed;
import io.draftmesh.proto.v1.GetModelInfoRequest;
import io.draftmesh.proto.v1.ModelInfo;
import io.draftmesh.proto.v1.ModelWorkerGrpc;
import io.draftmesh.proto.v1.Opened;
import io.draftmesh.proto.v1.Position;
import io.draftmesh.proto.v1.Proposed;
import io.draftmesh.proto.v1.Scored;
import io.draftmesh.proto.v1.SessionRequest;
import io.draftmesh.proto.v1.SessionResponse;
import io.draftmesh.proto.v1.Truncated;
import io.draftmesh.proto.v1.Verified;
import io.draftmesh.proto.v1.Verify;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A deterministic ModelWorker test double on a real port: every session runs the ModelWorker
 * sequence semantics (Open, Append, Score, Propose, greedy Verify, Truncate, Close) over a token
 * list (greedy trees too), and a scripted {@link Model} says what comes next after the session's
 * output (the tokens after its prompt). Records each session's final tokens and the tokens it was
 * fed, and can stall or fail after a number of Proposes (a helper that dies mid-request).
 */
final class ScriptedWorker implements AutoCloseable {
  /** The next-token prediction after {@code output} (the session's tokens after its prompt). */
  interface Model {
    Position next(List<Integer> output);
  }

  /** One session's life, for assertions. */
  static final class SessionLog {
    final List<Integer> prompt = new ArrayList<>();
    final List<Integer> tokens = new ArrayList<>(); // prompt + output
    int fed; // tokens that went through the "model": appended, scored or generated
    int appends;
    int proposes;
    int verifies;
    private final CountDownLatch ended = new CountDownLatch(1);

    List<Integer> output() {
      return tokens.subList(prompt.size(), tokens.size());
    }

    /** The session's stream ended: completed, failed or cancelled, by either side. */
    void end() {
      ended.countDown();
    }
  }

  final Server server;
  final ModelInfo info;
  final List<SessionLog> sessions = new CopyOnWriteArrayList<>();
  private final Model model;
  private final AtomicInteger proposesLeft; // < 0: unlimited
  private final boolean failInsteadOfStall;
  private volatile boolean holdFirstPropose;
  private volatile long verifyDelayMillis;

  /**
   * @param proposesBeforeFault Proposes (over all sessions) answered before the worker stalls or
   *     fails; -1 for never
   */
  ScriptedWorker(ModelInfo info, Model model, int proposesBeforeFault, boolean fail)
      throws IOException {
    this.info = info;
    this.model = model;
    this.proposesLeft = new AtomicInteger(proposesBeforeFault);
    this.failInsteadOfStall = fail;
    server =
        Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
            .addService(new Service())
            .build()
            .start();
  }

  /** A prediction of {@code token}, sure enough (0.9) to be the model's argmax. */
  static Position predicting(int token) {
    return Position.newBuilder()
        .setTokenId(token)
        .setArgmaxTokenId(token)
        .setArgmaxProb(0.9f)
        .setTokenProb(0.9f)
        .build();
  }

  /** Counts up from the session's output length: token ids 100, 101, 102, ... */
  static Position counting(List<Integer> out) {
    return predicting(100 + out.size());
  }

  /**
   * Repeats 100, 101, .., 100 + period - 1 from the session's output length, each prediction with
   * itself as its top-1 (what Token Recycling learns from).
   */
  static Model cycling(int period) {
    return out -> {
      int token = 100 + out.size() % period;
      return predicting(token).toBuilder().setTop(NgramDecoding.oneHot(token)).build();
    };
  }

  /** A ModelInfo for a scripted model whose tokenizer is {@code tokenizerJson}. */
  static ModelInfo info(String id, Path tokenizerJson, int vocab, int eos, long params)
      throws IOException {
    return ModelInfo.newBuilder()
        .setModelId(id)
        .setVocabSize(vocab)
        .setTokenizerHash(BpeTokenizer.sha256(Files.readAllBytes(tokenizerJson)))
        .setMaxContext(4096)
        .setMaxTokensPerOp(64)
        .setEosTokenId(eos)
        .setBosTokenId(-1)
        .setNumParameters(params)
        .setMaxSessions(8)
        .build();
  }

  /**
   * From now on, a session's first Propose is answered only when its next request arrives: a client
   * that waits for that answer before sending more never gets it.
   */
  ScriptedWorker holdingFirstPropose() {
    holdFirstPropose = true;
    return this;
  }

  /**
   * From now on, every Verify is answered {@code millis} late: a target whose verifies are dear.
   */
  ScriptedWorker slowVerify(long millis) {
    verifyDelayMillis = millis;
    return this;
  }

  int port() {
    return server.getPort();
  }

  String address() {
    return "localhost:" + port();
  }

  /**
   * Whether every session's stream has ended within {@code timeout}. A request's last chunk can
   * reach the client before its workers see their streams close, so a test waits for those events
   * (and, once they happened, reads every session's log as its gRPC threads left it).
   */
  boolean awaitSessionsEnded(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    for (SessionLog s : sessions) {
      if (!s.ended.await(deadline - System.nanoTime(), TimeUnit.NANOSECONDS)) {
        return false;
      }
    }
    return true;
  }

  @Override
  public void close() {
    server.shutdownNow();
  }

  private final class Service extends ModelWorkerGrpc.ModelWorkerImplBase {
    @Override
    public void getModelInfo(GetModelInfoRequest r, StreamObserver<ModelInfo> out) {
      out.onNext(info);
      out.onCompleted();
    }

    @Override
    public StreamObserver<SessionRequest> session(StreamObserver<SessionResponse> out) {
      SessionLog log = new SessionLog();
      sessions.add(log);
      return new StreamObserver<>() {
        boolean stalled;
        SessionResponse held; // the first Propose's answer, while holdFirstPropose holds it

        @Override
        public void onNext(SessionRequest r) {
          if (stalled) {
            return;
          }
          if (held != null) {
            out.onNext(held);
            held = null;
          }
          SessionResponse.Builder resp =
              SessionResponse.newBuilder().setRequestId(r.getRequestId());
          switch (r.getOpCase()) {
            case OPEN -> {
              log.prompt.addAll(r.getOpen().getPromptIdsList());
              log.tokens.addAll(r.getOpen().getPromptIdsList());
              log.fed += log.prompt.size();
              resp.setOpened(
                  Opened.newBuilder().setSessionId("scripted").setNext(model.next(log.output())));
            }
            case APPEND -> {
              log.tokens.addAll(r.getAppend().getTokenIdsList());
              log.fed += r.getAppend().getTokenIdsCount();
              log.appends++;
              resp.setAppended(Appended.getDefaultInstance());
            }
            case SCORE -> {
              Scored.Builder s = Scored.newBuilder().addPositions(model.next(log.output()));
              for (int id : r.getScore().getTokenIdsList()) {
                log.tokens.add(id);
                log.fed++;
                s.addPositions(model.next(log.output()));
              }
              resp.setScored(s);
            }
            case PROPOSE -> {
              if (proposesLeft.get() == 0) {
                stalled = true;
                if (failInsteadOfStall) {
                  out.onError(Status.UNAVAILABLE.withDescription("scripted fault").asException());
                  log.end();
                }
                return;
              }
              proposesLeft.decrementAndGet();
              log.proposes++;
              Proposed.Builder p = Proposed.newBuilder();
              for (int i = 0; i < r.getPropose().getK(); i++) {
                Position next = model.next(log.output());
                p.addTokenIds(next.getTokenId()).addPositions(next);
                log.tokens.add(next.getTokenId());
                log.fed++;
              }
              resp.setProposed(p);
              if (holdFirstPropose && log.proposes == 1) {
                held = resp.setLength(log.tokens.size()).build();
                return;
              }
            }
            case VERIFY -> {
              if (verifyDelayMillis > 0) {
                try {
                  Thread.sleep(verifyDelayMillis);
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                }
              }
              Verified.Builder verified =
                  r.getVerify().getTreeParentsCount() > 0
                      ? verifyTree(r.getVerify(), log)
                      : verifyChain(r.getVerify(), log);
              Position next = model.next(log.output());
              log.tokens.add(next.getTokenId());
              log.fed++;
              log.verifies++;
              resp.setVerified(
                  verified
                      .setNextTokenId(next.getTokenId())
                      .setBonus(verified.getAccepted() == r.getVerify().getDraftTokenIdsCount()));
            }
            case TRUNCATE -> {
              int n = r.getTruncate().getLength();
              if (n < log.prompt.size() || n > log.tokens.size()) {
                out.onError(
                    Status.INVALID_ARGUMENT
                        .withDescription("truncate.length: " + n + " of " + log.tokens.size())
                        .asException());
                log.end();
                stalled = true;
                return;
              }
              log.tokens.subList(n, log.tokens.size()).clear();
              resp.setTruncated(Truncated.getDefaultInstance());
            }
            case CLOSE -> resp.setClosed(Closed.getDefaultInstance());
            default -> {
              out.onError(Status.INVALID_ARGUMENT.withDescription("no op").asException());
              log.end();
              return;
            }
          }
          out.onNext(resp.setLength(log.tokens.size()).build());
        }

        /** Greedy: the drafts equal to the model's predictions are kept. */
        private Verified.Builder verifyChain(Verify v, SessionLog log) {
          int accepted = 0;
          for (int id : v.getDraftTokenIdsList()) {
            if (model.next(log.output()).getTokenId() != id) {
              break;
            }
            log.tokens.add(id);
            log.fed++;
            accepted++;
          }
          return Verified.newBuilder().setAccepted(accepted);
        }

        /**
         * Greedy over a tree: from the last token, step to the first child equal to the model's
         * prediction while there is one. Answers the predictions after the last token and each
         * accepted node, and (for {@code node_top_k}) the prediction's top after every node.
         */
        private Verified.Builder verifyTree(Verify v, SessionLog log) {
          List<Integer> before = new ArrayList<>(log.output());
          Verified.Builder verified = Verified.newBuilder().addPositions(model.next(log.output()));
          for (int at = -1, child = 0; child >= 0; ) {
            int want = model.next(log.output()).getTokenId();
            child = -1;
            for (int j = 0; j < v.getDraftTokenIdsCount() && child < 0; j++) {
              if (v.getTreeParents(j) == at && v.getDraftTokenIds(j) == want) {
                child = j;
              }
            }
            if (child >= 0) {
              log.tokens.add(want);
              log.fed++;
              verified.addAcceptedPath(child).addPositions(model.next(log.output()));
              at = child;
            }
          }
          if (v.getOptions().getNodeTopK() > 0) {
            for (int j = 0; j < v.getDraftTokenIdsCount(); j++) {
              List<Integer> path = new ArrayList<>();
              for (int k = j; k >= 0; k = v.getTreeParents(k)) {
                path.add(0, v.getDraftTokenIds(k));
              }
              List<Integer> after = new ArrayList<>(before);
              after.addAll(path);
              verified.addNodeTop(model.next(after).getTop());
            }
          }
          return verified.setAccepted(verified.getAcceptedPathCount());
        }

        @Override
        public void onError(Throwable t) {
          log.end();
        }

        @Override
        public void onCompleted() {
          log.end();
          out.onCompleted();
        }
      };
    }
  }
}
