package io.draftmesh.router;

import io.draftmesh.proto.v1.*;
import io.grpc.*;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class DebugTest {
  @Test
  void raw() throws Exception {
    TestMesh mesh = TestMesh.get();
    ManagedChannel ch = Grpc.newChannelBuilder("localhost:" + mesh.workers.get("target").port(), InsecureChannelCredentials.create()).build();
    int errs = 0, hangs = 0;
    for (int i = 0; i < 100; i++) {
      WorkerSession s = WorkerSession.start(ch, "target", "raw");
      SessionResponse opened = s.call(SessionRequest.newBuilder().setOpen(Open.newBuilder().addPromptIds(5).addPromptIds(6 + i)), Duration.ofSeconds(10), "open");
      try {
        SessionResponse p = s.call(SessionRequest.newBuilder().setPropose(Propose.newBuilder().setK(40)), Duration.ofSeconds(2), "propose");
      } catch (WorkerSession.WorkerFailure e) { if (e.getMessage().contains("did not answer")) { hangs++; System.out.println("HANG " + i); } else errs++; }
    }
    System.out.println("errs " + errs + " hangs " + hangs);
    long t0 = System.nanoTime();
    WorkerSession s = WorkerSession.start(ch, "target", "raw");
    s.call(SessionRequest.newBuilder().setOpen(Open.newBuilder().addPromptIds(5).addPromptIds(6)), Duration.ofSeconds(10), "open");
    for (int i = 0; i < 50; i++) s.call(SessionRequest.newBuilder().setPropose(Propose.newBuilder().setK(1)), Duration.ofSeconds(2), "propose");
    System.out.println("50 x propose(1): ms " + (System.nanoTime() - t0) / 1e6);
    t0 = System.nanoTime();
    for (int i = 0; i < 5; i++) s.call(SessionRequest.newBuilder().setPropose(Propose.newBuilder().setK(10)), Duration.ofSeconds(2), "propose");
    System.out.println("5 x propose(10): ms " + (System.nanoTime() - t0) / 1e6);
    t0 = System.nanoTime();
    for (int i = 0; i < 20; i++) s.call(SessionRequest.newBuilder().setVerify(Verify.newBuilder().addDraftTokenIds(3).addDraftTokenIds(4).addDraftTokenIds(5).addDraftTokenIds(6)), Duration.ofSeconds(2), "verify");
    System.out.println("20 x verify(4): ms " + (System.nanoTime() - t0) / 1e6);
  }
}
