package parley.transport;

import static org.apache.pekko.http.javadsl.server.Directives.complete;
import static org.apache.pekko.http.javadsl.server.Directives.onSuccess;

import com.datastax.oss.driver.api.core.ConsistencyLevel;
import com.datastax.oss.driver.api.core.cql.SimpleStatement;
import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.typesafe.config.Config;
import java.nio.ByteBuffer;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.Base64;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.stream.connectors.cassandra.javadsl.CassandraSession;
import org.apache.pekko.stream.connectors.cassandra.javadsl.CassandraSessionRegistry;
import parley.protocol.ErrorCode;

/**
 * Resume-cursor checkpoints ({@link ResumeCursor}): every room's position of one user, saved
 * in Cassandra's {@code resume_cursors} table (persistence-schema/journal.cql) under a short
 * random id, so a cursor names the id instead of spelling out hundreds of rooms. A checkpoint
 * is never changed after it is written, so any cursor that names it resumes exactly; it
 * expires after {@code parley.http.cursor-checkpoints.ttl} (Cassandra's TTL), after which its
 * cursors are refused with {@code cursor_expired}. Recently used checkpoints are cached on the
 * node, so a long-poll loop reads its checkpoint from Cassandra once.
 */
public final class CursorCheckpoints {

  /**
   * {@code parley.http.cursor-checkpoints}: how long a checkpoint is kept, the cursor length
   * past which a session saves a new one, and the longest cursor ever handed out.
   */
  public record Settings(Duration ttl, int checkpointAfterChars, int cursorChars) {
    public Settings {
      if (checkpointAfterChars < 64 || checkpointAfterChars * 2 > cursorChars) {
        throw new IllegalArgumentException(
            "parley.http.cursor-checkpoints: checkpoint-after-chars must be at least 64 and at most half of max-cursor-chars,"
                + " so a cursor has room to grow while its next checkpoint is written");
      }
    }

    public static Settings from(Config root) {
      Config c = root.getConfig("parley.http.cursor-checkpoints");
      return new Settings(c.getDuration("ttl"), c.getInt("checkpoint-after-chars"), c.getInt("max-cursor-chars"));
    }
  }

  /**
   * Rooms' positions kept in the node's cache of recent checkpoints (about 100 bytes each):
   * a long-poll loop then reads its checkpoint from Cassandra once, not at every poll.
   */
  private static final long CACHED_POSITIONS = 200_000;
  private static final SecureRandom RANDOM = new SecureRandom();

  private final Settings settings;
  private final CassandraSession cassandra;
  private final String table;
  // A checkpoint never changes, so a cached one is never stale; it is kept at most the rows'
  // TTL after it was cached.
  private final Cache<String, Map<String, ResumeCursor.Position>> cache;

  private CursorCheckpoints(Settings settings, CassandraSession cassandra, String keyspace) {
    this.settings = settings;
    this.cassandra = cassandra;
    this.table = keyspace + ".resume_cursors";
    this.cache = Caffeine.newBuilder()
        .maximumWeight(CACHED_POSITIONS)
        .weigher((String key, Map<String, ResumeCursor.Position> positions) -> Math.max(1, positions.size()))
        .expireAfterWrite(settings.ttl())
        .build();
  }

  public static CursorCheckpoints create(ActorSystem<?> system) {
    Config config = system.settings().config();
    return new CursorCheckpoints(
        Settings.from(config),
        CassandraSessionRegistry.get(system).sessionFor("pekko.persistence.cassandra"),
        config.getString("parley.cassandra.journal-keyspace"));
  }

  public Settings settings() {
    return settings;
  }

  /** Saves {@code positions} as a new checkpoint of {@code user}; completes with its id once written. */
  public CompletionStage<String> save(String user, Map<String, ResumeCursor.Position> positions) {
    byte[] id = new byte[12];
    RANDOM.nextBytes(id);
    String name = Base64.getUrlEncoder().withoutPadding().encodeToString(id);
    Map<String, ResumeCursor.Position> copy = Map.copyOf(positions);
    SimpleStatement insert =
        SimpleStatement.newInstance(
                "INSERT INTO " + table + " (user_id, cursor_id, positions) VALUES (?, ?, ?) USING TTL ?",
                user, name, ByteBuffer.wrap(ResumeCursor.pack(copy)), (int) settings.ttl().toSeconds())
            .setConsistencyLevel(ConsistencyLevel.QUORUM);
    return cassandra.executeWrite(insert).thenApply(done -> {
      remember(user, name, copy);
      return name;
    });
  }

  /** The checkpoint {@code id} of {@code user}; empty if there is none (it expired, or never was). */
  public CompletionStage<Optional<Map<String, ResumeCursor.Position>>> load(String user, String id) {
    Map<String, ResumeCursor.Position> cached = cache.getIfPresent(user + "/" + id);
    if (cached != null) {
      return CompletableFuture.completedFuture(Optional.of(cached));
    }
    SimpleStatement select =
        SimpleStatement.newInstance("SELECT positions FROM " + table + " WHERE user_id = ? AND cursor_id = ?", user, id)
            .setConsistencyLevel(ConsistencyLevel.QUORUM);
    return cassandra.selectOne(select).thenApply(row -> row.map(r -> {
      ByteBuffer blob = r.getByteBuffer("positions");
      byte[] bytes = new byte[blob.remaining()];
      blob.get(bytes);
      Map<String, ResumeCursor.Position> positions = Map.copyOf(ResumeCursor.unpack(bytes));
      remember(user, id, positions);
      return positions;
    }));
  }

  /**
   * Runs {@code inner} with the client's cursor decoded and its checkpoint loaded ({@code null}
   * without a cursor), or refuses it before anything is streamed: 400 {@code bad_cursor}
   * (malformed), 410 {@code cursor_expired} (its checkpoint is gone), 403
   * {@code not_a_member} (its delta names a room the user is not in), 503
   * {@code unavailable} (Cassandra did not answer).
   */
  public Route startingFrom(Handlers handlers, String user, Optional<String> given, Function<ResumeCursor, Route> inner) {
    ResumeCursor cursor;
    try {
      cursor = given.filter(c -> !c.isBlank()).map(ResumeCursor::decode).orElse(null);
    } catch (ResumeCursor.Invalid e) {
      return HttpAnswers.error(ErrorCode.BAD_CURSOR, e.getMessage());
    }
    if (cursor == null) {
      return inner.apply(null);
    }
    CompletionStage<Optional<ResumeCursor>> loaded =
        cursor.checkpoint() == null
            ? CompletableFuture.completedFuture(Optional.of(cursor))
            : load(user, cursor.checkpoint()).thenApply(base -> base.map(cursor::withBase));
    CompletionStage<Route> route =
        loaded
            .thenCompose(found -> {
              if (found.isEmpty()) {
                return CompletableFuture.completedFuture(HttpAnswers.error(
                    ErrorCode.CURSOR_EXPIRED,
                    "the cursor's checkpoint has expired (kept " + kept(settings.ttl()) + "); connect without a cursor to start after your read markers"));
              }
              if (found.get().rooms().isEmpty()) {
                return CompletableFuture.completedFuture(inner.apply(found.get()));
              }
              return handlers.chat().refuseRoomsNotJoined(user, found.get().rooms().keySet())
                  .thenApply(refused -> refused.isPresent()
                      ? complete(HttpAnswers.response(refused.get()))
                      : inner.apply(found.get()));
            })
            .exceptionally(failure -> HttpAnswers.error(ErrorCode.UNAVAILABLE, "the cursor's checkpoint could not be read; try again"));
    return onSuccess(route, r -> r);
  }

  /** "7 days", "12 hours", "30 minutes": how long checkpoints are kept, for the refusal's message. */
  private static String kept(Duration ttl) {
    if (ttl.toDays() > 0 && ttl.equals(Duration.ofDays(ttl.toDays()))) {
      return ttl.toDays() + (ttl.toDays() == 1 ? " day" : " days");
    }
    if (ttl.toHours() > 0 && ttl.equals(Duration.ofHours(ttl.toHours()))) {
      return ttl.toHours() + (ttl.toHours() == 1 ? " hour" : " hours");
    }
    return Math.max(1, ttl.toMinutes()) + " minutes";
  }

  private void remember(String user, String id, Map<String, ResumeCursor.Position> positions) {
    cache.put(user + "/" + id, positions);
  }
}
