package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.ConfigFactory;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import parley.client.ParleyClient;
import parley.testing.InJvmNode;
import parley.testing.PausableSocket;
import parley.testing.TestCassandra;

/**
 * An editor whose connection stops reading while the document keeps changing lags in place
 * (design rule 8): the node keeps a bounded buffer for it, and once it reads again it gets
 * every revision once, in order, from the document's retained operations.
 */
class DocumentLagIT {

  /** Revisions written while the reader does not read; fewer than the node retains. */
  private static final int REVISIONS = 1_000;
  /** Each revision replaces the text with this many new characters: about 8 KB per frame. */
  private static final int CHARACTERS = 8_000;

  @Test
  void aReaderThatStoppedGetsEveryRevisionOnceInOrderAfterLagging() throws Exception {
    var limits =
        ConfigFactory.parseString(
            """
            parley.chat { rate-per-second = 100000, rate-burst = 100000, user-rate-per-second = 100000, user-rate-burst = 100000, outbound-buffer = 64 }
            parley.documents.retained-ops = 2000
            parley.documents.retained-ops-size = 64 MiB
            """);
    try (InJvmNode node = InJvmNode.start(TestCassandra.keyspacesFor("DocumentLagIT"), 0, 0, limits);
        ParleyClient writer = ParleyClient.connect(node.ws(), ParleyClient.devToken(node.http(), "kai")).get(20, TimeUnit.SECONDS)) {
      writer.request("doc_create", Map.of("doc", "firehose", "editors", List.of("lena"))).get(20, TimeUnit.SECONDS);
      try (PausingReader reader = PausingReader.connect(node.ws(), ParleyClient.devToken(node.http(), "lena"))) {
        reader.send("{\"type\":\"doc_open\",\"id\":\"o\",\"doc\":\"firehose\"}");
        reader.awaitOpened(Duration.ofSeconds(20));
        reader.pause();

        for (int revision = 0; revision < REVISIONS; revision++) {
          String text = String.valueOf((char) ('a' + revision % 26)).repeat(CHARACTERS);
          List<?> op = revision == 0 ? List.of(text) : List.of(-CHARACTERS, text);
          writer.request("doc_submit", Map.of("doc", "firehose", "clientOpId", "k-" + revision, "revision", revision, "op", op))
              .get(20, TimeUnit.SECONDS);
        }

        reader.resume();
        reader.awaitRevision(REVISIONS, Duration.ofMinutes(2));
        assertTrue(reader.sawLagged, "the reader lagged, so the node stopped buffering for it");
        assertEquals("", reader.problem, "every revision once, in order");
        assertEquals(REVISIONS, reader.lastRevision);
      }

      // A doc_ops from the start asks for some 16 MB of operations: it gets one small page at
      // a time, and walking the pages gives every revision once, in order.
      long from = 0;
      int pages = 0;
      long largest = 0;
      while (from < REVISIONS) {
        JsonNode page = writer.request("doc_ops", Map.of("doc", "firehose", "revision", from)).get(20, TimeUnit.SECONDS);
        largest = Math.max(largest, page.toString().length());
        assertEquals(REVISIONS, page.path("revision").asLong());
        JsonNode ops = page.path("ops");
        assertTrue(ops.size() >= 1 && ops.size() <= 200, page.path("ops").size() + " operations");
        for (JsonNode op : ops) {
          assertEquals(++from, op.path("revision").asLong(), "every revision once, in order");
        }
        pages++;
      }
      System.out.println("DocumentLagIT: doc_ops from revision 0 came in " + pages + " pages, the largest " + largest + " characters");
      assertTrue(largest < 128 * 1024, "a page of " + largest + " characters");
    }
  }

  /** What a {@link PausableSocket} editor saw: revisions in order, and whether it lagged. */
  private static final class PausingReader implements AutoCloseable {
    private PausableSocket socket;
    private boolean opened;
    long lastRevision;
    boolean sawLagged;
    String problem = "";

    static PausingReader connect(URI ws, String token) throws Exception {
      PausingReader reader = new PausingReader();
      reader.socket = PausableSocket.connect(ws, token, reader::onFrame);
      return reader;
    }

    void send(String frame) {
      socket.send(frame);
    }

    void pause() {
      socket.pause();
    }

    void resume() {
      socket.resume();
    }

    synchronized void awaitOpened(Duration timeout) throws InterruptedException {
      long deadline = System.nanoTime() + timeout.toNanos();
      while (!opened) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          throw new AssertionError("the document did not open");
        }
        TimeUnit.NANOSECONDS.timedWait(this, left);
      }
    }

    synchronized void awaitRevision(long revision, Duration timeout) throws InterruptedException {
      long deadline = System.nanoTime() + timeout.toNanos();
      while (lastRevision < revision) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          throw new AssertionError("reached revision " + lastRevision + ", not " + revision + "; " + problem);
        }
        TimeUnit.NANOSECONDS.timedWait(this, left);
      }
    }

    private synchronized void onFrame(JsonNode frame) {
      switch (frame.path("type").asText()) {
        case "ok" -> opened = opened || "o".equals(frame.path("id").asText());
        case "lagged" -> sawLagged = true;
        case "doc_op" -> {
          long revision = frame.path("revision").asLong();
          if (revision != lastRevision + 1) {
            problem += "revision " + revision + " after " + lastRevision + "; ";
          }
          lastRevision = Math.max(lastRevision, revision);
        }
        default -> {}
      }
      notifyAll();
    }

    @Override
    public void close() {
      socket.close();
    }
  }
}
