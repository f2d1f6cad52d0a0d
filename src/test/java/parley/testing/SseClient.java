package parley.testing;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.stream.Stream;
import parley.transport.Frames;

/** A minimal EventSource for tests: reads /v1/events and keeps every event it got. */
public final class SseClient implements AutoCloseable {

  /** One server-sent event: {@code event:}, {@code id:} and the JSON of {@code data:}. */
  public record Event(String type, String id, JsonNode data) {}

  private final List<Event> events = new ArrayList<>();
  private final CompletableFuture<Void> ended = new CompletableFuture<>();
  private final CompletableFuture<HttpResponse<Stream<String>>> response;
  private volatile Stream<String> lines;
  public final int status;

  private SseClient(URI uri, String token, String lastEventId) throws Exception {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(uri).header("Accept", "text/event-stream").header("Authorization", "Bearer " + token);
    if (lastEventId != null) {
      request.header("Last-Event-ID", lastEventId);
    }
    response = HttpClient.newHttpClient().sendAsync(request.build(), HttpResponse.BodyHandlers.ofLines());
    HttpResponse<Stream<String>> r = response.get(20, TimeUnit.SECONDS);
    status = r.statusCode();
    lines = r.body();
    Thread reader = new Thread(this::read, "sse-reader");
    reader.setDaemon(true);
    reader.start();
  }

  public static SseClient connect(URI http, String token, String lastEventId) throws Exception {
    return new SseClient(http.resolve("/v1/events"), token, lastEventId);
  }

  private void read() {
    String type = "message";
    String id = null;
    StringBuilder data = new StringBuilder();
    try {
      for (String line : (Iterable<String>) lines::iterator) {
        if (line.isEmpty()) {
          if (data.length() > 0) {
            Event event = new Event(type, id, Frames.read(data.toString()));
            synchronized (this) {
              events.add(event);
              notifyAll();
            }
          }
          type = "message";
          id = null;
          data.setLength(0);
        } else if (line.startsWith("event:")) {
          type = line.substring(6).strip();
        } else if (line.startsWith("id:")) {
          id = line.substring(3).strip();
        } else if (line.startsWith("data:")) {
          data.append(line.substring(5).strip());
        }
      }
    } catch (RuntimeException closed) {
      // The stream ended (closed by us or by the server).
    }
    synchronized (this) {
      notifyAll();
    }
    ended.complete(null);
  }

  /** Completes when the stream has ended, whoever ended it. */
  public CompletableFuture<Void> ended() {
    return ended;
  }

  public synchronized Event await(Predicate<Event> match, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      for (Event e : events) {
        if (match.test(e)) {
          return e;
        }
      }
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError("no matching server-sent event within " + timeout + "; got " + events);
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
  }

  public synchronized List<Event> events() {
    return List.copyOf(events);
  }

  @Override
  public void close() {
    Stream<String> s = lines;
    if (s != null) {
      s.close();
    }
    response.cancel(true);
  }
}
