package parley.transport;

import java.util.List;
import java.util.TreeMap;
import java.util.function.ToLongFunction;

/**
 * Ordered, gap-healing delivery of one numbered stream to one connection: a room's timeline
 * (by seq) or a document's revisions. Each position goes out once and in order (design rule
 * 6): an item that arrives ahead of its turn waits, bounded, while the missing range is
 * fetched from the entity; an item the client already has is dropped.
 *
 * <p>The owner does the fetching: it calls {@link #startFetch()} when {@link #needsFetch()},
 * and hands the page back to {@link #fetched}. Delivery goes through a {@link Sink}, which
 * answers false when the client's buffer is full; the position then stays where it was, and
 * the owner fetches again once the client has caught up (design rule 8).
 */
final class OrderedDelivery<E> {

  /** Hands one item to the client; false if it could not take it (nothing changes then). */
  interface Sink<E> {
    boolean deliver(E item);
  }

  private final ToLongFunction<E> position;
  private final int maxWaiting;
  private final TreeMap<Long, E> waiting = new TreeMap<>();
  /** False until the starting position is known (a document's open is still under way). */
  private boolean started;
  private long delivered;
  private long head;
  private boolean fetching;

  private OrderedDelivery(ToLongFunction<E> position, int maxWaiting, boolean started, long delivered) {
    this.position = position;
    this.maxWaiting = maxWaiting;
    this.started = started;
    this.delivered = delivered;
    this.head = delivered;
  }

  /** A stream whose client has everything up to {@code delivered}. */
  static <E> OrderedDelivery<E> after(long delivered, int maxWaiting, ToLongFunction<E> position) {
    return new OrderedDelivery<>(position, maxWaiting, true, Math.max(0, delivered));
  }

  /** A stream whose start is not known yet: items are held until {@link #start}. */
  static <E> OrderedDelivery<E> pending(int maxWaiting, ToLongFunction<E> position) {
    return new OrderedDelivery<>(position, maxWaiting, false, 0);
  }

  long delivered() {
    return delivered;
  }

  long head() {
    return head;
  }

  boolean started() {
    return started;
  }

  boolean fetching() {
    return fetching;
  }

  /** Started, nothing fetched or held: a live item that is next can go straight out. */
  boolean inStep() {
    return started && !fetching && waiting.isEmpty();
  }

  /** The client has everything up to {@code delivered}; what was held after it follows. */
  boolean start(long delivered, Sink<E> sink) {
    this.started = true;
    this.delivered = delivered;
    this.head = Math.max(head, delivered);
    return drain(sink);
  }

  /** Something after {@code position} exists (a room's head, a document's revision). */
  void knowHead(long position) {
    head = Math.max(head, position);
  }

  /** A position went out by another path (a document's own operation as its ok). */
  void delivered(long position) {
    delivered = Math.max(delivered, position);
    head = Math.max(head, position);
  }

  /**
   * An item pushed live: out now if it is next, held otherwise. Returns whether a fetch is
   * needed to fill a gap; false also while the client lags (the sink refused).
   */
  boolean offer(E item, Sink<E> sink) {
    long at = position.applyAsLong(item);
    head = Math.max(head, at);
    if (started && at <= delivered) {
      return false;
    }
    if (inStep() && at == delivered + 1) {
      if (!sink.deliver(item)) {
        return false;
      }
      delivered = at;
      return needsFetch();
    }
    if (waiting.size() < maxWaiting) {
      waiting.put(at, item);
    }
    return drain(sink);
  }

  /** Delivers what waited and is now next; returns whether a fetch is needed. */
  boolean drain(Sink<E> sink) {
    if (!started || fetching) {
      return false;
    }
    while (!waiting.isEmpty() && waiting.firstKey() <= delivered + 1) {
      var next = waiting.pollFirstEntry();
      if (next.getKey() == delivered + 1) {
        if (!sink.deliver(next.getValue())) {
          waiting.put(next.getKey(), next.getValue());
          return false;
        }
        delivered = next.getKey();
      }
    }
    return needsFetch();
  }

  boolean needsFetch() {
    return started && !fetching && delivered < head;
  }

  /** Marks a fetch under way; the page starts after {@link #delivered()}. */
  void startFetch() {
    fetching = true;
  }

  /**
   * A page of items after {@link #delivered()} came back, and {@code last} is the newest
   * position the entity has. Returns whether to fetch the next page.
   */
  boolean fetched(List<E> page, long last, Sink<E> sink) {
    fetching = false;
    head = Math.max(head, last);
    for (E item : page) {
      if (position.applyAsLong(item) == delivered + 1) {
        if (!sink.deliver(item)) {
          return false;
        }
        delivered++;
      }
    }
    return drain(sink) && !page.isEmpty();
  }

  /** The fetch got no answer: the next push, renewal or catching up tries again. */
  void fetchFailed() {
    fetching = false;
  }

  /** The client lagged: what was held is fetched again later. */
  void dropWaiting() {
    waiting.clear();
  }

  /** Starts over after {@code delivered} (a reload, or a client asking to be sent more again). */
  void restart(long delivered) {
    this.delivered = delivered;
    this.head = Math.max(delivered, head);
    waiting.clear();
  }

  /** Starts over from nothing: the stream's history was replaced (a reload from seq 1). */
  void reset() {
    delivered = 0;
    head = 0;
    waiting.clear();
  }
}
