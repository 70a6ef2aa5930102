package io.draftmesh.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class Utf8StreamTest {
  @Test
  void holdsBackACharacterSplitAcrossTokens() {
    byte[] euro = "€".getBytes(StandardCharsets.UTF_8); // E2 82 AC
    byte[] smile = "😀".getBytes(StandardCharsets.UTF_8); // F0 9F 98 80
    Utf8Stream s = new Utf8Stream();
    assertThat(s.push(new byte[] {'a', euro[0]})).isEqualTo("a");
    assertThat(s.push(new byte[] {euro[1]})).isEmpty();
    assertThat(s.push(new byte[] {euro[2], 'b', smile[0], smile[1]})).isEqualTo("€b");
    assertThat(s.push(new byte[] {smile[2], smile[3]})).isEqualTo("😀");
    assertThat(s.flush()).isEmpty();
  }

  @Test
  void malformedBytesBecomeReplacementCharactersAndAnUnfinishedTailIsFlushed() {
    Utf8Stream s = new Utf8Stream();
    assertThat(s.push(new byte[] {(byte) 0x80, 'x'})).isEqualTo("\uFFFDx");
    assertThat(s.push(new byte[] {(byte) 0xE2, (byte) 0x82})).isEmpty();
    assertThat(s.flush()).isEqualTo("\uFFFD");
  }

  @Test
  void everyPrefixSplitOfAMixedTextReassemblesExactly() {
    String text = "héllo wörld — 東京 😀!";
    byte[] b = text.getBytes(StandardCharsets.UTF_8);
    for (int cut = 0; cut <= b.length; cut++) {
      Utf8Stream s = new Utf8Stream();
      byte[] first = java.util.Arrays.copyOfRange(b, 0, cut);
      byte[] second = java.util.Arrays.copyOfRange(b, cut, b.length);
      assertThat(s.push(first) + s.push(second) + s.flush()).isEqualTo(text);
    }
  }
}
