package parley.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeType;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.networknt.schema.JsonSchema;
import com.networknt.schema.JsonSchemaFactory;
import com.networknt.schema.SchemaValidatorsConfig;
import com.networknt.schema.SpecVersion;
import com.networknt.schema.ValidationMessage;
import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.lang.reflect.RecordComponent;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.auth.AuthResult;

/**
 * docs/asyncapi.json and docs/openapi.json are the machine-readable protocol v1; this test keeps
 * them, and the frames in docs/protocol.md and docs/transports.md, from drifting from the code.
 * Messages and schemas name the record they describe ({@code x-parley-record}); REST routes name
 * the request they decode to ({@code x-parley-request}). Every example is decoded or
 * round-tripped through {@link Codec} and validated against its own schema.
 */
class SpecTest {

  private static final Path BASE = Path.of(System.getProperty("parley.base.dir", "."));
  private static final Codec CODEC = new Codec(new Codec.Limits(16384, 1024));

  /** Reads doc frames leniently: a code block may hold several, and text may follow one. */
  private static final ObjectMapper LENIENT = new ObjectMapper();

  private static final SchemaValidatorsConfig VALIDATION =
      SchemaValidatorsConfig.builder().formatAssertionsEnabled(true).build();

  private static JsonNode asyncapi;
  private static JsonNode openapi;

  @BeforeAll
  static void readSpecs() throws IOException {
    // Codec.JSON refuses a key given twice, which a hand-edited spec could otherwise hide.
    asyncapi = Codec.JSON.readTree(BASE.resolve("docs/asyncapi.json").toFile());
    openapi = Codec.JSON.readTree(BASE.resolve("docs/openapi.json").toFile());
  }

  // ---------------------------------------------------------------------------------------
  // (a) messages ↔ records

  @Test
  void everyRecordOfTheProtocolHasAMessageAndEveryMessageARecord() {
    assertEquals(records(Request.class), new LinkedHashSet<>(Codec.REQUESTS.values()), "Codec.REQUESTS holds every Request record");
    assertEquals(records(Push.class), new LinkedHashSet<>(Codec.PUSHES.values()), "Codec.PUSHES holds every Push record");

    Set<Class<?>> expected = new LinkedHashSet<>();
    expected.addAll(Codec.REQUESTS.values());
    expected.addAll(Codec.PUSHES.values());
    expected.addAll(records(Reply.class));
    // Accepted (typing) is never a frame: the WebSocket sends nothing, REST answers 204. It is
    // tied to openapi.json instead (restRoutesDecodeToTheirRequests).
    expected.remove(Reply.Accepted.class);

    Map<Class<?>, String> seen = new LinkedHashMap<>();
    messages().forEach((key, message) -> {
      Class<?> record = record(message.path("x-parley-record").asText());
      String previous = seen.put(record, key);
      assertTrue(previous == null, record + " has two messages: " + previous + " and " + key);
      assertEquals(key, message.path("name").asText(), "a message's name is its key");
      String family = record.getEnclosingClass().getSimpleName();
      assertTrue(
          key.equals(record.getSimpleName()) || key.equals(record.getSimpleName() + family),
          key + " is named after its record " + family + "." + record.getSimpleName());
      assertEquals(wireType(record), envelope(message).path("properties").path("type").path("const").asText(), key + ": type");
    });
    assertEquals(names(expected), names(seen.keySet()));
  }

  @Test
  void channelsAndOperationsCarryEveryMessage() {
    JsonNode websocket = asyncapi.path("channels").path("websocket");
    JsonNode events = asyncapi.path("channels").path("events");
    assertEquals("/v1/ws", websocket.path("address").asText());
    assertEquals("/v1/events", events.path("address").asText());
    assertEquals(messages().keySet(), fieldNames(websocket.path("messages")), "the WebSocket carries every message");
    Set<String> ssePushes = new TreeSet<>();
    messages().forEach((key, message) -> {
      Class<?> record = record(message.path("x-parley-record").asText());
      if (Push.class.isAssignableFrom(record) && record != Push.Ping.class) {
        ssePushes.add(key);
      }
    });
    assertEquals(ssePushes, new TreeSet<>(fieldNames(events.path("messages"))), "SSE carries every push but the heartbeat ping");

    // Each request is one operation named after its type, whose reply names the reply records.
    Set<String> received = new TreeSet<>();
    asyncapi.path("operations").properties().forEach(entry -> {
      JsonNode operation = entry.getValue();
      for (JsonNode ref : iterable(operation.path("messages"))) {
        JsonNode message = resolve(asyncapi, ref.path("$ref").asText());
        assertFalse(message.isMissingNode(), entry.getKey() + ": " + ref);
        Class<?> record = record(message.path("x-parley-record").asText());
        if (operation.path("action").asText().equals("receive")) {
          assertEquals(Codec.REQUESTS.get(entry.getKey()), record, "operation " + entry.getKey());
          received.add(entry.getKey());
        }
      }
      for (JsonNode ref : iterable(operation.path("reply").path("messages"))) {
        assertTrue(Reply.class.isAssignableFrom(record(resolve(asyncapi, ref.path("$ref").asText()).path("x-parley-record").asText())));
      }
    });
    assertEquals(new TreeSet<>(Codec.REQUESTS.keySet()), received);
  }

  @Test
  void recordSchemasHoldExactlyTheRecordsFields() {
    int checked = 0;
    for (JsonNode spec : List.of(asyncapi, openapi)) {
      for (Map.Entry<String, JsonNode> entry : fields(spec.path("components").path("schemas")).entrySet()) {
        JsonNode schema = entry.getValue();
        if (!schema.has("x-parley-record")) {
          continue;
        }
        Class<?> record = record(schema.path("x-parley-record").asText());
        String where = entry.getKey() + " (" + record.getName() + ")";
        Set<String> components = Arrays.stream(record.getRecordComponents()).map(RecordComponent::getName).collect(Collectors.toCollection(TreeSet::new));
        assertEquals(components, new TreeSet<>(fieldNames(schema.path("properties"))), where + ": properties");
        Set<String> required = new TreeSet<>(texts(schema.path("required")));
        assertTrue(components.containsAll(required), where + ": required names fields");
        if (!Request.class.isAssignableFrom(record)) {
          // What the server writes: a primitive is always there (null fields are left out).
          for (RecordComponent component : record.getRecordComponents()) {
            if (component.getType().isPrimitive()) {
              assertTrue(required.contains(component.getName()), where + ": " + component.getName() + " is always sent");
            }
          }
        }
        checked++;
      }
    }
    assertTrue(checked > 60, "record schemas checked: " + checked);

    messages().forEach((key, message) -> {
      JsonNode payload = message.path("payload").path("allOf");
      assertEquals(2, payload.size(), key + ": payload is the envelope and the record's schema");
      JsonNode schema = resolve(asyncapi, payload.get(1).path("$ref").asText());
      assertEquals(message.path("x-parley-record"), schema.path("x-parley-record"), key);
    });

    // A schema both documents define is the same schema: one may not drift from the other.
    fields(openapi.path("components").path("schemas")).forEach((key, schema) -> {
      JsonNode twin = asyncapi.path("components").path("schemas").path(key);
      if (!twin.isMissingNode()) {
        assertEquals(twin, schema, "components.schemas." + key + " differs between asyncapi.json and openapi.json");
      }
    });
  }

  // ---------------------------------------------------------------------------------------
  // (b) examples ↔ codec

  @Test
  void requestExamplesDecodeToTheirRecord() {
    int examples = 0;
    for (Map.Entry<String, JsonNode> entry : messages().entrySet()) {
      JsonNode message = entry.getValue();
      Class<?> record = record(message.path("x-parley-record").asText());
      if (!Request.class.isAssignableFrom(record)) {
        continue;
      }
      Set<String> required = new LinkedHashSet<>(texts(envelope(message).path("required")));
      required.addAll(texts(resolve(asyncapi, message.path("payload").path("allOf").get(1).path("$ref").asText()).path("required")));
      assertFalse(message.path("examples").isEmpty(), entry.getKey() + " has an example");
      for (JsonNode example : iterable(message.path("examples"))) {
        ObjectNode frame = (ObjectNode) example.path("payload");
        String where = entry.getKey() + " example " + example.path("name").asText() + ": ";
        Codec.Decoded decoded = decode(where, frame);
        assertEquals(record, decoded.request().getClass(), where + "record");
        assertEquals(frame.hasNonNull("id") ? frame.get("id").asText() : null, decoded.id(), where + "id");

        // The schema's required fields are the codec's: the rest may go, none of these may.
        ObjectNode minimal = frame.deepCopy();
        minimal.retain(required);
        assertEquals(record, decode(where + "required fields only: ", minimal).request().getClass());
        for (String field : required) {
          ObjectNode without = frame.deepCopy();
          without.remove(field);
          ProtocolException refused = assertThrows(ProtocolException.class, () -> CODEC.decode(without.toString()), where + "without " + field);
          assertEquals(ErrorCode.MISSING_FIELD, refused.code(), where + "without " + field);
        }
        examples++;
      }
    }
    assertTrue(examples >= Codec.REQUESTS.size(), "request examples: " + examples);
  }

  @Test
  void replyAndPushExamplesRoundTripThroughTheCodec() {
    int examples = 0;
    for (Map.Entry<String, JsonNode> entry : messages().entrySet()) {
      JsonNode message = entry.getValue();
      Class<?> record = record(message.path("x-parley-record").asText());
      if (Request.class.isAssignableFrom(record)) {
        continue;
      }
      assertFalse(message.path("examples").isEmpty(), entry.getKey() + " has an example");
      for (JsonNode example : iterable(message.path("examples"))) {
        String where = entry.getKey() + " example " + example.path("name").asText();
        JsonNode frame = example.path("payload");
        if (Push.class.isAssignableFrom(record)) {
          assertEquals(record, Codec.readPush(frame.toString()).getClass(), where);
          assertPushRoundTrips(where, frame);
        } else {
          assertReplyRoundTrips(where, frame, record);
        }
        examples++;
      }
    }
    assertTrue(examples > 40, "reply and push examples: " + examples);
  }

  // ---------------------------------------------------------------------------------------
  // (c) examples ↔ schemas

  @Test
  void everyAsyncApiExampleMatchesItsSchema() {
    // AsyncAPI 3.0's default schema format is a superset of JSON Schema draft-07.
    int examples = 0;
    for (Map.Entry<String, JsonNode> entry : messages().entrySet()) {
      JsonSchema schema = schema(SpecVersion.VersionFlag.V7, asyncapi, entry.getValue().path("payload"));
      for (JsonNode example : iterable(entry.getValue().path("examples"))) {
        assertValid(schema, example.path("payload"), entry.getKey() + " example " + example.path("name").asText());
        examples++;
      }
    }
    examples += schemaExamples(SpecVersion.VersionFlag.V7, asyncapi);
    assertTrue(examples > 80, "asyncapi examples: " + examples);
  }

  @Test
  void everyOpenApiExampleMatchesItsSchema() {
    // OpenAPI 3.1's schema dialect is JSON Schema 2020-12.
    int examples = schemaExamples(SpecVersion.VersionFlag.V202012, openapi);
    for (JsonNode response : iterable(openapi.path("components").path("responses"))) {
      examples += mediaExamples(response.path("content"), "components.responses");
    }
    for (JsonNode parameter : iterable(openapi.path("components").path("parameters"))) {
      if (parameter.has("example")) {
        assertValid(schema(SpecVersion.VersionFlag.V202012, openapi, parameter.path("schema")), parameter.get("example"), "parameter " + parameter.path("name").asText());
        examples++;
      }
    }
    for (Operation operation : operations()) {
      examples += mediaExamples(operation.node().path("requestBody").path("content"), operation + " request");
      for (JsonNode response : iterable(operation.node().path("responses"))) {
        examples += mediaExamples(response.path("content"), operation + " response");
      }
      for (JsonNode parameter : iterable(operation.node().path("parameters"))) {
        JsonNode resolved = parameter.has("$ref") ? resolve(openapi, parameter.get("$ref").asText()) : parameter;
        if (resolved.has("example") && !parameter.has("$ref")) {
          assertValid(schema(SpecVersion.VersionFlag.V202012, openapi, resolved.path("schema")), resolved.get("example"), operation + " parameter " + resolved.path("name").asText());
          examples++;
        }
      }
    }
    assertTrue(examples > 50, "openapi examples: " + examples);
  }

  // ---------------------------------------------------------------------------------------
  // (d) error codes and REST

  @Test
  void errorCodesAndTheirStatusesAreTheTablesOwn() {
    List<String> codes = Arrays.stream(ErrorCode.values()).map(ErrorCode::wire).toList();
    assertEquals(codes, texts(asyncapi.path("components").path("schemas").path("ErrorCode").path("enum")), "asyncapi.json: every ErrorCode, in order");
    assertEquals(codes, texts(openapi.path("components").path("schemas").path("ErrorCode").path("enum")), "openapi.json: every ErrorCode, in order");
    assertEquals("#/components/schemas/ErrorCode", asyncapi.at("/components/schemas/Failure/properties/code/$ref").asText());

    // Every error body that claims protocol codes lists exactly the codes of its status.
    Map<Integer, Set<String>> documented = new HashMap<>();
    for (Operation operation : operations()) {
      operation.node().path("responses").properties().forEach(entry -> {
        int status = Integer.parseInt(entry.getKey());
        JsonNode response = entry.getValue().has("$ref") ? resolve(openapi, entry.getValue().get("$ref").asText()) : entry.getValue();
        JsonNode schema = response.path("content").path("application/json").path("schema");
        if (status == 401) {
          // A user's token, or a key (the server's or the workers') on the routes that take one.
          assertTrue(Set.of("#/components/schemas/TokenError", "#/components/schemas/KeyError").contains(schema.path("$ref").asText()), operation + " 401");
        } else if (schema.path("allOf").path(0).path("$ref").asText().equals("#/components/schemas/Error")) {
          Set<String> listed = new TreeSet<>(texts(schema.path("allOf").path(1).path("properties").path("code").path("enum")));
          assertEquals(codesOfStatus(status), listed, operation + " " + status);
          documented.computeIfAbsent(status, s -> new TreeSet<>()).addAll(listed);
          assertValidErrorExamples(operation + " " + status, response, status);
        } else if (status >= 400) {
          // Not a protocol error body: the dev token's own 400, a 404 with no body.
          assertTrue(operation.path().equals("/v1/dev/token"), operation + " " + status + " names no protocol error schema");
        }
        if (status == 429) {
          assertTrue(response.path("headers").has("Retry-After"), operation + ": 429 carries Retry-After");
        }
      });
    }
    Set<Integer> statuses = Arrays.stream(ErrorCode.values()).map(ErrorCode::httpStatus).filter(s -> s != 401).collect(Collectors.toCollection(TreeSet::new));
    assertEquals(statuses, new TreeSet<>(documented.keySet()), "every status of the table is documented");

    // The token check answers 401 with AuthFailure's codes: the 401 codes of the table, and
    // bad_user_id for a token whose sub is not a user id (400 when it is a request's field).
    Set<String> authCodes = new TreeSet<>(constants(AuthResult.AuthFailure.class));
    assertEquals(authCodes, new TreeSet<>(texts(openapi.at("/components/schemas/TokenError/properties/code/enum"))));
    assertTrue(authCodes.containsAll(codesOfStatus(401)));
    authCodes.forEach(code -> assertTrue(ErrorCode.fromWire(code).isPresent(), code + " is a protocol code"));
  }

  @Test
  void restRoutesDecodeToTheirRequests() throws IOException {
    Set<String> routed = new TreeSet<>();
    Matcher calls = Pattern.compile("calls\\.run\\(\\s*[^,]+,\\s*\"([a-z_]+)\"").matcher(Files.readString(BASE.resolve("src/main/java/parley/transport/rest/RestRoutes.java")));
    while (calls.find()) {
      routed.add(calls.group(1));
    }
    Set<String> documented = new TreeSet<>();
    int examples = 0;
    for (Operation operation : operations()) {
      String type = operation.node().path("x-parley-request").asText(null);
      if (type == null) {
        continue;
      }
      assertTrue(documented.add(type), type + " has one route");
      Class<? extends Request> record = Codec.REQUESTS.get(type);
      assertNotNull(record, operation + ": x-parley-request " + type);
      assertTrue(operation.node().path("responses").has("429"), operation + ": rate-limited like every call");

      // The route's path, header and query parameters and its body are the request's fields.
      ObjectNode fromParameters = Codec.JSON.createObjectNode();
      for (JsonNode parameter : iterable(operation.node().path("parameters"))) {
        JsonNode resolved = parameter.has("$ref") ? resolve(openapi, parameter.get("$ref").asText()) : parameter;
        fromParameters.set(resolved.path("x-parley-field").asText(), resolved.path("example"));
      }
      List<JsonNode> bodies = new ArrayList<>();
      operation.node().path("requestBody").path("content").path("application/json").path("examples").forEach(e -> bodies.add(e.path("value")));
      if (bodies.isEmpty()) {
        bodies.add(Codec.JSON.createObjectNode());
      }
      for (JsonNode body : bodies) {
        ObjectNode fields = ((ObjectNode) body.deepCopy()).setAll(fromParameters);
        try {
          assertEquals(record, CODEC.decode(type, fields).getClass(), operation.toString());
        } catch (ProtocolException e) {
          fail(operation + " with " + fields + ": " + e.code().wire() + " " + e.getMessage());
        }
      }

      // The success body is the reply record's fields, the one the WebSocket replies with.
      JsonNode responses = operation.node().path("responses");
      // 202 where the call starts a job (export_room), as a job submission answers.
      JsonNode success = responses.has("200") ? responses.path("200") : responses.has("202") ? responses.path("202") : responses.path("204");
      Class<?> reply = record(success.path("x-parley-record").asText());
      if (reply == Reply.Accepted.class) {
        assertEquals("typing", type);
        assertTrue(operation.node().path("responses").has("204"), "typing answers 204");
        continue;
      }
      assertTrue(replyRecords(type).contains(reply), operation + ": " + reply.getSimpleName() + " is a reply of " + type + " in asyncapi.json");
      for (JsonNode example : iterable(success.path("content").path("application/json").path("examples"))) {
        JsonNode value = example.path("value");
        assertEquals(value, tree(Codec.restBody((Reply) read(operation.toString(), value, reply))), operation + " success example");
        examples++;
      }
    }
    assertEquals(routed, documented, "every REST route of RestRoutes, and no other, names its request");
    assertTrue(examples >= routed.size() - 1, "REST success examples: " + examples);
    assertEquals("send", operation("/v1/rooms/{room}/messages", "post").path("x-parley-request").asText(), "the publish API decodes a send");
    assertTrue(operation("/v1/rooms/{room}/messages", "post").path("security").toString().contains("serverKey"), "the publish API takes the server key");
    for (String path : List.of("/v1/events", "/v1/poll", "/v1/dev/token", "/v1/info", "/v1/asyncapi.json", "/v1/openapi.json")) {
      assertTrue(openapi.path("paths").has(path), path);
    }
  }

  @Test
  void pollExamplesCarryServerFrames() {
    JsonNode examples = operation("/v1/poll", "get").at("/responses/200/content/application~1json/examples");
    int frames = 0;
    for (JsonNode example : iterable(examples)) {
      for (JsonNode frame : iterable(example.path("value").path("events"))) {
        assertPushRoundTrips("poll example", frame);
        frames++;
      }
    }
    assertTrue(frames > 0);
  }

  @Test
  void closeCodesAreTheOnesTheSessionCloses() throws IOException {
    String session = Files.readString(BASE.resolve("src/main/java/parley/transport/Session.java"));
    Set<Integer> used = new TreeSet<>();
    Matcher closes = Pattern.compile("closeWith\\(\\s*([A-Z_0-9]+)\\s*,").matcher(session);
    while (closes.find()) {
      String code = closes.group(1);
      if (code.chars().allMatch(Character::isDigit)) {
        used.add(Integer.parseInt(code));
      } else {
        Matcher constant = Pattern.compile("int " + code + " = (\\d+);").matcher(session);
        assertTrue(constant.find(), "Session." + code);
        used.add(Integer.parseInt(constant.group(1)));
      }
    }
    assertFalse(used.isEmpty());
    Set<Integer> documented = new TreeSet<>();
    asyncapi.at("/components/schemas/Close/properties/code/enum").forEach(code -> documented.add(code.asInt()));
    assertEquals(used, documented, "the close codes of the close push");
  }

  // ---------------------------------------------------------------------------------------
  // (e) the prose docs' frames

  /**
   * The frames of docs/protocol.md and docs/transports.md: {@code → {…}} lines are client
   * requests, {@code ← {…}} lines and SSE {@code data: {…}} lines server frames; frames in
   * ```json blocks and in inline code spans are placed by their type (a frame with no id whose
   * type is a push's is a push, since typing, doc_cursor and ping name both).
   *
   * <p>Placeholders: a "…" inside a JSON string is kept as it is, since every field written so
   * ({@code ts}, {@code session}, {@code message}, …) is a string either way and the frame
   * still reads and round-trips; a frame where "…" stands for a value or for more fields is not
   * JSON and is skipped, as are inline spans that are not JSON (like {@code lastSeqDelivered}).
   */
  @Test
  void theFramesOfTheProseDocsAreTheCodecs() throws IOException {
    DocFrames frames = new DocFrames();
    for (String doc : List.of("docs/protocol.md", "docs/transports.md")) {
      frames.check(doc, Files.readAllLines(BASE.resolve(doc)));
    }
    assertTrue(frames.requests >= 12, "doc requests checked: " + frames.requests);
    assertTrue(frames.replies >= 12, "doc replies checked: " + frames.replies);
    assertTrue(frames.pushes >= 20, "doc pushes checked: " + frames.pushes);
  }

  private static final class DocFrames {
    private static final Pattern ARROW = Pattern.compile("^\\s*(→|←|data:) (\\{.*)$");
    private static final Pattern INLINE = Pattern.compile("`(\\{\"type\":[^`]*)`");

    int requests;
    int replies;
    int pushes;
    int skipped;

    /** Requests of the current code block by id, to tell which reply record an ok is. */
    private final Map<String, String> asked = new HashMap<>();

    void check(String doc, List<String> lines) throws IOException {
      String fence = null;
      StringBuilder json = new StringBuilder();
      for (int i = 0; i < lines.size(); i++) {
        String line = lines.get(i);
        String where = doc + ":" + (i + 1);
        if (line.startsWith("```")) {
          if (fence == null) {
            fence = line.substring(3).strip();
            json.setLength(0);
            asked.clear();
          } else {
            if (fence.equals("json")) {
              try (MappingIterator<JsonNode> values = LENIENT.readerFor(JsonNode.class).readValues(json.toString())) {
                while (values.hasNext()) {
                  placed(where, values.next());
                }
              }
            }
            fence = null;
          }
        } else if ("json".equals(fence)) {
          json.append(line).append('\n');
        } else if (fence != null) {
          Matcher arrow = ARROW.matcher(line);
          if (arrow.matches()) {
            JsonNode frame = first(arrow.group(2));
            if (frame == null) {
              assertTrue(line.contains("…"), where + ": not JSON and no placeholder: " + line);
              skipped++;
            } else if (arrow.group(1).equals("→")) {
              request(where, frame);
            } else {
              server(where, frame);
            }
          }
        } else {
          Matcher inline = INLINE.matcher(line);
          while (inline.find()) {
            JsonNode frame = first(inline.group(1));
            if (frame == null) {
              skipped++;
            } else {
              placed(where, frame);
            }
          }
        }
      }
    }

    private void placed(String where, JsonNode frame) {
      String type = frame.path("type").asText();
      if (type.equals("ok") || type.equals("error") || (type.equals("pong") && frame.has("id"))) {
        server(where, frame);
      } else if (!frame.has("id") && Codec.PUSHES.containsKey(type)) {
        server(where, frame);
      } else {
        assertTrue(Codec.REQUESTS.containsKey(type), where + ": unknown frame type " + type);
        request(where, frame);
      }
    }

    private void request(String where, JsonNode frame) {
      Codec.Decoded decoded = decode(where + " ", (ObjectNode) frame);
      assertEquals(Codec.REQUESTS.get(frame.path("type").asText()), decoded.request().getClass(), where);
      if (decoded.id() != null) {
        asked.put(decoded.id(), frame.path("type").asText());
      }
      requests++;
    }

    private void server(String where, JsonNode frame) {
      String type = frame.path("type").asText();
      switch (type) {
        case "error" -> assertReplyRoundTrips(where, frame, Reply.Failure.class);
        case "pong" -> assertReplyRoundTrips(where, frame, Reply.Pong.class);
        case "ok" -> {
          String request = asked.get(frame.path("id").asText());
          assertNotNull(request, where + ": an ok to no request of its block");
          List<Class<?>> candidates = replyRecords(request);
          assertEquals(1, candidates.size(), where + ": " + request + " has one reply record in asyncapi.json");
          assertReplyRoundTrips(where, frame, candidates.get(0));
        }
        default -> {
          assertTrue(Codec.PUSHES.containsKey(type), where + ": unknown server frame type " + type);
          assertPushRoundTrips(where, frame);
          pushes++;
          return;
        }
      }
      replies++;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Helpers

  private static Codec.Decoded decode(String where, ObjectNode frame) {
    try {
      return CODEC.decode(frame.toString());
    } catch (ProtocolException e) {
      throw new AssertionError(where + frame + " is refused: " + e.code().wire() + " " + e.getMessage(), e);
    }
  }

  private static void assertPushRoundTrips(String where, JsonNode frame) {
    assertEquals(frame, tree(Codec.push(Codec.readPush(frame.toString()))), where + ": the push reads and writes back the same");
  }

  /** Reads the fields into the record and writes the reply frame back: the same frame. */
  private static void assertReplyRoundTrips(String where, JsonNode frame, Class<?> record) {
    String id = frame.hasNonNull("id") ? frame.get("id").asText() : null;
    ObjectNode fields = frame.deepCopy();
    fields.remove(List.of("type", "id"));
    Reply reply;
    if (record == Reply.Failure.class) {
      ErrorCode code = ErrorCode.fromWire(fields.path("code").asText()).orElseThrow(() -> new AssertionError(where + ": no error code " + fields.path("code")));
      reply = new Reply.Failure(
          code,
          fields.path("message").asText(),
          fields.hasNonNull("jobId") ? fields.get("jobId").asText() : null,
          fields.hasNonNull("retryAfter") ? java.time.Duration.ofSeconds(fields.get("retryAfter").asLong()) : null);
      fields.remove(List.of("code", "message", "jobId", "retryAfter"));
      assertTrue(fields.isEmpty(), where + ": an error has code, message, jobId and retryAfter only, not " + fields);
    } else {
      reply = (Reply) read(where, fields, record);
    }
    assertEquals(frame, tree(Codec.reply(id, reply)), where + ": the reply reads and writes back the same");
  }

  private static Object read(String where, JsonNode fields, Class<?> record) {
    try {
      return Codec.JSON.treeToValue(fields, record);
    } catch (IOException e) {
      throw new AssertionError(where + ": " + fields + " is not a " + record.getName() + ": " + e.getMessage(), e);
    }
  }

  private static JsonNode tree(String json) {
    try {
      return Codec.JSON.readTree(json);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The first JSON value of {@code text}, or null when it does not start with one. */
  private static JsonNode first(String text) {
    try (JsonParser parser = LENIENT.createParser(text)) {
      return LENIENT.readTree(parser);
    } catch (IOException e) {
      return null;
    }
  }

  private static Map<String, JsonNode> messages() {
    return fields(asyncapi.path("components").path("messages"));
  }

  private static JsonNode envelope(JsonNode message) {
    return message.path("payload").path("allOf").path(0);
  }

  /** The reply records asyncapi.json gives the request type, errors apart. */
  private static List<Class<?>> replyRecords(String requestType) {
    List<Class<?>> records = new ArrayList<>();
    for (JsonNode ref : iterable(asyncapi.path("operations").path(requestType).path("reply").path("messages"))) {
      Class<?> record = record(resolve(asyncapi, ref.path("$ref").asText()).path("x-parley-record").asText());
      if (record != Reply.Failure.class) {
        records.add(record);
      }
    }
    return records;
  }

  private static String wireType(Class<?> record) {
    if (Request.class.isAssignableFrom(record)) {
      return Codec.REQUESTS.entrySet().stream().filter(e -> e.getValue() == record).findFirst().orElseThrow().getKey();
    }
    if (Push.class.isAssignableFrom(record)) {
      return Codec.PUSHES.entrySet().stream().filter(e -> e.getValue() == record).findFirst().orElseThrow().getKey();
    }
    return record == Reply.Failure.class ? "error" : record == Reply.Pong.class ? "pong" : "ok";
  }

  /** "Request.CreateRoom" → Request.CreateRoom.class. */
  private static Class<?> record(String name) {
    try {
      Class<?> record = Class.forName("parley.protocol." + name.replace('.', '$'));
      assertTrue(record.isRecord(), name + " is a record");
      return record;
    } catch (ClassNotFoundException e) {
      throw new AssertionError("x-parley-record names no record: '" + name + "'", e);
    }
  }

  /** The records of a sealed hierarchy. */
  private static Set<Class<?>> records(Class<?> sealed) {
    Set<Class<?>> records = new LinkedHashSet<>();
    for (Class<?> permitted : sealed.getPermittedSubclasses()) {
      if (permitted.isRecord()) {
        records.add(permitted);
      } else {
        records.addAll(records(permitted));
      }
    }
    return records;
  }

  private static Set<String> names(Set<Class<?>> records) {
    return records.stream().map(Class::getName).collect(Collectors.toCollection(TreeSet::new));
  }

  private static Set<String> codesOfStatus(int status) {
    return Arrays.stream(ErrorCode.values()).filter(c -> c.httpStatus() == status).map(ErrorCode::wire).collect(Collectors.toCollection(TreeSet::new));
  }

  private static List<String> constants(Class<?> holder) {
    List<String> values = new ArrayList<>();
    for (Field field : holder.getDeclaredFields()) {
      if (Modifier.isStatic(field.getModifiers()) && field.getType() == String.class) {
        try {
          values.add((String) field.get(null));
        } catch (IllegalAccessException e) {
          throw new IllegalStateException(e);
        }
      }
    }
    return values;
  }

  private static void assertValidErrorExamples(String where, JsonNode response, int status) {
    for (JsonNode example : iterable(response.path("content").path("application/json").path("examples"))) {
      String code = example.path("value").path("code").asText();
      assertEquals(status, ErrorCode.fromWire(code).orElseThrow().httpStatus(), where + ": example " + code);
    }
  }

  private record Operation(String path, String method, JsonNode node) {
    @Override
    public String toString() {
      return method.toUpperCase() + " " + path;
    }
  }

  private static List<Operation> operations() {
    List<Operation> operations = new ArrayList<>();
    fields(openapi.path("paths")).forEach((path, item) -> fields(item).forEach((method, node) -> operations.add(new Operation(path, method, node))));
    return operations;
  }

  private static JsonNode operation(String path, String method) {
    return openapi.path("paths").path(path).path(method);
  }

  private static int mediaExamples(JsonNode content, String where) {
    int count = 0;
    for (Map.Entry<String, JsonNode> media : fields(content).entrySet()) {
      JsonNode schema = media.getValue().path("schema");
      for (Map.Entry<String, JsonNode> example : fields(media.getValue().path("examples")).entrySet()) {
        JsonNode value = example.getValue().path("value");
        if (value.getNodeType() == JsonNodeType.STRING && !media.getKey().equals("application/json")) {
          assertTrue(value.asText().length() > 0, where + " " + example.getKey());
        } else {
          assertValid(schema(SpecVersion.VersionFlag.V202012, openapi, schema), value, where + " " + media.getKey() + " example " + example.getKey());
        }
        count++;
      }
    }
    return count;
  }

  /** The examples schemas give of themselves ({@code examples} beside {@code type}). */
  private static int schemaExamples(SpecVersion.VersionFlag version, JsonNode spec) {
    int count = 0;
    for (Map.Entry<String, JsonNode> entry : fields(spec.path("components").path("schemas")).entrySet()) {
      JsonSchema schema = schema(version, spec, entry.getValue());
      for (JsonNode example : iterable(entry.getValue().path("examples"))) {
        assertValid(schema, example, "components.schemas." + entry.getKey() + " example " + example);
        count++;
      }
    }
    return count;
  }

  private static final Map<String, JsonSchema> SCHEMAS = new HashMap<>();

  /** {@code schema} with the document's components beside it, for its $refs to resolve. */
  private static JsonSchema schema(SpecVersion.VersionFlag version, JsonNode spec, JsonNode schema) {
    return SCHEMAS.computeIfAbsent(version + schema.toString(), key -> {
      ObjectNode root = schema.deepCopy();
      root.set("components", spec.path("components"));
      return JsonSchemaFactory.getInstance(version).getSchema(root, VALIDATION);
    });
  }

  private static void assertValid(JsonSchema schema, JsonNode value, String where) {
    Set<ValidationMessage> errors = schema.validate(value);
    assertTrue(errors.isEmpty(), where + " does not match its schema: " + errors);
  }

  /** Follows a local $ref, and the $refs it leads to (a channel's message names a component). */
  private static JsonNode resolve(JsonNode spec, String ref) {
    assertTrue(ref.startsWith("#/"), "a local $ref: " + ref);
    JsonNode target = spec.at(ref.substring(1));
    return target.has("$ref") ? resolve(spec, target.get("$ref").asText()) : target;
  }

  private static Map<String, JsonNode> fields(JsonNode node) {
    Map<String, JsonNode> fields = new LinkedHashMap<>();
    node.properties().forEach(e -> fields.put(e.getKey(), e.getValue()));
    return fields;
  }

  private static Set<String> fieldNames(JsonNode node) {
    return fields(node).keySet();
  }

  private static List<String> texts(JsonNode array) {
    List<String> texts = new ArrayList<>();
    array.forEach(e -> texts.add(e.asText()));
    return texts;
  }

  /** The elements of an array, or the values of an object. */
  private static Iterable<JsonNode> iterable(JsonNode node) {
    return node::elements;
  }
}
