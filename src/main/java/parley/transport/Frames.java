package parley.transport;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import parley.chat.handler.ChatPushes;
import parley.chat.room.TimelineEvent;
import parley.protocol.Codec;

/** Frames as text, for the transports: event frames rendered once per node, and reading a frame's type. */
public final class Frames {

  /**
   * Rendered event frames. A room's event goes to every member connected to the node, and its
   * frame is the same for all of them (it names no recipient), so it is rendered once, not once
   * per socket: at 100 members that was a sixth of the node's CPU in the fan-out profile. Keyed
   * by value, since rendering is a pure function of the event; bounded, since only the newest
   * events are in flight to most sockets at once.
   */
  private static final Cache<TimelineEvent, String> EVENT_FRAMES =
      Caffeine.newBuilder().maximumSize(4096).build();

  private Frames() {}

  /** The {@code event} frame of {@code e}, rendered once for all the node's sockets. */
  public static String eventFrame(TimelineEvent e) {
    return EVENT_FRAMES.get(e, event -> Codec.push(ChatPushes.event(event)));
  }

  /** The {@code type} of a frame built by {@link Codec} (every frame starts with it). */
  public static String typeOf(String frame) {
    String prefix = "{\"type\":\"";
    if (!frame.startsWith(prefix)) {
      return "message";
    }
    int end = frame.indexOf('"', prefix.length());
    return end < 0 ? "message" : frame.substring(prefix.length(), end);
  }

  /** Parses a frame this server wrote. */
  public static JsonNode read(String frame) {
    try {
      return Codec.JSON.readTree(frame);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }
}
