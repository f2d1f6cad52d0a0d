package parley.transport;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import parley.chat.Ids;
import parley.protocol.Codec;

/**
 * A client's position across all of its rooms: for each room the last seq it has and the
 * room's epoch (its creation time). Clients treat it as opaque. It names journal positions,
 * not server memory, so it stays valid across a restart of a node or of the whole cluster;
 * the epoch exposes a cursor from a store that was wiped since, so the client is told to
 * reload instead of being silently short-changed.
 *
 * <p>A user may be in hundreds of rooms, and a cursor travels in a URL (long-poll) or a
 * header (SSE's {@code Last-Event-ID}), so it cannot spell every room out. Version 2 names a
 * <b>checkpoint</b>, every room's position saved in Cassandra under a short random id
 * ({@link CursorCheckpoints}), plus the <b>delta</b>: the rooms whose position moved since,
 * in a compact binary form. Sessions save a new checkpoint once the delta grows past a few
 * rooms, so a cursor stays a few hundred characters whatever the number of rooms:
 * {@code 2.<checkpoint id>.<delta>}, the id empty when there is no checkpoint. Version 1
 * (base64url JSON naming every room), which older servers issued, is still accepted.
 *
 * <p>A cursor may also carry the client's place in its user's job pushes ({@link Jobs}), as a
 * fourth part {@code .<epoch>-<position>}: those positions live in the memory of the user's
 * entity, not in the journal, so the epoch names the incarnation that counted them, and a
 * cursor from an earlier one is told to re-read its jobs (docs/transports.md). Cursors
 * without it (issued before, or before the first poll placed the client) are still read.
 */
public record ResumeCursor(String checkpoint, Map<String, Position> base, Map<String, Position> rooms, Jobs jobs) {

  public record Position(long seq, long epoch) {}

  /**
   * The client has the user's job pushes up to {@code position}, as counted by the incarnation
   * {@code epoch} of the user's entity.
   */
  public record Jobs(String epoch, long position) {
    public Jobs {
      if (!JOBS_EPOCH.matcher(epoch).matches() || position < 0) {
        throw new Invalid(NOT_OURS);
      }
    }
  }

  /** A cursor the client got wrong: {@code code} is the stable error code. */
  public static final class Invalid extends RuntimeException {
    public final String code;

    Invalid(String message) {
      super(message, null, false, false);
      this.code = "bad_cursor";
    }
  }

  private static final String V2 = "2.";
  private static final Pattern CHECKPOINT_ID = Pattern.compile("[A-Za-z0-9_-]{1,32}");
  private static final String NOT_OURS = "the cursor is not one this server issued";
  private static final Pattern JOBS_EPOCH = Pattern.compile("[a-z0-9]{1,16}");
  private static final Pattern JOBS_PART = Pattern.compile("([a-z0-9]{1,16})-([a-z0-9]{1,12})");

  /** A cursor spelling out every room, without a checkpoint. */
  public ResumeCursor(Map<String, Position> rooms) {
    this(null, Map.of(), rooms, null);
  }

  /** A cursor without a place in the job pushes. */
  public ResumeCursor(String checkpoint, Map<String, Position> base, Map<String, Position> rooms) {
    this(checkpoint, base, rooms, null);
  }

  /** Each room's position: the checkpoint's, overridden by the delta. */
  public Map<String, Position> positions() {
    Map<String, Position> all = new TreeMap<>(base);
    all.putAll(rooms);
    return all;
  }

  /** The same cursor with its checkpoint's positions loaded. */
  public ResumeCursor withBase(Map<String, Position> loaded) {
    return new ResumeCursor(checkpoint, loaded, rooms, jobs);
  }

  public String encode() {
    String text = V2 + (checkpoint == null ? "" : checkpoint) + "." + Base64.getUrlEncoder().withoutPadding().encodeToString(pack(rooms));
    return jobs == null ? text : text + "." + jobs.epoch() + "-" + Long.toString(jobs.position(), 36);
  }

  public static ResumeCursor decode(String text) {
    if (text.startsWith(V2)) {
      int dot = text.indexOf('.', V2.length());
      if (dot < 0) {
        throw new Invalid(NOT_OURS);
      }
      String id = text.substring(V2.length(), dot);
      if (!id.isEmpty() && !CHECKPOINT_ID.matcher(id).matches()) {
        throw new Invalid(NOT_OURS);
      }
      int jobsDot = text.indexOf('.', dot + 1);
      Jobs jobs = jobsDot < 0 ? null : jobs(text.substring(jobsDot + 1));
      byte[] delta;
      try {
        delta = Base64.getUrlDecoder().decode(text.substring(dot + 1, jobsDot < 0 ? text.length() : jobsDot));
      } catch (IllegalArgumentException e) {
        throw new Invalid(NOT_OURS);
      }
      return new ResumeCursor(id.isEmpty() ? null : id, Map.of(), unpack(delta), jobs);
    }
    return decodeVersion1(text);
  }

  private static Jobs jobs(String part) {
    Matcher m = JOBS_PART.matcher(part);
    if (!m.matches()) {
      throw new Invalid(NOT_OURS);
    }
    try {
      return new Jobs(m.group(1), Long.parseLong(m.group(2), 36));
    } catch (NumberFormatException e) {
      throw new Invalid(NOT_OURS);
    }
  }

  /**
   * Positions as bytes: for each room, its id's length and UTF-8 bytes, then seq and epoch as
   * unsigned varints. About a third of the size of the JSON of version 1, before base64.
   */
  public static byte[] pack(Map<String, Position> positions) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(positions.size() * 16);
    new TreeMap<>(positions).forEach((room, p) -> {
      byte[] name = room.getBytes(StandardCharsets.UTF_8);
      varint(out, name.length);
      out.writeBytes(name);
      varint(out, p.seq());
      varint(out, p.epoch());
    });
    return out.toByteArray();
  }

  public static Map<String, Position> unpack(byte[] bytes) {
    ByteBuffer in = ByteBuffer.wrap(bytes);
    Map<String, Position> positions = new TreeMap<>();
    try {
      while (in.hasRemaining()) {
        long length = varint(in);
        if (length < 1 || length > in.remaining()) {
          throw new Invalid(NOT_OURS);
        }
        byte[] name = new byte[(int) length];
        in.get(name);
        String room = new String(name, StandardCharsets.UTF_8);
        long seq = varint(in);
        long epoch = varint(in);
        if (!Ids.isRoomId(room) || seq < 0 || epoch < 0) {
          throw new Invalid(NOT_OURS);
        }
        positions.put(room, new Position(seq, epoch));
      }
    } catch (java.nio.BufferUnderflowException e) {
      throw new Invalid(NOT_OURS);
    }
    return positions;
  }

  private static void varint(ByteArrayOutputStream out, long value) {
    long v = value;
    while ((v & ~0x7FL) != 0) {
      out.write((int) ((v & 0x7F) | 0x80));
      v >>>= 7;
    }
    out.write((int) v);
  }

  private static long varint(ByteBuffer in) {
    long value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      byte b = in.get();
      value |= (long) (b & 0x7F) << shift;
      if ((b & 0x80) == 0) {
        return value;
      }
    }
    throw new Invalid(NOT_OURS);
  }

  /** {@code base64url({"v":1,"r":{"room":[seq,epoch],…}})}, as servers before version 2 issued. */
  private static ResumeCursor decodeVersion1(String text) {
    JsonNode node;
    try {
      node = Codec.JSON.readTree(new String(Base64.getUrlDecoder().decode(text), StandardCharsets.UTF_8));
    } catch (Exception e) {
      throw new Invalid(NOT_OURS);
    }
    if (node == null || node.path("v").asInt() != 1 || !node.path("r").isObject()) {
      throw new Invalid(NOT_OURS);
    }
    Map<String, Position> rooms = new TreeMap<>();
    Iterator<Map.Entry<String, JsonNode>> fields = node.get("r").fields();
    while (fields.hasNext()) {
      Map.Entry<String, JsonNode> entry = fields.next();
      JsonNode p = entry.getValue();
      if (!Ids.isRoomId(entry.getKey())
          || !p.isArray()
          || p.size() != 2
          || !p.get(0).canConvertToLong()
          || !p.get(1).canConvertToLong()
          || p.get(0).asLong() < 0) {
        throw new Invalid(NOT_OURS);
      }
      rooms.put(entry.getKey(), new Position(p.get(0).asLong(), p.get(1).asLong()));
    }
    return new ResumeCursor(rooms);
  }
}
