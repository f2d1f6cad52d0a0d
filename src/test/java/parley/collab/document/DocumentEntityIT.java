package parley.collab.document;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import parley.collab.document.DocumentEntity.Acked;
import parley.collab.document.DocumentEntity.Command;
import parley.collab.document.DocumentEntity.Create;
import parley.collab.document.DocumentEntity.CreateReply;
import parley.collab.document.DocumentEntity.Created;
import parley.collab.document.DocumentEntity.GetOps;
import parley.collab.document.DocumentEntity.GetOpsReply;
import parley.collab.document.DocumentEntity.Open;
import parley.collab.document.DocumentEntity.OpenReply;
import parley.collab.document.DocumentEntity.Opened;
import parley.collab.document.DocumentEntity.Ops;
import parley.collab.document.DocumentEntity.Submit;
import parley.collab.document.DocumentEntity.SubmitReply;
import parley.collab.ot.TextOperation;
import parley.testing.TestCassandra;
import parley.testing.TestNodes;

/**
 * The document entity sharded on a real node against the real Cassandra: its text, revision,
 * history and dedup window come back after the node restarts, and a long document opens from
 * its newest snapshot.
 */
class DocumentEntityIT {

  private static final DocumentSettings SETTINGS = DocumentSettings.from(ConfigFactory.load());

  private static Config config;
  private static String snapshotKeyspace;
  private static ActorTestKit node;

  @BeforeAll
  static void startNode() {
    config = TestNodes.config("DocumentEntityIT");
    snapshotKeyspace = config.getString("parley.cassandra.snapshot-keyspace");
    node = newNode();
  }

  @AfterAll
  static void stopNode() {
    if (node != null) {
      node.shutdownTestKit();
    }
  }

  /** A one-node cluster on the same keyspaces, with the document shard region started. */
  private static ActorTestKit newNode() {
    ActorTestKit kit = ActorTestKit.create("DocumentEntityIT", config);
    TestNodes.joinItself(kit);
    DocumentEntity.init(kit.system(), SETTINGS);
    return kit;
  }

  private static void restartNode() {
    node.shutdownTestKit();
    node = newNode();
  }

  @Test
  void recoversTextRevisionHistoryAndDedupAfterNodeRestart() {
    String docId = "recovers";
    create(docId);
    List<Acked> firstWave = submitWave(docId, 0, 0, 10);
    long revision = firstWave.size();
    while (revision < 250) {
      revision += submitWave(docId, revision, (int) revision, 10).size();
    }
    Opened before = open(docId);
    assertEquals(250, before.revision());
    assertEquals(250, before.text().length());
    assertEquals(2L, snapshotRows("doc|" + docId), "snapshots at events 100 and 200");

    restartNode();

    Opened after = open(docId);
    assertEquals(before.text(), after.text());
    assertEquals(250, after.revision());
    Ops recent = assertInstanceOf(Ops.class, getOps(docId, 240));
    assertEquals(10, recent.ops().size());
    TestProbe<SubmitReply> retry = node.createTestProbe();
    ref(docId).tell(new Submit("u0", "w0-0", 0, op(0), retry.ref()));
    Acked original = firstWave.stream().filter(ack -> ack.clientOpId().equals("w0-0")).findFirst().orElseThrow();
    assertEquals(original, retry.receiveMessage(), "the first submission, retried, gets its original ack");
  }

  @Test
  void opensADocumentOfTwoThousandRevisionsFromItsSnapshot() {
    String docId = "long";
    create(docId);
    long started = System.nanoTime();
    long revision = 0;
    while (revision < 2000) {
      revision += submitWave(docId, revision, (int) revision, 50).size();
    }
    long writeMillis = (System.nanoTime() - started) / 1_000_000;
    System.out.printf(
        "DocumentEntityIT: 2000 submissions in waves of 50 took %d ms (%.0f ops/s, group commit)%n",
        writeMillis, 2000 * 1000.0 / writeMillis);

    restartNode();
    create("warm-up");
    open("warm-up");

    long coldStart = System.nanoTime();
    Opened opened = open(docId);
    long coldMillis = (System.nanoTime() - coldStart) / 1_000_000;
    assertEquals(2000, opened.revision());
    assertEquals(2000, opened.text().length());

    List<Long> recoveries = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      recoveries.add(reopenAfterStop(docId));
    }
    Collections.sort(recoveries);
    System.out.printf(
        "DocumentEntityIT: opening a document of 2000 revisions (snapshot every %d events) took %d ms"
            + " after a node restart; recovering it again took %d ms median (min %d, max %d)%n",
        SETTINGS.snapshotEvery(), coldMillis, recoveries.get(2), recoveries.get(0), recoveries.get(4));
  }

  /** Stops the entity, then times an Open that recovers it from snapshot plus journal. */
  private long reopenAfterStop(String docId) {
    ref(docId).tell(new DocumentEntity.Stop());
    TestProbe<OpenReply> probe = node.createTestProbe();
    // The shard forgets the stopped entity when it sees it terminate; give it a moment.
    probe.expectNoMessage(Duration.ofMillis(300));
    long start = System.nanoTime();
    ref(docId).tell(new Open("owner", probe.ref()));
    Opened opened = assertInstanceOf(Opened.class, probe.receiveMessage());
    long millis = (System.nanoTime() - start) / 1_000_000;
    assertEquals(2000, opened.revision());
    return millis;
  }

  /**
   * Sends {@code count} submissions from different users, all made on revision {@code base}
   * (each inserts at the start of a text of {@code length}), and waits for their acks.
   */
  private List<Acked> submitWave(String docId, long base, int length, int count) {
    TestProbe<SubmitReply> probe = node.createTestProbe();
    EntityRef<Command> doc = ref(docId);
    for (int i = 0; i < count; i++) {
      doc.tell(new Submit("u" + i, "w" + base + "-" + i, base, op(length), probe.ref()));
    }
    List<Acked> acks = new ArrayList<>();
    for (SubmitReply reply : probe.receiveSeveralMessages(count)) {
      acks.add(assertInstanceOf(Acked.class, reply));
    }
    return acks;
  }

  private static TextOperation op(int length) {
    return TextOperation.builder().insert("x").retain(length).build();
  }

  private static void create(String docId) {
    TestProbe<CreateReply> probe = node.createTestProbe();
    List<String> editors = new ArrayList<>();
    for (int i = 0; i < 50; i++) {
      editors.add("u" + i);
    }
    ref(docId).tell(new Create("owner", "", editors, null, probe.ref()));
    assertEquals(new Created(docId, 0), probe.receiveMessage());
  }

  private static Opened open(String docId) {
    TestProbe<OpenReply> probe = node.createTestProbe();
    ref(docId).tell(new Open("owner", probe.ref()));
    return assertInstanceOf(Opened.class, probe.receiveMessage());
  }

  private static GetOpsReply getOps(String docId, long from) {
    TestProbe<GetOpsReply> probe = node.createTestProbe();
    ref(docId).tell(new GetOps("owner", from, probe.ref()));
    return probe.receiveMessage();
  }

  private static EntityRef<Command> ref(String docId) {
    return ClusterSharding.get(node.system()).entityRefFor(DocumentEntity.ENTITY_KEY, docId);
  }

  private static long snapshotRows(String persistenceId) {
    return TestCassandra.session()
        .execute("SELECT count(*) FROM " + snapshotKeyspace + ".snapshots WHERE persistence_id = ?", persistenceId)
        .one()
        .getLong(0);
  }
}
