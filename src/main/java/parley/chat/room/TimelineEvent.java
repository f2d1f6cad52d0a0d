package parley.chat.room;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import parley.serialization.CborSerializable;

/**
 * One entry of a room's timeline as readers see it: the journaled event at position
 * {@code seq}, flattened. Fields a kind does not use are null. {@code edited}/{@code deleted}
 * mark a message whose content a later event changed (history and catch-up show the latest
 * content; a deleted message keeps its seq and loses its body).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record TimelineEvent(
    String room,
    long seq,
    long ts,
    String kind,
    String user,
    String by,
    String body,
    String clientMsgId,
    Long target,
    String topic,
    String visibility,
    boolean edited,
    boolean deleted) {

  public static final String CREATED = "created";
  public static final String JOINED = "joined";
  public static final String LEFT = "left";
  public static final String INVITED = "invited";
  public static final String REMOVED = "removed";
  public static final String TOPIC = "topic";
  public static final String MESSAGE = "message";
  public static final String EDITED = "edited";
  public static final String DELETED = "deleted";

  @JsonIgnore
  public boolean isMessage() {
    return MESSAGE.equals(kind);
  }

  TimelineEvent withContent(String newBody, boolean isEdited, boolean isDeleted) {
    return new TimelineEvent(
        room, seq, ts, kind, user, by, newBody, clientMsgId, target, topic, visibility, isEdited,
        isDeleted);
  }
}
