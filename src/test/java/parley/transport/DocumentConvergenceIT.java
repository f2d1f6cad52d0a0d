package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.Config;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.persistence.query.EventEnvelope;
import org.apache.pekko.persistence.query.PersistenceQuery;
import org.apache.pekko.persistence.cassandra.query.javadsl.CassandraReadJournal;
import org.apache.pekko.stream.javadsl.Sink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import parley.client.DocumentClient;
import parley.client.ParleyClient;
import parley.collab.document.DocumentEntity;
import parley.collab.ot.TextOperation;
import parley.testing.InJvmNode;
import parley.testing.TestCassandra;

/**
 * Five editors on separate connections type into one document at random moments, drop their
 * connections at random, and all lose them at once when the document's node restarts
 * halfway; they keep typing while it is down. At the end every client's text equals the
 * server's, which equals a replay of the document's journal.
 *
 * <p>The journal is read with the Cassandra read journal (every event of {@code doc|<id>},
 * from the creation on), not through the entity's retained window: the replay checks what was
 * persisted, revision by revision. The seeds are fixed, so a failure names its seed; the
 * delays, reconnects and thread timing still vary from run to run. {@code
 * parley.bench.DocumentBench converge} is the long randomized run.
 */
class DocumentConvergenceIT {

  private static final int CLIENTS = 5;
  private static final int EDITS_PER_CLIENT = 60;
  private static final Duration WAIT = Duration.ofSeconds(60);
  /** Characters to type: ASCII, a newline, a BMP letter, and astral (surrogate pair) emoji. */
  private static final List<String> CHARACTERS = List.of("a", "b", " ", "\n", "é", "😀", "𝄞");

  private static Config keyspaces;
  private static volatile InJvmNode node;

  @BeforeAll
  static void startNode() throws Exception {
    keyspaces = TestCassandra.keyspacesFor("DocumentConvergenceIT");
    node = InJvmNode.start(keyspaces);
  }

  @AfterAll
  static void stopNode() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  @ParameterizedTest(name = "seed {0}")
  @ValueSource(longs = {7, 1_013, 424_242})
  void editorsConvergeOnTheServersTextAndItsJournalThroughReconnectsAndANodeRestart(long seed) throws Exception {
    String docId = "converge-" + seed;
    Random setup = new Random(seed);
    List<String> users = new ArrayList<>();
    for (int i = 0; i < CLIENTS; i++) {
      users.add("editor" + i);
    }
    try (ParleyClient owner = connect(users.get(0)).get(20, TimeUnit.SECONDS)) {
      DocumentClient.create(owner, docId, randomText(setup, 20), users.subList(1, CLIENTS)).get(20, TimeUnit.SECONDS);
    }

    ConcurrentLinkedQueue<String> resyncs = new ConcurrentLinkedQueue<>();
    List<DocumentClient> clients = new ArrayList<>();
    for (String user : users) {
      DocumentClient.Listener listener =
          new DocumentClient.Listener() {
            @Override
            public void onResync(String code, String message) {
              resyncs.add(user + ": " + code + " " + message);
            }
          };
      clients.add(DocumentClient.open(() -> connect(user), docId, listener).get(20, TimeUnit.SECONDS));
    }

    ExecutorService threads = Executors.newFixedThreadPool(CLIENTS);
    try {
      CountDownLatch halfway = new CountDownLatch(CLIENTS);
      CountDownLatch restarted = new CountDownLatch(1);
      AtomicInteger reconnects = new AtomicInteger();
      List<CompletableFuture<Void>> typists = new ArrayList<>();
      for (int i = 0; i < CLIENTS; i++) {
        DocumentClient client = clients.get(i);
        Random random = new Random(seed * 31 + i);
        typists.add(CompletableFuture.runAsync(() -> type(client, random, halfway, restarted, reconnects), threads));
      }

      // Everyone is halfway: restart the node under them. They type on while it is down and
      // reconnect to the new one, whose document recovers from the journal.
      assertTrue(halfway.await(60, TimeUnit.SECONDS), "every editor got halfway");
      InJvmNode stopping = node;
      stopping.close();
      node = InJvmNode.start(keyspaces);
      restarted.countDown();
      CompletableFuture.allOf(typists.toArray(CompletableFuture[]::new)).get(120, TimeUnit.SECONDS);

      for (DocumentClient client : clients) {
        client.await(s -> s.live() && !s.pending(), WAIT);
      }
      JsonNode server;
      try (ParleyClient reader = connect(users.get(0)).get(20, TimeUnit.SECONDS)) {
        server = reader.request("doc_open", Map.of("doc", docId)).get(20, TimeUnit.SECONDS);
      }
      String serverText = server.path("text").asText();
      long serverRevision = server.path("revision").asLong();
      for (DocumentClient client : clients) {
        DocumentClient.Snapshot last = client.await(s -> s.revision() == serverRevision, WAIT);
        assertEquals(serverText, last.text(), "the text of " + client + " at revision " + serverRevision);
      }
      assertEquals(serverText, replayJournal(docId, serverRevision));
      assertEquals(List.of(), List.copyOf(resyncs), "no client had to give up its edits");
      System.out.printf(
          "DocumentConvergenceIT seed %d: %d revisions, %d characters, %d random reconnects plus the restart%n",
          seed, serverRevision, serverText.length(), reconnects.get());
    } finally {
      threads.shutdownNow();
      clients.forEach(DocumentClient::close);
    }
  }

  /** One editor: random edits at random moments, now and then a dropped connection. */
  private static void type(
      DocumentClient client, Random random, CountDownLatch halfway, CountDownLatch restarted, AtomicInteger reconnects) {
    try {
      for (int edit = 0; edit < EDITS_PER_CLIENT; edit++) {
        if (edit == EDITS_PER_CLIENT / 2) {
          halfway.countDown();
        } else if (edit == EDITS_PER_CLIENT * 3 / 4) {
          // Some edits surely wait for the node that is coming back; the rest follow it.
          restarted.await();
        }
        Thread.sleep(random.nextInt(80));
        client.edit(text -> randomEdit(text, random));
        if (random.nextInt(20) == 0) {
          reconnects.incrementAndGet();
          client.reconnect();
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** Inserts a few characters, or deletes a few, at a random place between code points. */
  private static TextOperation randomEdit(String text, Random random) {
    int[] boundaries = text.codePoints().map(Character::charCount).toArray();
    int at = random.nextInt(boundaries.length + 1);
    int index = 0;
    for (int i = 0; i < at; i++) {
      index += boundaries[i];
    }
    TextOperation.Builder op = TextOperation.builder().retain(index);
    // Deletes win more often once the text is long, so it stays around a hundred characters.
    if (at < boundaries.length && random.nextInt(200) < text.length()) {
      int end = index;
      for (int i = at; i < Math.min(boundaries.length, at + 1 + random.nextInt(3)); i++) {
        end += boundaries[i];
      }
      return op.delete(end - index).retain(text.length() - end).build();
    }
    return op.insert(randomText(random, 4)).retain(text.length() - index).build();
  }

  private static String randomText(Random random, int maxCodePoints) {
    StringBuilder text = new StringBuilder();
    int codePoints = 1 + random.nextInt(maxCodePoints);
    for (int i = 0; i < codePoints; i++) {
      text.append(CHARACTERS.get(random.nextInt(CHARACTERS.size())));
    }
    return text.toString();
  }

  /** The text from the journal: the creation, then every operation in revision order. */
  private static String replayJournal(String docId, long expectedRevision) throws Exception {
    CassandraReadJournal journal =
        PersistenceQuery.get(node.system)
            .getReadJournalFor(CassandraReadJournal.class, CassandraReadJournal.Identifier());
    List<Object> events =
        journal
            .currentEventsByPersistenceId("doc|" + docId, 0, Long.MAX_VALUE)
            .map(EventEnvelope::event)
            .runWith(Sink.seq(), node.system)
            .toCompletableFuture()
            .get(30, TimeUnit.SECONDS);
    String text = ((DocumentEntity.DocumentCreated) events.get(0)).text();
    long revision = 0;
    for (Object event : events.subList(1, events.size())) {
      if (event instanceof DocumentEntity.OperationApplied applied) {
        assertEquals(++revision, applied.revision(), "revisions in the journal are gap-free");
        text = applied.op().apply(text);
      }
    }
    assertEquals(expectedRevision, revision);
    return text;
  }

  private static CompletableFuture<ParleyClient> connect(String user) {
    InJvmNode current = node;
    return CompletableFuture.supplyAsync(() -> ParleyClient.devToken(current.http(), user))
        .thenCompose(token -> ParleyClient.connect(current.ws(), token));
  }
}
