package io.draftmesh.gateway;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.FuzzTest;
import io.draftmesh.proto.v1.TextPart;
import io.draftmesh.proto.v1.TextParts;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Fuzz targets for the chat template: recognising a checkpoint's {@code tokenizer_config.json}
 * never fails (anything unreadable or unrecognised is the default format), and rendering any
 * conversation keeps every message's content literal and verbatim: the literal parts are the
 * contents, in order, so nothing a user types can become a template marker.
 *
 * <p>Under plain JUnit these run the committed inputs ({@code ChatTemplateFuzzTestInputs/}); {@code
 * ./draftmesh fuzz chat-template --minutes N} (JAZZER_FUZZ=1) fuzzes.
 */
class ChatTemplateFuzzTest {
  private static final String[] ROLES = {"system", "developer", "user", "assistant"};
  private static Path dir;

  private static synchronized Path dir() {
    try {
      if (dir == null) {
        dir = Files.createTempDirectory("fuzz-chat");
        dir.toFile().deleteOnExit();
      }
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @FuzzTest(maxDuration = "10m")
  void detect(byte[] tokenizerConfigJson) throws IOException {
    Path file = dir().resolve("tokenizer_config.json");
    Files.write(file, tokenizerConfigJson);
    file.toFile().deleteOnExit();
    assertThat(ChatFormat.detect(dir())).isNotNull();
  }

  /**
   * The input, as UTF-8, is a conversation: messages separated by U+0000, each a role digit (0..3)
   * and the content; the first byte picks the format.
   */
  @FuzzTest(maxDuration = "10m")
  void render(byte[] bytes) {
    if (bytes.length == 0) {
      return;
    }
    ChatFormat format = ChatFormat.values()[(bytes[0] & 0xff) % ChatFormat.values().length];
    String text = new String(bytes, 1, bytes.length - 1, StandardCharsets.UTF_8);
    List<ChatFormat.Message> messages = new ArrayList<>();
    for (String m : text.split("\u0000", -1)) {
      String role = m.isEmpty() ? "user" : ROLES[Math.floorMod(m.charAt(0), ROLES.length)];
      messages.add(new ChatFormat.Message(role, m.isEmpty() ? "" : m.substring(1)));
    }
    TextParts parts = format.render(messages);
    List<String> literals = new ArrayList<>();
    for (TextPart p : parts.getPartsList()) {
      assertThat(p.getText()).isNotEmpty();
      if (p.getLiteral()) {
        literals.add(p.getText());
      }
    }
    List<String> contents = new ArrayList<>();
    if (format == ChatFormat.DEFAULT) {
      // System messages go into the next user turn (or a turn of their own at the end, joined
      // and stripped); every other content is its own literal part.
      for (ChatFormat.Message m : messages) {
        boolean system = m.role().equals("system") || m.role().equals("developer");
        if (!system && !m.content().isEmpty()) {
          assertThat(literals).contains(m.content());
        }
      }
      return;
    }
    for (ChatFormat.Message m : messages) {
      if (!m.content().isEmpty()) {
        contents.add(m.content());
      }
    }
    assertThat(literals).containsExactlyElementsOf(contents);
  }
}
