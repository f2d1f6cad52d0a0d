package parley.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * npm as the tests of the TypeScript package (clients/js) and of what is built on it
 * (examples/chat) use it: an install kept in step with the lock, a build, a command's exit code
 * and output.
 */
public final class Npm {

  private Npm() {}

  /** A finished command: its exit code (-1 if it timed out) and its output and errors together. */
  public record Run(int exitCode, String output) {}

  /** Whether npm (Node 20) is installed here. */
  public static boolean available() {
    try {
      return new ProcessBuilder("npm", "--version").redirectErrorStream(true).start().waitFor() == 0;
    } catch (IOException | InterruptedException e) {
      return false;
    }
  }

  /**
   * Runs {@code npm ci} in {@code directory} unless its node_modules was installed from the lock
   * as it is: npm keeps the lock it installed from in node_modules/.package-lock.json, and an
   * older one means the dependencies changed since (a pull), so the tests would run on stale ones.
   */
  public static void installed(Path directory) throws IOException, InterruptedException {
    Path installed = directory.resolve("node_modules").resolve(".package-lock.json");
    if (!Files.exists(installed)
        || Files.getLastModifiedTime(installed).compareTo(Files.getLastModifiedTime(directory.resolve("package-lock.json"))) < 0) {
      Run install = run(directory, List.of("npm", "ci", "--no-audit", "--no-fund"), Map.of(), 10);
      assertEquals(0, install.exitCode(), "npm ci in " + directory + " failed:\n" + install.output());
    }
  }

  /** Installs the package in {@code directory} and runs its {@code npm run build}. */
  public static void built(Path directory) throws IOException, InterruptedException {
    installed(directory);
    Run build = run(directory, List.of("npm", "run", "build"), Map.of(), 3);
    assertEquals(0, build.exitCode(), "npm run build in " + directory + " failed:\n" + build.output());
  }

  /** Runs {@code command} in {@code directory} with {@code env} added, for at most {@code minutes}. */
  public static Run run(Path directory, List<String> command, Map<String, String> env, int minutes)
      throws IOException, InterruptedException {
    Path log = Files.createTempFile("parley-npm", ".log");
    try {
      ProcessBuilder builder =
          new ProcessBuilder(command)
              .directory(directory.toFile())
              .redirectErrorStream(true)
              .redirectOutput(log.toFile());
      builder.environment().putAll(env);
      Process process = builder.start();
      if (!process.waitFor(minutes, TimeUnit.MINUTES)) {
        process.descendants().forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly().waitFor();
        return new Run(-1, "timed out after " + minutes + " min:\n" + Files.readString(log, StandardCharsets.UTF_8));
      }
      return new Run(process.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
    } finally {
      Files.deleteIfExists(log);
    }
  }
}
