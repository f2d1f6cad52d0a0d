package parley.ops;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The Kubernetes manifests in deploy/kubernetes hold together with each other and with the
 * node: the probes reach Pekko Management's /ready and /alive, the selectors match the pods,
 * Cluster Bootstrap can find the pods, and every variable set is one the node reads.
 */
class ManifestsTest {

  private static final Path BASE = Path.of(System.getProperty("parley.base.dir", "."));
  private static final Path KUBERNETES = BASE.resolve("deploy/kubernetes");
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  /** Variables the node does not read itself but a library it runs does. */
  private static final Set<String> LIBRARY_VARIABLES =
      Set.of(
          // pekko-management-cluster-bootstrap's reference.conf: the port name of the peers.
          "PEKKO_CLUSTER_BOOTSTRAP_PORT_NAME");

  private static List<JsonNode> manifests;

  @BeforeAll
  static void readManifests() throws IOException {
    manifests = new ArrayList<>();
    try (Stream<Path> files = Files.list(KUBERNETES)) {
      for (Path file : files.filter(f -> f.toString().endsWith(".yaml")).sorted().toList()) {
        try (MappingIterator<JsonNode> documents = YAML.readerFor(JsonNode.class).readValues(file.toFile())) {
          while (documents.hasNext()) {
            JsonNode document = documents.next();
            if (document != null && !document.isEmpty()) {
              manifests.add(document);
            }
          }
        }
      }
    }
  }

  @Test
  void everyManifestParsesAndHasAKindAndAName() {
    assertTrue(manifests.size() >= 8, "all the manifests were read: " + manifests.size());
    for (JsonNode manifest : manifests) {
      assertTrue(manifest.path("kind").isTextual(), manifest.toString());
      if (!manifest.path("kind").asText().equals("Kustomization")) {
        assertTrue(manifest.path("metadata").path("name").isTextual(), manifest.toString());
      }
    }
  }

  @Test
  void probesAskManagementForReadyAndAlive() {
    JsonNode container = nodeContainer();
    int managementPort = containerPort(container, "management");
    assertEquals(8558, managementPort);
    assertEquals(Integer.toString(managementPort), env(container).get("PARLEY_MANAGEMENT_PORT"));
    assertProbe(container, "readinessProbe", "/ready", managementPort);
    assertProbe(container, "livenessProbe", "/alive", managementPort);
    assertProbe(container, "startupProbe", "/alive", managementPort);
  }

  @Test
  void selectorsMatchThePods() {
    JsonNode deployment = one("Deployment", "parley");
    JsonNode podLabels = deployment.path("spec").path("template").path("metadata").path("labels");
    assertMatches(deployment.path("spec").path("selector").path("matchLabels"), podLabels, "Deployment selector");
    assertMatches(one("PodDisruptionBudget", "parley").path("spec").path("selector").path("matchLabels"), podLabels, "PodDisruptionBudget selector");
    assertEquals(1, one("PodDisruptionBudget", "parley").path("spec").path("maxUnavailable").asInt(), "one pod at a time keeps a majority of three");
    JsonNode service = one("Service", "parley");
    assertMatches(service.path("spec").path("selector"), podLabels, "Service selector");
    for (JsonNode port : service.path("spec").path("ports")) {
      containerPort(nodeContainer(), port.path("targetPort").asText());
    }
  }

  @Test
  void clusterBootstrapCanFindThePods() {
    JsonNode deployment = one("Deployment", "parley");
    JsonNode pod = deployment.path("spec").path("template");
    Map<String, String> env = env(nodeContainer());
    assertEquals("true", env.get("PARLEY_CLUSTER_BOOTSTRAP"));
    // pekko-discovery-kubernetes-api selects pods by app=<service name>.
    String serviceName = env.getOrDefault("PARLEY_SERVICE_NAME", "parley");
    assertEquals(serviceName, pod.path("metadata").path("labels").path("app").asText());
    containerPort(nodeContainer(), env.get("PEKKO_CLUSTER_BOOTSTRAP_PORT_NAME"));
    assertEquals("status.podIP", envSource(nodeContainer(), "PARLEY_HOST").path("fieldRef").path("fieldPath").asText());

    String account = pod.path("spec").path("serviceAccountName").asText();
    JsonNode binding = one("RoleBinding", "parley-pod-reader");
    assertEquals(account, binding.path("subjects").get(0).path("name").asText());
    JsonNode role = one("Role", binding.path("roleRef").path("name").asText());
    JsonNode rule = role.path("rules").get(0);
    assertTrue(contains(rule.path("resources"), "pods"));
    for (String verb : List.of("get", "watch", "list")) {
      assertTrue(contains(rule.path("verbs"), verb), "the role may " + verb + " pods");
    }
    one("ServiceAccount", account);
  }

  @Test
  void theAuthSecretComesFromASecretAndEverySecretKeyExists() {
    JsonNode secret = one("Secret", "parley-secrets");
    JsonNode auth = envSource(nodeContainer(), "PARLEY_AUTH_SECRET").path("secretKeyRef");
    assertEquals("parley-secrets", auth.path("name").asText());
    assertFalse(auth.path("optional").asBoolean(false), "a node without the auth secret must not start");
    for (JsonNode container : allContainers()) {
      for (JsonNode variable : container.path("env")) {
        JsonNode ref = variable.path("valueFrom").path("secretKeyRef");
        if (!ref.isMissingNode()) {
          assertEquals("parley-secrets", ref.path("name").asText());
          assertTrue(secret.path("stringData").has(ref.path("key").asText()), "secret key " + ref.path("key").asText());
        }
      }
    }
  }

  @Test
  void everyVariableSetIsOneTheNodeReads() throws IOException {
    Set<String> known = variablesTheNodeReads();
    assertTrue(known.contains("PARLEY_AUTH_SECRET") && known.contains("PARLEY_PROFILE"), known.toString());
    Set<String> set = new HashSet<>();
    for (JsonNode container : allContainers()) {
      env(container).keySet().forEach(set::add);
      for (JsonNode from : container.path("envFrom")) {
        JsonNode config = one("ConfigMap", from.path("configMapRef").path("name").asText());
        config.path("data").fieldNames().forEachRemaining(set::add);
      }
    }
    for (String variable : set) {
      assertTrue(known.contains(variable) || LIBRARY_VARIABLES.contains(variable), variable + " is not read by the node (conf/ or code)");
    }
  }

  @Test
  void theProductionReplicationHasThreeReplicas() {
    String replication = one("ConfigMap", "parley-config").path("data").path("PARLEY_CASSANDRA_REPLICATION").asText();
    assertTrue(replication.contains("NetworkTopologyStrategy") && replication.matches(".*: *3.*"), replication);
    assertEquals(3, one("Deployment", "parley").path("spec").path("replicas").asInt());
  }

  @Test
  void theImageRunsTheNodesMainClass() throws IOException {
    String dockerfile = Files.readString(BASE.resolve("deploy/Dockerfile"));
    assertTrue(dockerfile.contains("\"parley.app.Main\""), "ENTRYPOINT runs parley.app.Main");
    for (String port : List.of("8080", "8558", "25520")) {
      assertTrue(dockerfile.matches("(?s).*EXPOSE[^\\n]*" + port + ".*"), "EXPOSE " + port);
    }
    JsonNode job = one("Job", "parley-schema");
    assertEquals(List.of("schema", "apply"), YAML.convertValue(job.path("spec").path("template").path("spec").path("containers").get(0).path("args"), List.class));
  }

  @Test
  void theImageBuildCopiesEveryModulesPomAndOnlyPathsThatExistAndTheContextLetsIn() throws IOException {
    String dockerfile = Files.readString(BASE.resolve("deploy/Dockerfile"));
    Matcher module = Pattern.compile("<module>([^<]+)</module>").matcher(Files.readString(BASE.resolve("pom.xml")));
    int modules = 0;
    while (module.find()) {
      modules++;
      String pom = module.group(1) + "/pom.xml";
      assertTrue(dockerfile.contains("COPY " + pom + " "), "the image copies " + pom + " (Maven reads every module)");
    }
    assertTrue(modules >= 4, "the build's modules: " + modules);
    // The context holds only what the .dockerignore lets in ("*", then "!path" lines).
    List<String> letIn =
        Files.readAllLines(BASE.resolve("deploy/Dockerfile.dockerignore")).stream()
            .filter(line -> line.startsWith("!"))
            .map(line -> line.substring(1))
            .toList();
    Matcher copy = Pattern.compile("(?m)^COPY (?!--from)(.+) \\S+$").matcher(dockerfile);
    while (copy.find()) {
      for (String source : copy.group(1).trim().split(" +")) {
        assertTrue(Files.exists(BASE.resolve(source)), "COPY " + source + " exists");
        assertTrue(letIn.stream().anyMatch(in -> source.equals(in) || source.startsWith(in + "/")), "the .dockerignore lets in " + source);
      }
    }
  }

  /**
   * PARLEY_* names the node reads: in conf/*.conf ({@code ${?NAME}}), in the logback config
   * ({@code ${NAME:-default}}) and in the code (System.getenv).
   */
  private static Set<String> variablesTheNodeReads() throws IOException {
    Set<String> names = new HashSet<>();
    Pattern inConf = Pattern.compile("\\$\\{\\?(PARLEY_[A-Z0-9_]+)}");
    Pattern inLogback = Pattern.compile("\\$\\{(PARLEY_[A-Z0-9_]+):-");
    Pattern inCode = Pattern.compile("\"(PARLEY_[A-Z0-9_]+)\"");
    try (Stream<Path> files = Stream.concat(Files.walk(BASE.resolve("conf")), Files.walk(BASE.resolve("src/main/java")))) {
      for (Path file : files.filter(Files::isRegularFile).toList()) {
        String name = file.toString();
        Pattern pattern = name.endsWith(".conf") ? inConf : name.endsWith(".xml") ? inLogback : inCode;
        Matcher m = pattern.matcher(Files.readString(file));
        while (m.find()) {
          names.add(m.group(1));
        }
      }
    }
    return names;
  }

  private static JsonNode one(String kind, String name) {
    List<JsonNode> found =
        manifests.stream()
            .filter(m -> m.path("kind").asText().equals(kind) && m.path("metadata").path("name").asText().equals(name))
            .toList();
    assertEquals(1, found.size(), "one " + kind + " named " + name);
    return found.get(0);
  }

  private static JsonNode nodeContainer() {
    JsonNode containers = one("Deployment", "parley").path("spec").path("template").path("spec").path("containers");
    assertEquals(1, containers.size());
    return containers.get(0);
  }

  private static List<JsonNode> allContainers() {
    List<JsonNode> containers = new ArrayList<>();
    for (JsonNode manifest : manifests) {
      manifest.path("spec").path("template").path("spec").path("containers").forEach(containers::add);
    }
    return containers;
  }

  private static int containerPort(JsonNode container, String name) {
    for (JsonNode port : container.path("ports")) {
      if (port.path("name").asText().equals(name)) {
        return port.path("containerPort").asInt();
      }
    }
    throw new AssertionError("the node container has no port named " + name);
  }

  private static Map<String, String> env(JsonNode container) {
    Map<String, String> env = new HashMap<>();
    for (JsonNode variable : container.path("env")) {
      env.put(variable.path("name").asText(), variable.path("value").asText(null));
    }
    return env;
  }

  private static JsonNode envSource(JsonNode container, String name) {
    for (JsonNode variable : container.path("env")) {
      if (variable.path("name").asText().equals(name)) {
        return variable.path("valueFrom");
      }
    }
    throw new AssertionError("no variable " + name);
  }

  private static void assertProbe(JsonNode container, String probe, String path, int port) {
    JsonNode get = container.path(probe).path("httpGet");
    assertEquals(path, get.path("path").asText(), probe);
    JsonNode target = get.path("port");
    int resolved = target.isInt() ? target.asInt() : containerPort(container, target.asText());
    assertEquals(port, resolved, probe + " asks the management port");
  }

  private static void assertMatches(JsonNode selector, JsonNode labels, String what) {
    assertTrue(selector.size() > 0, what + " selects something");
    selector.properties().forEach(
        e -> assertEquals(e.getValue().asText(), labels.path(e.getKey()).asText(), what + " " + e.getKey()));
  }

  private static boolean contains(JsonNode array, String value) {
    for (JsonNode element : array) {
      if (element.asText().equals(value)) {
        return true;
      }
    }
    return false;
  }
}
