package parley.testing;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.AppenderBase;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.slf4j.LoggerFactory;

/**
 * Every event logged in the test JVM from {@link #attach} until {@link #close}, for tests that
 * must show that something did not go wrong quietly. Pekko's own logging is asynchronous (it
 * goes through the event stream to the SLF4J logger actor), so {@link #errorsUpTo} logs a
 * marker down that same path and waits for it: whatever was logged before it has arrived.
 */
public final class CapturedLog extends AppenderBase<ILoggingEvent> implements AutoCloseable {

  private final List<ILoggingEvent> events = new ArrayList<>();

  private CapturedLog() {}

  /** Starts capturing on the root logger. */
  public static CapturedLog attach() {
    Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    CapturedLog log = new CapturedLog();
    log.setContext((LoggerContext) LoggerFactory.getILoggerFactory());
    log.setName("captured-" + UUID.randomUUID());
    log.start();
    root.addAppender(log);
    return log;
  }

  @Override
  protected synchronized void append(ILoggingEvent event) {
    event.prepareForDeferredProcessing();
    events.add(event);
    notifyAll();
  }

  /**
   * The events at ERROR logged so far, each as its logger, message and exception: logs a marker
   * through {@code system}'s event stream and returns once it has come back out of it.
   */
  public synchronized List<String> errorsUpTo(ActorSystem<?> system, Duration timeout) throws InterruptedException {
    String marker = "captured log marker " + UUID.randomUUID();
    system.classicSystem().log().info(marker);
    long deadline = System.nanoTime() + timeout.toNanos();
    int markerAt;
    while ((markerAt = indexOf(marker)) < 0) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError("the marker never came through Pekko's logging");
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
    List<String> errors = new ArrayList<>();
    for (ILoggingEvent event : events.subList(0, markerAt)) {
      if (event.getLevel().isGreaterOrEqual(Level.ERROR)) {
        errors.add(event.getLoggerName() + ": " + event.getFormattedMessage()
            + (event.getThrowableProxy() == null ? "" : " " + event.getThrowableProxy().getClassName() + ": " + event.getThrowableProxy().getMessage()));
      }
    }
    return errors;
  }

  private int indexOf(String message) {
    for (int i = 0; i < events.size(); i++) {
      if (message.equals(events.get(i).getFormattedMessage())) {
        return i;
      }
    }
    return -1;
  }

  @Override
  public void close() {
    ((Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME)).detachAppender(this);
    stop();
  }
}
