package parley.chat;

import java.util.regex.Pattern;
import parley.auth.UserIds;

/**
 * Room ids and client ids. A room id is 1–64 characters of {@code [A-Za-z0-9_.-]}; a direct
 * message room is {@code dm:<a>:<b>} with the two user ids sorted, so both sides derive the
 * same room and no ordinary room id can collide with it.
 */
public final class Ids {

  private static final Pattern ROOM = Pattern.compile("[A-Za-z0-9_.-]{1,64}");
  private static final String DM_PREFIX = "dm:";

  private Ids() {}

  public static boolean isRoomId(String room) {
    return room != null && (ROOM.matcher(room).matches() || isDirectRoom(room));
  }

  public static boolean isDirectRoom(String room) {
    if (room == null || !room.startsWith(DM_PREFIX)) {
      return false;
    }
    String[] users = room.substring(DM_PREFIX.length()).split(":", -1);
    return users.length == 2
        && UserIds.isValid(users[0])
        && UserIds.isValid(users[1])
        && users[0].compareTo(users[1]) < 0;
  }

  public static String directRoom(String a, String b) {
    return a.compareTo(b) < 0 ? DM_PREFIX + a + ":" + b : DM_PREFIX + b + ":" + a;
  }

  /** The two users of a direct message room. */
  public static String[] directUsers(String room) {
    return room.substring(DM_PREFIX.length()).split(":", 2);
  }

  /** Client-chosen ids (request ids, clientMsgId): 1–64 printable characters. */
  public static boolean isClientId(String id) {
    return id != null && !id.isEmpty() && id.length() <= 64 && id.chars().allMatch(c -> c > 32 && c < 127);
  }
}
