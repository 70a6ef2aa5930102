package io.draftmesh.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.draftmesh.engine.kv.KvDtype;
import io.draftmesh.engine.model.Backend;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WorkerConfigTest {
  @TempDir Path model;

  private WorkerConfig parse(Map<String, String> env, WorkerConfig.Role role, String... args) {
    return WorkerConfig.parse(args, env, role);
  }

  @Test
  void roleDefaultsDifferAndFlagsWinOverEnvironment() {
    WorkerConfig draft = parse(Map.of(), WorkerConfig.Role.DRAFT, "--model", model.toString());
    WorkerConfig target = parse(Map.of(), WorkerConfig.Role.TARGET, "--model=" + model);
    assertThat(draft.kvBudgetMb()).isLessThan(target.kvBudgetMb());
    assertThat(draft.maxSessions()).isGreaterThan(target.maxSessions());
    assertThat(draft.port()).isZero();
    assertThat(draft.drainGrace()).isEqualTo(Duration.ofSeconds(10));
    assertThat(draft.keepAlive()).isEqualTo(Duration.ofSeconds(30));
    assertThat(draft.keepAliveTimeout()).isEqualTo(Duration.ofSeconds(10));
    assertThat(draft.sessionIdle()).isEqualTo(Duration.ofMinutes(5));
    assertThat(
            parse(
                    Map.of("DRAFTMESH_SESSION_IDLE_SECONDS", "0"),
                    WorkerConfig.Role.DRAFT,
                    "--model",
                    model.toString(),
                    "--keepalive-seconds",
                    "15")
                .keepAlive())
        .isEqualTo(Duration.ofSeconds(15));
    assertThatThrownBy(
            () ->
                parse(
                    Map.of(),
                    WorkerConfig.Role.DRAFT,
                    "--model",
                    model.toString(),
                    "--keepalive-seconds",
                    "0"))
        .hasMessageContaining("--keepalive-seconds: 0 (expected: 10..86400)");

    WorkerConfig c =
        parse(
            Map.of(
                "DRAFTMESH_MODEL", model.toString(),
                "DRAFTMESH_PORT", "7001",
                "DRAFTMESH_MAX_SESSIONS", "3",
                "DRAFTMESH_KV_BUDGET_MB", "64"),
            null,
            "--role",
            "target",
            "--port",
            "7002",
            "--kv-block-size",
            "32",
            "--threads",
            "2",
            "--max-tokens-per-op",
            "8",
            "--max-context",
            "512");
    assertThat(c.model()).isEqualTo(model);
    assertThat(c.role()).isEqualTo(WorkerConfig.Role.TARGET);
    assertThat(c.port()).isEqualTo(7002);
    assertThat(c.maxSessions()).isEqualTo(3);
    assertThat(c.kvBudgetMb()).isEqualTo(64);
    assertThat(c.threads()).isEqualTo(2);
    assertThat(c.engineConfig().kvBudgetBytes()).isEqualTo(64L << 20);
    assertThat(c.engineConfig().kvBlockSize()).isEqualTo(32);
    assertThat(c.engineConfig().maxTokensPerOp()).isEqualTo(8);
    assertThat(c.engineConfig().maxContext()).isEqualTo(512);
  }

  @Test
  void backendIsAutoByDefaultAndComesFromTheFlagOrTheEnvironment() {
    String m = model.toString();
    WorkerConfig byDefault = parse(Map.of(), WorkerConfig.Role.DRAFT, "--model", m);
    assertThat(byDefault.backend()).isEqualTo(Backend.AUTO);
    assertThat(byDefault.engineConfig().backend()).isEqualTo(Backend.AUTO);
    WorkerConfig fromEnv =
        parse(Map.of("DRAFTMESH_BACKEND", "djl"), WorkerConfig.Role.DRAFT, "--model", m);
    assertThat(fromEnv.engineConfig().backend()).isEqualTo(Backend.DJL);
    WorkerConfig flagWins =
        parse(
            Map.of("DRAFTMESH_BACKEND", "djl"),
            WorkerConfig.Role.DRAFT,
            "--model",
            m,
            "--backend",
            "vector",
            "--threads",
            "1");
    assertThat(flagWins.engineConfig().backend()).isEqualTo(Backend.VECTOR);
    assertThat(flagWins.engineConfig().threads()).isEqualTo(1);
    assertThatThrownBy(
            () -> parse(Map.of(), WorkerConfig.Role.DRAFT, "--model", m, "--backend", "cuda"))
        .isInstanceOf(WorkerConfig.ConfigException.class)
        .hasMessage("--backend: cuda (expected: auto, vector or djl)");
    assertThatThrownBy(
            () -> parse(Map.of("DRAFTMESH_BACKEND", "gpu"), WorkerConfig.Role.DRAFT, "--model", m))
        .hasMessage("DRAFTMESH_BACKEND: gpu (expected: auto, vector or djl)");
  }

  @Test
  void kvDtypeIsFloat32ByDefaultAndFloat16FromTheFlagOrTheEnvironment() {
    String m = model.toString();
    assertThat(parse(Map.of(), WorkerConfig.Role.TARGET, "--model", m).engineConfig().kvDtype())
        .isEqualTo(KvDtype.FLOAT32);
    assertThat(
            parse(Map.of(), WorkerConfig.Role.TARGET, "--model", m, "--kv-dtype", "float16")
                .engineConfig()
                .kvDtype())
        .isEqualTo(KvDtype.FLOAT16);
    assertThat(
            parse(Map.of("DRAFTMESH_KV_DTYPE", "float16"), WorkerConfig.Role.DRAFT, "--model", m)
                .kvDtype())
        .isEqualTo(KvDtype.FLOAT16);
    assertThatThrownBy(
            () -> parse(Map.of(), WorkerConfig.Role.DRAFT, "--model", m, "--kv-dtype", "fp8"))
        .isInstanceOf(WorkerConfig.ConfigException.class)
        .hasMessage("--kv-dtype: fp8 (expected: float32 or float16)");
    assertThatThrownBy(
            () ->
                parse(Map.of("DRAFTMESH_KV_DTYPE", "half"), WorkerConfig.Role.DRAFT, "--model", m))
        .hasMessage("DRAFTMESH_KV_DTYPE: half (expected: float32 or float16)");
  }

  @Test
  void messagesNameTheFlagTheValueAndTheRange() {
    String m = model.toString();
    assertThatThrownBy(() -> parse(Map.of(), WorkerConfig.Role.DRAFT))
        .isInstanceOf(WorkerConfig.ConfigException.class)
        .hasMessageContaining("--model: missing");
    assertThatThrownBy(
            () -> parse(Map.of(), WorkerConfig.Role.DRAFT, "--model", m, "--port", "70000"))
        .hasMessage("--port: 70000 (expected: 0..65535)");
    assertThatThrownBy(
            () -> parse(Map.of("DRAFTMESH_PORT", "x"), WorkerConfig.Role.DRAFT, "--model", m))
        .hasMessage("DRAFTMESH_PORT: x (expected: an integer)");
    assertThatThrownBy(
            () -> parse(Map.of(), WorkerConfig.Role.DRAFT, "--model", m, "--max-sessions", "0"))
        .hasMessageStartingWith("--max-sessions: 0");
    assertThatThrownBy(
            () -> parse(Map.of(), WorkerConfig.Role.DRAFT, "--model", m, "--role", "target"))
        .hasMessage("--role: target (expected: draft for this service)");
    assertThatThrownBy(() -> parse(Map.of(), null, "--model", m, "--role", "oracle"))
        .hasMessage("--role: oracle (expected: draft or target)");
    assertThatThrownBy(() -> parse(Map.of(), null, "--model", m))
        .hasMessageContaining("--role: missing");
    assertThatThrownBy(() -> parse(Map.of(), WorkerConfig.Role.DRAFT, "--model", m, "--bogus", "1"))
        .hasMessageStartingWith("--bogus: unknown flag");
    assertThatThrownBy(() -> parse(Map.of(), WorkerConfig.Role.DRAFT, "--model"))
        .hasMessageStartingWith("--model: missing value");
    assertThatThrownBy(
            () ->
                parse(
                    Map.of(), WorkerConfig.Role.DRAFT, "--model", model.resolve("nope").toString()))
        .hasMessageContaining("not found");
    assertThatThrownBy(
            () ->
                parse(
                    Map.of(),
                    WorkerConfig.Role.DRAFT,
                    "--model",
                    m,
                    "--max-tokens-per-op",
                    "64",
                    "--max-batch-tokens",
                    "64"))
        .hasMessageStartingWith("--max-batch-tokens: 64 (expected: 65..");
  }

  @Test
  void usageListsEveryFlagWithItsVariable() {
    assertThat(WorkerConfig.usage())
        .contains("--model DIR", "DRAFTMESH_MODEL", "--kv-budget-mb", "DRAFTMESH_KV_BUDGET_MB")
        .contains("--threads", "DRAFTMESH_THREADS", "--max-context", "DRAFTMESH_MAX_CONTEXT");
  }
}
