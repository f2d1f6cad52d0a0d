package parley.chat.handler;

import java.time.Instant;
import parley.chat.room.RoomPush;
import parley.chat.room.TimelineEvent;
import parley.protocol.Push;

/** Room-side values as the protocol's push records. */
public final class ChatPushes {

  private ChatPushes() {}

  public static Push.Event event(TimelineEvent e) {
    return new Push.Event(
        e.room(),
        e.seq(),
        Instant.ofEpochMilli(e.ts()).toString(),
        e.kind(),
        e.user(),
        e.by(),
        e.clientMsgId(),
        e.body(),
        e.target(),
        e.topic(),
        e.visibility(),
        e.edited() ? Boolean.TRUE : null,
        e.deleted() ? Boolean.TRUE : null);
  }

  public static Push ephemeral(RoomPush.Ephemeral push) {
    return switch (push.kind()) {
      case "presence" -> new Push.Presence(push.user(), push.status(), Instant.ofEpochMilli(push.at()).toString());
      case "receipt" -> new Push.Receipt(push.room(), push.seq(), push.user(), push.status());
      case "read" -> new Push.Read(push.room(), push.user(), push.seq());
      case "typing" -> new Push.Typing(push.room(), push.user());
      default -> throw new IllegalArgumentException("no push for ephemeral kind " + push.kind());
    };
  }
}
