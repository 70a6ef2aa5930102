package io.draftmesh.zoo;
public class TokenDataProbe {
  public static long[] load(Corpus c, io.draftmesh.engine.tokenizer.TextTokenizer t) throws Exception {
    TokenData tr = TokenData.tokenize(c.train(), t), va = TokenData.tokenize(c.valid(), t);
    return new long[] {tr.size(), tr.bytes(), va.size(), va.bytes()};
  }
}
