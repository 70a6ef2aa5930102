package io.draftmesh.gateway;

import static io.draftmesh.gateway.RequestParsing.parse;
import static io.draftmesh.gateway.RequestParsing.refusal;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.google.gson.JsonObject;
import io.draftmesh.proto.v1.GenerateRequest;
import io.draftmesh.proto.v1.Strategy;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The gateway's small parts, without a mesh. */
class UnitsTest {
  @Test
  void apiKeysAcceptOnlyConfiguredBearerKeys() {
    ApiKeys keys = new ApiKeys(List.of("first-key-1", "second-key-2"));
    assertThat(keys.authenticate("Bearer second-key-2").id()).isEqualTo("key-2");
    assertThat(keys.authenticate("bearer   first-key-1 ").id()).isEqualTo("key-1");
    for (String bad :
        new String[] {null, "", "first-key-1", "Basic Zmlyc3Q=", "Bearer first-key"}) {
      StatusRuntimeException e =
          catchThrowableOfType(StatusRuntimeException.class, () -> keys.authenticate(bad));
      assertThat(e.getStatus().getCode()).as("%s", bad).isEqualTo(Status.Code.UNAUTHENTICATED);
    }
    assertThat(new ApiKeys(List.of()).authenticate(null)).isEqualTo(ApiKeys.ANONYMOUS);
  }

  @Test
  void tokenBucketRefillsAtTheConfiguredRate() {
    AtomicLong now = new AtomicLong();
    KeyLimits limits = new KeyLimits(2, 60, 10, now::get); // 1 token per second, burst 10
    ApiKeys.Caller a = new ApiKeys.Caller("key-1");
    try (KeyLimits.Lease l = limits.acquire(a)) {
      l.charge(25); // the bucket goes 15 into debt
    }
    StatusRuntimeException e =
        catchThrowableOfType(StatusRuntimeException.class, () -> limits.acquire(a));
    assertThat(e.getStatus().getCode()).isEqualTo(Status.Code.RESOURCE_EXHAUSTED);
    assertThat(e.getTrailers().get(Errors.LIMIT_KEY)).isEqualTo("tokens");
    assertThat(Long.parseLong(e.getTrailers().get(Errors.RETRY_AFTER_KEY))).isBetween(16L, 17L);
    now.addAndGet(Duration.ofSeconds(15).toNanos());
    assertThatThrownBy(() -> limits.acquire(a)).isInstanceOf(StatusRuntimeException.class);
    now.addAndGet(Duration.ofSeconds(2).toNanos());
    limits.acquire(a).close();
    // Never more than the burst, however long the key was idle.
    now.addAndGet(Duration.ofHours(1).toNanos());
    try (KeyLimits.Lease l = limits.acquire(a)) {
      l.charge(11);
    }
    assertThatThrownBy(() -> limits.acquire(a)).isInstanceOf(StatusRuntimeException.class);
  }

  @Test
  void concurrencyIsPerKeyAndLeasesCloseOnce() {
    KeyLimits limits = new KeyLimits(1, 0, 0, System::nanoTime);
    ApiKeys.Caller a = new ApiKeys.Caller("key-1");
    KeyLimits.Lease l = limits.acquire(a);
    StatusRuntimeException e =
        catchThrowableOfType(StatusRuntimeException.class, () -> limits.acquire(a));
    assertThat(e.getTrailers().get(Errors.LIMIT_KEY)).isEqualTo("requests");
    limits.acquire(new ApiKeys.Caller("key-2")).close();
    l.close();
    l.close();
    assertThat(limits.running(a)).isZero();
    limits.acquire(a).close();
  }

  @Test
  void statusesMapToOpenAiErrorsInOnePlace() {
    Errors.HttpError bad = Errors.toHttp(Errors.invalid("max_tokens: 0 (expected: 1..8192)"));
    assertThat(bad.status()).isEqualTo(400);
    assertThat(bad.param()).isEqualTo("max_tokens");
    assertThat(bad.toJson().toString())
        .isEqualTo(
            "{\"error\":{\"message\":\"max_tokens: 0 (expected: 1..8192)\",\"type\":"
                + "\"invalid_request_error\",\"param\":\"max_tokens\",\"code\":\"invalid_value\"}}");
    assertThat(Errors.toHttp(Errors.unauthenticated("x")).status()).isEqualTo(401);
    assertThat(
            Errors.toHttp(Status.NOT_FOUND.withDescription("target: x").asRuntimeException())
                .status())
        .isEqualTo(404);
    Errors.HttpError limited = Errors.toHttp(Errors.limited("tokens", 7, "slow down"));
    assertThat(limited.status()).isEqualTo(429);
    assertThat(limited.type()).isEqualTo("tokens");
    assertThat(limited.retryAfter()).isEqualTo(7);
    assertThat(
            Errors.toHttp(
                    Status.RESOURCE_EXHAUSTED.withDescription("router full").asRuntimeException())
                .type())
        .isEqualTo("requests");
    assertThat(Errors.toHttp(Status.UNAVAILABLE.asRuntimeException()).status()).isEqualTo(503);
    assertThat(Errors.toHttp(Status.DEADLINE_EXCEEDED.asRuntimeException()).status())
        .isEqualTo(504);
    Errors.HttpError bug = Errors.toHttp(new IllegalStateException("secret detail"));
    assertThat(bug.status()).isEqualTo(500);
    assertThat(bug.message()).doesNotContain("secret");
  }

  @Test
  void completionRequestsFollowOpenAiDefaultsAndCarryDraftmeshOptions() {
    GenerateRequest r =
        parse(
            OpenAiRequests.Kind.COMPLETION,
            "{\"model\":\"m\",\"prompt\":\"hi\",\"seed\":-1,\"stop\":\"\\n\",\"top_k\":-1,"
                + "\"draftmesh\":{\"strategy\":\"ngram\",\"ngram\":{\"n\":2},\"ignore_eos\":true}}");
    assertThat(r.getText()).isEqualTo("hi");
    assertThat(r.getTarget()).isEqualTo("m");
    assertThat(r.getSampling().getMaxTokens()).isEqualTo(16);
    assertThat(r.getSampling().getTemperature()).isEqualTo(1f);
    assertThat(r.getSampling().getTopK()).isZero();
    assertThat(r.getSampling().getSeed()).isEqualTo(-1L);
    assertThat(r.getSampling().getStopList()).containsExactly("\n");
    assertThat(r.getStrategy()).isEqualTo(Strategy.STRATEGY_NGRAM);
    assertThat(r.getNgram().getN()).isEqualTo(2);
    assertThat(r.getIgnoreEos()).isTrue();

    GenerateRequest ids =
        parse(OpenAiRequests.Kind.COMPLETION, "{\"model\":\"m\",\"prompt\":[[5,6,7]]}");
    assertThat(ids.getTokenIds().getIdsList()).containsExactly(5, 6, 7);

    GenerateRequest pc =
        parse(
            OpenAiRequests.Kind.COMPLETION,
            "{\"model\":\"m\",\"prompt\":\"hi\",\"draftmesh\":{\"strategy\":\"specpc\","
                + "\"spec_pc\":{\"budget_tokens\":256,\"window\":32,\"kernel\":16,"
                + "\"starting_layer\":0}}}");
    assertThat(pc.getStrategy()).isEqualTo(Strategy.STRATEGY_SPECPC);
    assertThat(pc.getSpecPc().getBudgetTokens()).isEqualTo(256);
    assertThat(pc.getSpecPc().getWindow()).isEqualTo(32);
    assertThat(pc.getSpecPc().getKernel()).isEqualTo(16);
    assertThat(pc.getSpecPc().hasStartingLayer()).isTrue();
    assertThat(pc.getSpecPc().getStartingLayer()).isZero();

    GenerateRequest kv =
        parse(
            OpenAiRequests.Kind.COMPLETION,
            "{\"model\":\"m\",\"prompt\":\"hi\",\"draftmesh\":{\"strategy\":\"speckv\","
                + "\"kv_compression\":{\"budget\":128,\"window\":16,\"kernel\":5,"
                + "\"answer_tokens\":32}}}");
    assertThat(kv.getStrategy()).isEqualTo(Strategy.STRATEGY_SPECKV);
    assertThat(kv.getKvCompression().getBudget()).isEqualTo(128);
    assertThat(kv.getKvCompression().getWindow()).isEqualTo(16);
    assertThat(kv.getKvCompression().getKernel()).isEqualTo(5);
    assertThat(kv.getKvCompression().getAnswerTokens()).isEqualTo(32);
    assertThat(kv.getKvCompression().hasSinks()).isFalse();
    GenerateRequest snap =
        parse(
            OpenAiRequests.Kind.COMPLETION,
            "{\"model\":\"m\",\"prompt\":\"hi\",\"draftmesh\":{\"kv_compression\":"
                + "{\"method\":\"streaming_llm\",\"sinks\":0}}}");
    assertThat(snap.getKvCompression().getMethod()).isEqualTo("streaming_llm");
    assertThat(snap.getKvCompression().hasSinks()).isTrue();
    assertThat(snap.getKvCompression().getPrefixTokens()).isZero();
    GenerateRequest prefix =
        parse(
            OpenAiRequests.Kind.COMPLETION,
            "{\"model\":\"m\",\"prompt\":\"hi\",\"draftmesh\":{\"kv_compression\":"
                + "{\"method\":\"snapkv\",\"prefix_tokens\":640}}}");
    assertThat(prefix.getKvCompression().getMethod()).isEqualTo("snapkv");
    assertThat(prefix.getKvCompression().getPrefixTokens()).isEqualTo(640);
    GenerateRequest h2o =
        parse(
            OpenAiRequests.Kind.COMPLETION,
            "{\"model\":\"m\",\"prompt\":\"hi\",\"draftmesh\":{\"kv_compression\":"
                + "{\"method\":\"h2o\",\"budget\":96,\"window\":24}}}");
    assertThat(h2o.getKvCompression().getMethod()).isEqualTo("h2o");
    assertThat(h2o.getKvCompression().getBudget()).isEqualTo(96);
    assertThat(h2o.getKvCompression().getWindow()).isEqualTo(24);
    assertThat(h2o.getKvCompression().getKernel()).as("absent: h2o does not pool").isZero();
  }

  @Test
  void refusalsNameTheFieldTheValueAndWhatWasExpected() {
    OpenAiRequests.Kind c = OpenAiRequests.Kind.COMPLETION;
    assertThat(refusal(c, "{\"prompt\":\"x\"}")).isEqualTo("model: missing (expected: a string)");
    assertThat(refusal(c, "{\"model\":\"m\"}")).startsWith("prompt: missing");
    assertThat(refusal(c, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":9000}"))
        .isEqualTo("max_tokens: 9000 (expected: 1..8192)");
    assertThat(refusal(c, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":1.5}"))
        .isEqualTo("max_tokens: 1.5 (expected: 1..8192)");
    assertThat(refusal(c, "{\"model\":\"m\",\"prompt\":\"x\",\"max_tokens\":\"8\"}"))
        .isEqualTo("max_tokens: \"8\" (expected: an integer 1..8192)");
    assertThat(refusal(c, "{\"model\":\"m\",\"prompt\":[\"a\",\"b\"]}"))
        .startsWith("prompt: 2 prompts (expected: 1");
    assertThat(refusal(c, "{\"model\":\"m\",\"prompt\":\"x\",\"top_p\":0}"))
        .isEqualTo("top_p: 0 (expected: (0, 1])");
    assertThat(
            refusal(
                c, "{\"model\":\"m\",\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}"))
        .isEqualTo("stop: 5 sequences (expected: at most 4)");
    assertThat(refusal(c, "{\"model\":\"m\",\"prompt\":\"x\",\"echo\":true}"))
        .isEqualTo("echo: true (expected: absent or null; not supported by DraftMesh)");
    assertThat(
            refusal(c, "{\"model\":\"m\",\"prompt\":\"x\",\"draftmesh\":{\"strategy\":\"magic\"}}"))
        .isEqualTo(
            "draftmesh.strategy: \"magic\" (expected: default, autoregressive, speculative, ngram,"
                + " nudging, entropy_switch, lead_in, specpc or speckv)");
    assertThat(
            refusal(
                c,
                "{\"model\":\"m\",\"prompt\":\"x\",\"draftmesh\":{\"kv_compression\":{\"budget\":0}}}"))
        .isEqualTo("draftmesh.kv_compression.budget: 0 (expected: 1..1048576)");
    assertThat(
            refusal(
                c,
                "{\"model\":\"m\",\"prompt\":\"x\",\"draftmesh\":{\"kv_compression\":{\"cmax\":9}}}"))
        .startsWith("draftmesh.kv_compression.cmax: unknown option");
    assertThat(
            refusal(
                c,
                "{\"model\":\"m\",\"prompt\":\"x\","
                    + "\"draftmesh\":{\"kv_compression\":{\"prefix_tokens\":-1}}}"))
        .isEqualTo("draftmesh.kv_compression.prefix_tokens: -1 (expected: 0..1048576)");
    assertThat(
            refusal(
                c,
                "{\"model\":\"m\",\"prompt\":\"x\","
                    + "\"draftmesh\":{\"kv_compression\":{\"prefix_tokens\":\"all\"}}}"))
        .isEqualTo(
            "draftmesh.kv_compression.prefix_tokens: \"all\" (expected: an integer 0..1048576)");
    assertThat(
            refusal(
                c, "{\"model\":\"m\",\"prompt\":\"x\",\"draftmesh\":{\"spec_pc\":{\"window\":0}}}"))
        .isEqualTo("draftmesh.spec_pc.window: 0 (expected: 1..1048576)");
    assertThat(
            refusal(
                c, "{\"model\":\"m\",\"prompt\":\"x\",\"draftmesh\":{\"spec_pc\":{\"cmax\":9}}}"))
        .startsWith("draftmesh.spec_pc.cmax: unknown option");
    assertThat(refusal(c, "{\"model\":\"m\",\"prompt\":\"x\",\"draftmesh\":{\"k\":0}}"))
        .isEqualTo("draftmesh.k: 0 (expected: 1..64)");
    OpenAiRequests.Kind chat = OpenAiRequests.Kind.CHAT;
    assertThat(
            refusal(chat, "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}"))
        .isEqualTo("messages[0].role: \"tool\" (expected: system, developer, user or assistant)");
    assertThat(refusal(chat, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}]}"))
        .startsWith("messages[0].content: missing");
  }

  @Test
  void chatFormatsRenderWithoutJinja(@TempDir Path dir) throws Exception {
    List<ChatFormat.Message> msgs =
        List.of(
            new ChatFormat.Message("system", "Be brief."),
            new ChatFormat.Message("user", "Hi"),
            new ChatFormat.Message("assistant", "Hello"),
            new ChatFormat.Message("user", "Bye"));
    assertThat(ChatFormat.text(ChatFormat.DEFAULT.render(msgs)))
        .isEqualTo("<|user|>Be brief.\n\nHi<|assistant|>Hello<|end|><|user|>Bye<|assistant|>");
    assertThat(ChatFormat.text(ChatFormat.CHATML.render(msgs.subList(1, 2))))
        .isEqualTo("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    assertThat(ChatFormat.text(ChatFormat.LLAMA3.render(msgs.subList(1, 2))))
        .isEqualTo(
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n");

    assertThat(ChatFormat.detect(null)).isEqualTo(ChatFormat.DEFAULT);
    assertThat(ChatFormat.detect(dir)).isEqualTo(ChatFormat.DEFAULT); // no tokenizer_config.json
    JsonObject cfg = new JsonObject();
    cfg.addProperty(
        "chat_template",
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n'}}{% endfor %}");
    Files.writeString(dir.resolve("tokenizer_config.json"), cfg.toString());
    assertThat(ChatFormat.detect(dir)).isEqualTo(ChatFormat.CHATML);
    cfg.addProperty("chat_template", "{{ bos_token }}{% for m in messages %}[INST]{% endfor %}");
    Files.writeString(dir.resolve("tokenizer_config.json"), cfg.toString());
    assertThat(ChatFormat.detect(dir)).isEqualTo(ChatFormat.DEFAULT); // not recognised
  }

  @Test
  void catalogNamesMapToRouterPools() {
    RouterClient client =
        new RouterClient(null, Duration.ofSeconds(1), RequestParsing.CATALOG, 8192);
    ApiKeys.Caller caller = new ApiKeys.Caller("key-1");
    GenerateRequest mapped =
        client.prepare(GenerateRequest.newBuilder().setTarget("m").setText("x").build(), caller);
    assertThat(mapped.getTarget()).isEqualTo("target");
    assertThat(mapped.getDraft()).isEqualTo("draft");
    assertThat(mapped.getRequestId()).startsWith("key-1/");
    GenerateRequest passed =
        client.prepare(
            GenerateRequest.newBuilder().setTarget("pool-x").setRequestId("r1").build(), caller);
    assertThat(passed.getTarget()).isEqualTo("pool-x");
    assertThat(passed.getDraft()).isEmpty();
    assertThat(passed.getRequestId()).isEqualTo("key-1/r1");
  }
}
