package parley.app;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.jar.JarFile;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * One artifact per product: the node's jar holds neither the client SDK nor the load tool, and
 * the client an application embeds runs on Jackson alone. Reads what `mvn package` built (this
 * runs after it, in the same reactor).
 */
class ArtifactsIT {

  private static final Path BASE = Path.of(System.getProperty("parley.base.dir", "."));
  private static final Path BUILD = Path.of(System.getProperty("parley.build.dir", "target"));

  @Test
  void theNodesJarHoldsNeitherTheClientNorTheLoadTool() throws IOException {
    try (JarFile jar = new JarFile(BUILD.resolve("parley.jar").toFile())) {
      List<String> classes = jar.stream().map(e -> e.getName()).filter(n -> n.endsWith(".class")).toList();
      assertTrue(classes.contains("parley/app/Main.class"), "the node's own classes are there");
      List<String> foreign =
          classes.stream().filter(n -> n.startsWith("parley/client/") || n.startsWith("parley/bench/") || n.startsWith("parley/collab/ot/")).toList();
      assertEquals(List.of(), foreign, "classes of other artifacts in the node's jar");
    }
    List<String> lib = names(BUILD.resolve("lib"));
    assertTrue(lib.stream().anyMatch(n -> n.startsWith("parley-ot-")), "the node runs on the shared OT core: " + lib);
    assertEquals(List.of(), lib.stream().filter(n -> n.startsWith("parley-client") || n.startsWith("parley-bench")).toList());
  }

  @Test
  void theClientRunsOnJacksonAndTheOtCoreAlone() throws IOException {
    List<String> lib = names(BASE.resolve("clients/java/client/target/lib"));
    assertTrue(lib.stream().anyMatch(n -> n.startsWith("jackson-databind-")), lib.toString());
    List<String> others = lib.stream().filter(n -> !n.startsWith("jackson-") && !n.startsWith("parley-ot-")).toList();
    assertEquals(List.of(), others, "the client SDK's run-time dependencies beyond Jackson (no Pekko, no Cassandra driver)");
    try (JarFile jar = new JarFile(BASE.resolve("clients/java/client/target/parley-client.jar").toFile())) {
      assertTrue(jar.getEntry("parley/client/ParleyClient.class") != null);
      assertTrue(jar.stream().noneMatch(e -> e.getName().startsWith("parley/bench/") || e.getName().startsWith("parley/app/")));
    }
  }

  private static List<String> names(Path dir) throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }
}
