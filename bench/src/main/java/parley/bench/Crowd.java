package parley.bench;

import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.IntFunction;

/**
 * Many connections, opened and closed together with a bounded number in progress, so set-up
 * neither floods the server's accept queue nor takes forever.
 */
final class Crowd {

  private final List<Link> links;

  private Crowd(List<Link> links) {
    this.links = links;
  }

  /**
   * Connects one link per user, at most {@code concurrency} connecting at a time; link {@code
   * i} reports to {@code listeners.apply(i)}.
   */
  static Crowd connect(
      Target target, URI url, List<String> users, IntFunction<Link.Listener> listeners, int concurrency)
      throws InterruptedException {
    List<CompletableFuture<Link>> connecting = new ArrayList<>();
    Semaphore slots = new Semaphore(concurrency);
    for (int i = 0; i < users.size(); i++) {
      slots.acquire();
      connecting.add(
          target
              .connect(url, users.get(i), listeners.apply(i))
              .orTimeout(60, TimeUnit.SECONDS)
              .whenComplete((link, failure) -> slots.release()));
    }
    List<Link> links = new ArrayList<>();
    for (CompletableFuture<Link> link : connecting) {
      links.add(link.join());
    }
    return new Crowd(links);
  }

  List<Link> links() {
    return links;
  }

  Link get(int index) {
    return links.get(index);
  }

  /** Runs {@code step} for each of {@code some}, at most {@code concurrency} at a time, and waits. */
  static void eachOf(List<Link> some, Function<Link, CompletableFuture<Void>> step, int concurrency)
      throws InterruptedException {
    List<CompletableFuture<Void>> running = new ArrayList<>();
    Semaphore slots = new Semaphore(concurrency);
    for (Link link : some) {
      slots.acquire();
      running.add(step.apply(link).orTimeout(60, TimeUnit.SECONDS).whenComplete((ok, failure) -> slots.release()));
    }
    CompletableFuture.allOf(running.toArray(CompletableFuture[]::new)).join();
  }

  void close() throws InterruptedException {
    eachOf(links, Link::close, 500);
  }
}

