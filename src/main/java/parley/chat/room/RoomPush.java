package parley.chat.room;

import java.util.List;
import parley.serialization.CborSerializable;

/**
 * What a room sends to the fan-out hub of every node that follows it: one message per node,
 * never one per socket (design rule 7).
 */
public sealed interface RoomPush extends CborSerializable {

  String room();

  /** Timeline events, in seq order, sent only after they are in the journal. */
  record Published(String room, List<TimelineEvent> events) implements RoomPush {}

  /**
   * The room's newest seq, as a hub learns it when its lease is renewed: a session that has
   * delivered less fetches the rest (a push lost while the room moved costs latency only).
   */
  record Head(String room, long lastSeq) implements RoomPush {}

  /**
   * Something shown but never journaled: {@code typing}, {@code read} (a read marker moved),
   * {@code receipt} (delivered/read in a direct message room), {@code presence}.
   */
  record Ephemeral(String room, String kind, String user, long seq, String status, long at)
      implements RoomPush {}
}
