package io.draftmesh.zoo;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The training corpus: the King James Bible ({@code bible-kjv}) and the BSD fortune cookies ({@code
 * fortunes}), both from Debian packages that {@link #prepare} installs when missing.
 *
 * <p>Documents are KJV chapters (one verse per line, references stripped) and single fortunes. A
 * document goes to validation when the first two bytes of the SHA-256 of its text, read as an
 * unsigned number, are below {@link #VALID_PER_MILLE} per mille of 65536: fixed, independent of
 * order and of package updates that add or remove other documents. Held-out evaluation prompts are
 * the first words of validation verses and fortunes.
 *
 * <p>Files under the data directory ({@code ${XDG_CACHE_HOME:-~/.cache}/draftmesh/corpus}): {@code
 * train.jsonl} and {@code valid.jsonl} (one {@link Doc} per line), {@code prompts.jsonl} (one
 * {@link Prompt} per line) and {@code manifest.json} (counts, bytes, SHA-256s).
 */
public final class Corpus {
  /** Bumped whenever extraction or splitting changes, so stale data dirs are rebuilt. */
  static final int FORMAT_VERSION = 3;

  /** Validation share, in per mille of documents. */
  static final int VALID_PER_MILLE = 30;

  /** Held-out evaluation prompts per source. */
  static final int PROMPTS_PER_SOURCE = 32;

  /** Words a prompt keeps from the start of its held-out verse or fortune. */
  static final int PROMPT_WORDS = 8;

  static final String KJV = "kjv";
  static final String FORTUNES = "fortunes";
  static final Path FORTUNE_DIR = Paths.get("/usr/share/games/fortunes");
  static final List<String> PACKAGES = List.of("bible-kjv-text", "bible-kjv", "fortunes");

  private static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();
  private static final Pattern CHAPTER = Pattern.compile("^([1-3] )?[A-Z][A-Za-z ]+ (\\d+)$");
  private static final Pattern VERSE = Pattern.compile("^ {2}(\\d+) (.*)$");
  private static final Pattern WORD = Pattern.compile("\\S+");

  /**
   * One document.
   *
   * @param source {@code kjv} or {@code fortunes}
   * @param id "Genesis 1" for a chapter, "cookie/17" for the 18th fortune of the cookie file
   * @param text the clean text: verses one per line for KJV, the fortune as printed otherwise
   */
  public record Doc(String source, String id, String text) {}

  /**
   * A held-out evaluation prompt.
   *
   * @param id the document id and verse/fortune it comes from
   * @param prompt the first {@link #PROMPT_WORDS} words
   * @param reference the rest of the verse or fortune
   */
  public record Prompt(String source, String id, String prompt, String reference) {}

  private final Path dir;
  private final List<Doc> train;
  private final List<Doc> valid;
  private final List<Prompt> prompts;

  private Corpus(Path dir, List<Doc> train, List<Doc> valid, List<Prompt> prompts) {
    this.dir = dir;
    this.train = train;
    this.valid = valid;
    this.prompts = prompts;
  }

  /** {@code ${XDG_CACHE_HOME:-~/.cache}/draftmesh/corpus}. */
  public static Path defaultDir() {
    String xdg = System.getenv("XDG_CACHE_HOME");
    Path cache =
        xdg == null || xdg.isBlank()
            ? Paths.get(System.getProperty("user.home"), ".cache")
            : Paths.get(xdg);
    return cache.resolve("draftmesh").resolve("corpus");
  }

  /**
   * Returns the corpus in {@code dir}, building it first (installing the Debian packages if needed)
   * when the directory holds no corpus of the current format.
   */
  public static Corpus prepare(Path dir) throws IOException {
    Path manifest = dir.resolve("manifest.json");
    if (Files.isRegularFile(manifest)) {
      JsonObject m = JsonParser.parseString(Files.readString(manifest)).getAsJsonObject();
      if (m.has("format") && m.get("format").getAsInt() == FORMAT_VERSION) {
        return load(dir);
      }
    }
    ensurePackages();
    List<Doc> docs = new ArrayList<>(extractKjv(runBible()));
    docs.addAll(extractFortunes(FORTUNE_DIR));
    return write(dir, docs);
  }

  /** Reads a corpus {@link #prepare} wrote. */
  public static Corpus load(Path dir) throws IOException {
    return new Corpus(
        dir,
        readJsonl(dir.resolve("train.jsonl"), Doc.class),
        readJsonl(dir.resolve("valid.jsonl"), Doc.class),
        readJsonl(dir.resolve("prompts.jsonl"), Prompt.class));
  }

  /**
   * Drops exact duplicates (a fortune can appear in two files; the first is kept), splits {@code
   * docs}, picks prompts and writes every file. Tests call it with tiny corpora.
   */
  static Corpus write(Path dir, List<Doc> docs) throws IOException {
    List<Doc> train = new ArrayList<>();
    List<Doc> valid = new ArrayList<>();
    java.util.Set<String> seen = new java.util.HashSet<>();
    int duplicates = 0;
    for (Doc d : docs) {
      if (!seen.add(d.text())) {
        duplicates++;
        continue;
      }
      (isValidation(d.text()) ? valid : train).add(d);
    }
    List<Prompt> prompts = selectPrompts(valid);
    Files.createDirectories(dir);
    writeJsonl(dir.resolve("train.jsonl"), train);
    writeJsonl(dir.resolve("valid.jsonl"), valid);
    writeJsonl(dir.resolve("prompts.jsonl"), prompts);
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("format", FORMAT_VERSION);
    m.put(
        "split",
        "validation iff first 2 bytes of sha256(text) as unsigned < "
            + VALID_PER_MILLE
            + "/1000 * 65536");
    m.put("duplicates_dropped", duplicates);
    m.put("train_docs", train.size());
    m.put("train_bytes", bytes(train));
    m.put("valid_docs", valid.size());
    m.put("valid_bytes", bytes(valid));
    m.put("prompts", prompts.size());
    for (String f : List.of("train.jsonl", "valid.jsonl", "prompts.jsonl")) {
      m.put(f.replace(".jsonl", "_sha256"), sha256Hex(Files.readAllBytes(dir.resolve(f))));
    }
    Files.writeString(
        dir.resolve("manifest.json"),
        new GsonBuilder().setPrettyPrinting().create().toJson(m) + "\n");
    return new Corpus(dir, List.copyOf(train), List.copyOf(valid), List.copyOf(prompts));
  }

  public Path dir() {
    return dir;
  }

  public List<Doc> train() {
    return train;
  }

  public List<Doc> valid() {
    return valid;
  }

  public List<Prompt> prompts() {
    return prompts;
  }

  static long bytes(List<Doc> docs) {
    long n = 0;
    for (Doc d : docs) {
      n += d.text().getBytes(StandardCharsets.UTF_8).length;
    }
    return n;
  }

  // ---- split and prompts ----

  static boolean isValidation(String text) {
    byte[] h = sha256(text.getBytes(StandardCharsets.UTF_8));
    int v = ((h[0] & 0xFF) << 8) | (h[1] & 0xFF);
    return v < VALID_PER_MILLE * 65536 / 1000;
  }

  /**
   * {@link #PROMPTS_PER_SOURCE} prompts per source from validation documents. Candidates are the
   * {@link #units} with at least {@code 2 * PROMPT_WORDS} words; they are ordered by the SHA-256 of
   * their text and the first ones taken. A prompt is the unit's text up to the end of its {@link
   * #PROMPT_WORDS}th word, as written (a fortune keeps its line breaks); the reference is the rest.
   */
  static List<Prompt> selectPrompts(List<Doc> valid) {
    List<Prompt> out = new ArrayList<>();
    for (String source : List.of(KJV, FORTUNES)) {
      List<Prompt> candidates = new ArrayList<>();
      for (Doc d : valid) {
        if (!d.source().equals(source)) {
          continue;
        }
        List<String> units = units(d);
        for (int i = 0; i < units.size(); i++) {
          String unit = units.get(i);
          Matcher word = WORD.matcher(unit);
          int words = 0;
          int cut = -1;
          while (word.find()) {
            words++;
            if (words == PROMPT_WORDS) {
              cut = word.end();
            }
          }
          if (words < 2 * PROMPT_WORDS) {
            continue;
          }
          String id = source.equals(KJV) ? d.id() + ":" + (i + 1) : d.id();
          candidates.add(new Prompt(source, id, unit.substring(0, cut), unit.substring(cut)));
        }
      }
      candidates.sort(
          Comparator.comparing(
              p -> sha256Hex((p.prompt() + p.reference()).getBytes(StandardCharsets.UTF_8))));
      out.addAll(candidates.subList(0, Math.min(PROMPTS_PER_SOURCE, candidates.size())));
    }
    return out;
  }

  /**
   * The self-contained pieces of a document that prompts and instruction examples are cut from:
   * each verse of a chapter; a fortune when it is a single plain paragraph of prose (no blank line,
   * no tab, no indented line, at least 80% letters and spaces: that excludes poems, dialogues,
   * tables, attributed quotes and ASCII art).
   */
  static List<String> units(Doc d) {
    if (d.source().equals(KJV)) {
      return List.of(d.text().split("\n"));
    }
    String t = d.text();
    if (t.contains("\n\n") || t.contains("\t") || t.contains("\n ") || t.startsWith(" ")) {
      return List.of();
    }
    long prose = t.chars().filter(c -> Character.isLetter(c) || c == ' ' || c == '\n').count();
    return prose >= 0.8 * t.length() ? List.of(t) : List.of();
  }

  // ---- extraction ----

  /**
   * Parses {@code bible}'s output: "Genesis 1" chapter headers, " 1 In the beginning..." verses
   * wrapped at 80 columns. Returns one document per chapter, one verse per line.
   */
  static List<Doc> extractKjv(String bibleOutput) {
    List<Doc> docs = new ArrayList<>();
    String chapter = null;
    StringBuilder text = new StringBuilder();
    StringBuilder verse = null;
    for (String line : bibleOutput.split("\n", -1)) {
      Matcher v = VERSE.matcher(line);
      Matcher c = CHAPTER.matcher(line);
      if (v.matches()) {
        flushVerse(text, verse);
        verse = new StringBuilder(v.group(2).strip());
      } else if (c.matches()) {
        flushVerse(text, verse);
        verse = null;
        addChapter(docs, chapter, text);
        chapter = line.strip();
        text.setLength(0);
      } else if (!line.isBlank()) {
        if (verse == null) {
          throw new IllegalStateException("bible output: text outside a verse: \"" + line + "\"");
        }
        verse.append(' ').append(line.strip());
      }
    }
    flushVerse(text, verse);
    addChapter(docs, chapter, text);
    return docs;
  }

  private static void flushVerse(StringBuilder text, StringBuilder verse) {
    if (verse != null && verse.length() > 0) {
      if (text.length() > 0) {
        text.append('\n');
      }
      text.append(verse);
    }
  }

  private static void addChapter(List<Doc> docs, String chapter, StringBuilder text) {
    if (chapter != null && text.length() > 0) {
      docs.add(new Doc(KJV, chapter, text.toString()));
    }
  }

  /**
   * Every fortune in {@code dir}: regular files only (skips {@code *.dat}, {@code *.u8} and other
   * symlinks, and subdirectories such as {@code off/} with the offensive set), split on lines that
   * are a single {@code %}. Control characters other than tab and newline are removed, trailing
   * whitespace is trimmed and empty fortunes are dropped.
   */
  static List<Doc> extractFortunes(Path dir) throws IOException {
    List<Path> files = new ArrayList<>();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
      for (Path p : entries) {
        String name = p.getFileName().toString();
        if (name.endsWith(".dat")
            || name.endsWith(".u8")
            || name.startsWith(".")
            || Files.isSymbolicLink(p)
            || !Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
          continue;
        }
        files.add(p);
      }
    }
    files.sort(Comparator.comparing(p -> p.getFileName().toString()));
    List<Doc> docs = new ArrayList<>();
    for (Path f : files) {
      String name = f.getFileName().toString();
      String content = new String(Files.readAllBytes(f), StandardCharsets.UTF_8);
      int index = 0;
      for (String fortune : content.split("(?m)^%\n", -1)) {
        String clean = cleanFortune(fortune);
        if (!clean.isEmpty()) {
          docs.add(new Doc(FORTUNES, name + "/" + index, clean));
          index++;
        }
      }
    }
    return docs;
  }

  static String cleanFortune(String fortune) {
    StringBuilder sb = new StringBuilder(fortune.length());
    fortune
        .codePoints()
        .filter(cp -> cp == '\n' || cp == '\t' || !Character.isISOControl(cp))
        .forEach(sb::appendCodePoint);
    List<String> lines = new ArrayList<>();
    for (String line : sb.toString().split("\n", -1)) {
      lines.add(line.stripTrailing());
    }
    return String.join("\n", lines).strip();
  }

  // ---- Debian packages ----

  /** Installs bible-kjv-text, bible-kjv and fortunes with apt-get unless already present. */
  static void ensurePackages() throws IOException {
    if (hasCommand("bible") && Files.isDirectory(FORTUNE_DIR)) {
      return;
    }
    List<String> install = new ArrayList<>(List.of("apt-get", "install", "-y", "-q"));
    install.addAll(PACKAGES);
    if (run(install) != 0) {
      if (run(List.of("apt-get", "update", "-q")) != 0 || run(install) != 0) {
        throw new IOException(
            "could not install "
                + String.join(" ", PACKAGES)
                + " with apt-get (expected: root and a Debian package mirror)");
      }
    }
    if (!hasCommand("bible") || !Files.isDirectory(FORTUNE_DIR)) {
      throw new IOException("apt-get succeeded but `bible` or " + FORTUNE_DIR + " is missing");
    }
  }

  private static boolean hasCommand(String name) throws IOException {
    return run(List.of("sh", "-c", "command -v " + name + " >/dev/null")) == 0;
  }

  private static int run(List<String> command) throws IOException {
    ProcessBuilder pb = new ProcessBuilder(command).inheritIO();
    pb.environment().put("DEBIAN_FRONTEND", "noninteractive");
    try {
      Process p = pb.start();
      if (!p.waitFor(30, TimeUnit.MINUTES)) {
        p.destroyForcibly();
        throw new IOException(String.join(" ", command) + ": timed out");
      }
      return p.exitValue();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(String.join(" ", command) + ": interrupted", e);
    }
  }

  private static String runBible() throws IOException {
    Process p =
        new ProcessBuilder("bible", "gen1:1-rev22:21")
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start();
    String out;
    try (InputStream in = p.getInputStream()) {
      out = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    try {
      if (p.waitFor() != 0) {
        throw new IOException("bible exited with " + p.exitValue());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("bible: interrupted", e);
    }
    return out;
  }

  // ---- files ----

  private static <T> void writeJsonl(Path file, List<T> items) throws IOException {
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    try (BufferedWriter w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
      for (T item : items) {
        w.write(GSON.toJson(item));
        w.write('\n');
      }
    }
    Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
  }

  private static <T> List<T> readJsonl(Path file, Class<T> type) throws IOException {
    List<T> out = new ArrayList<>();
    try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
      String line;
      while ((line = r.readLine()) != null) {
        if (!line.isEmpty()) {
          out.add(GSON.fromJson(line, type));
        }
      }
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
    return List.copyOf(out);
  }

  static byte[] sha256(byte[] data) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(data);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  static String sha256Hex(byte[] data) {
    return HexFormat.of().formatHex(sha256(data));
  }
}
