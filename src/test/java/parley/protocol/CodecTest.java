package parley.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class CodecTest {

  private final Codec codec = new Codec(new Codec.Limits(16, 8));

  private ProtocolException refused(String frame) {
    return assertThrows(ProtocolException.class, () -> codec.decode(frame));
  }

  @Test
  void aRequestDecodesToItsRecordWithItsId() {
    Codec.Decoded decoded = codec.decode("{\"type\":\"send\",\"id\":\"7\",\"room\":\"r\",\"clientMsgId\":\"c\",\"body\":\"hi\"}");
    assertEquals("7", decoded.id());
    assertEquals(new Request.Send("r", "c", "hi"), decoded.request());
    assertNull(codec.decode("{\"type\":\"ping\"}").id());
  }

  @Test
  void aReplyOverTheLimitIsAnsweredFrameTooLargeWithItsId() throws Exception {
    String body = "\u0001".repeat(16_000);
    List<Reply.OpEntry> ops = new java.util.ArrayList<>();
    for (int i = 1; i <= 60; i++) {
      ops.add(new Reply.OpEntry(i, parley.collab.ot.TextOperation.builder().insert(body).build(), "a", "c" + i));
    }
    String frame = Codec.reply("9", new Reply.DocOpsPage("d", 0, 60, ops));
    JsonNode refused = Codec.JSON.readTree(frame);
    assertEquals("error", refused.path("type").asText(), frame.substring(0, 100));
    assertEquals("9", refused.path("id").asText());
    assertEquals("frame_too_large", refused.path("code").asText());

    String fits = Codec.reply("10", new Reply.DocOpsPage("d", 0, 60, ops.subList(0, 5)));
    assertEquals("ok", Codec.JSON.readTree(fits).path("type").asText());
    assertTrue(Codec.oversized(fits).isEmpty());
  }

  @Test
  void framesAreStrictJson() {
    assertEquals(ErrorCode.BAD_FRAME, refused("{\"type\":\"ping\"} {\"type\":\"ping\"}").code());
    assertEquals(ErrorCode.BAD_FRAME, refused("{\"type\":\"ping\",\"type\":\"pong\"}").code());
    assertEquals(ErrorCode.BAD_FRAME, refused("[1]").code());
    assertEquals(ErrorCode.BAD_FRAME, refused("not json").code());
    assertEquals(ErrorCode.UNKNOWN_TYPE, refused("{\"type\":\"launch\",\"id\":\"1\"}").code());
    assertEquals(ErrorCode.MISSING_FIELD, refused("{\"id\":\"1\"}").code());
  }

  @Test
  void aRefreshCarriesANonEmptyTokenString() {
    assertEquals(new Request.Refresh("eyJ.a.b"), codec.decode("{\"type\":\"refresh\",\"id\":\"1\",\"token\":\"eyJ.a.b\"}").request());
    assertEquals(ErrorCode.MISSING_FIELD, refused("{\"type\":\"refresh\",\"id\":\"1\"}").code());
    assertEquals(ErrorCode.BAD_FIELD, refused("{\"type\":\"refresh\",\"id\":\"1\",\"token\":\" \"}").code());
    assertEquals(ErrorCode.BAD_FIELD, refused("{\"type\":\"refresh\",\"id\":\"1\",\"token\":7}").code());
  }

  @Test
  void aRefusalCarriesTheRequestIdWhenItCouldBeRead() {
    assertEquals("9", refused("{\"type\":\"join\",\"id\":\"9\"}").id());
    assertEquals(ErrorCode.BAD_FIELD, refused("{\"type\":\"ping\",\"id\":9}").code());
  }

  @Test
  void textWithALoneSurrogateIsBadTextAndAPairIsText() {
    assertEquals(ErrorCode.BAD_TEXT, refused("{\"type\":\"send\",\"room\":\"r\",\"clientMsgId\":\"c\",\"body\":\"\\ud800\"}").code());
    assertEquals(ErrorCode.BAD_TEXT, refused("{\"type\":\"send\",\"room\":\"r\",\"clientMsgId\":\"c\",\"body\":\"a\\udc00\"}").code());
    assertEquals(ErrorCode.BAD_TEXT, refused("{\"type\":\"set_topic\",\"room\":\"r\",\"topic\":\"\\ud800x\"}").code());
    assertEquals(ErrorCode.BAD_TEXT, refused("{\"type\":\"doc_create\",\"doc\":\"d\",\"text\":\"\\udbff\"}").code());
    // An operation's inserts are text too.
    assertEquals(ErrorCode.BAD_TEXT, refused("{\"type\":\"doc_submit\",\"doc\":\"d\",\"clientOpId\":\"c\",\"revision\":0,\"op\":[\"\\ud800\"]}").code());
    assertEquals(ErrorCode.BAD_TEXT, refused("{\"type\":\"doc_submit\",\"doc\":\"d\",\"clientOpId\":\"c\",\"revision\":0,\"op\":[2,\"a\\udc00\"]}").code());
    assertEquals(
        new Request.Send("r", "c", "\ud83d\ude00"),
        codec.decode("{\"type\":\"send\",\"room\":\"r\",\"clientMsgId\":\"c\",\"body\":\"\\ud83d\\ude00\"}").request());
  }

  @Test
  void numbersAreCheckedBeforeTheyAreNarrowed() {
    // 4294967346 is 50 once cast to an int.
    assertEquals(ErrorCode.BAD_FIELD, refused("{\"type\":\"history\",\"room\":\"r\",\"limit\":4294967346}").code());
    assertEquals(ErrorCode.BAD_FIELD, refused("{\"type\":\"history\",\"room\":\"r\",\"limit\":0}").code());
    assertEquals(ErrorCode.BAD_FIELD, refused("{\"type\":\"history\",\"room\":\"r\",\"limit\":1.5}").code());
    assertEquals(new Request.History("r", null, 50), codec.decode("{\"type\":\"history\",\"room\":\"r\"}").request());
    assertEquals(ErrorCode.BAD_FIELD, refused("{\"type\":\"doc_cursor\",\"doc\":\"d\",\"revision\":0,\"position\":4294967296}").code());
    assertEquals(ErrorCode.BAD_FIELD, refused("{\"type\":\"mark_read\",\"room\":\"r\",\"seq\":-1}").code());
  }

  @Test
  void limitsAndEnumerationsAreEnforced() {
    assertEquals(ErrorCode.BODY_TOO_LARGE, refused("{\"type\":\"send\",\"room\":\"r\",\"clientMsgId\":\"c\",\"body\":\"" + "é".repeat(9) + "\"}").code());
    assertEquals(ErrorCode.BAD_FIELD, refused("{\"type\":\"send\",\"room\":\"r\",\"clientMsgId\":\"c\",\"body\":\"  \"}").code());
    assertEquals(ErrorCode.BAD_FIELD, refused("{\"type\":\"create_room\",\"room\":\"r\",\"topic\":\"123456789\"}").code());
    assertEquals(ErrorCode.BAD_FIELD, refused("{\"type\":\"create_room\",\"room\":\"r\",\"visibility\":\"secret\"}").code());
    assertEquals(new Request.CreateRoom("r", "public", null), codec.decode("{\"type\":\"create_room\",\"room\":\"r\"}").request());
    assertEquals(ErrorCode.BAD_ROOM_ID, refused("{\"type\":\"join\",\"room\":\"no spaces\"}").code());
    assertEquals(ErrorCode.BAD_USER_ID, refused("{\"type\":\"invite\",\"room\":\"r\",\"user\":\"a b\"}").code());
    assertEquals(ErrorCode.BAD_DOC_ID, refused("{\"type\":\"doc_open\",\"doc\":\"dm:a:b\"}").code());
    assertEquals(ErrorCode.BAD_ROOM_ID, refused("{\"type\":\"resume\",\"rooms\":{\"bad room\":1}}").code());
    assertEquals(new Request.Resume(Map.of("r", 3L)), codec.decode("{\"type\":\"resume\",\"rooms\":{\"r\":3}}").request());
  }

  @Test
  void repliesAndPushesAreFramesWithTheirType() {
    assertEquals("{\"type\":\"ok\",\"id\":\"1\",\"room\":\"r\",\"seq\":2}", Codec.reply("1", new Reply.Written("r", 2, null, null, null)));
    assertEquals("{\"type\":\"ok\",\"room\":\"r\",\"seq\":2}", Codec.reply(null, new Reply.Written("r", 2, null, null, null)));
    assertEquals("{\"type\":\"pong\",\"id\":\"p\"}", Codec.reply("p", new Reply.Pong()));
    assertEquals(
        "{\"type\":\"error\",\"id\":\"3\",\"code\":\"room_not_found\",\"message\":\"no\"}",
        Codec.reply("3", Reply.Failure.of(ErrorCode.ROOM_NOT_FOUND, "no")));
    assertEquals("{\"room\":\"r\",\"seq\":2}", Codec.restBody(new Reply.Written("r", 2, null, null, null)));
    String close = Codec.push(new Push.Close(1012, "bye"));
    assertEquals("{\"type\":\"close\",\"code\":1012,\"reason\":\"bye\"}", close);
    assertInstanceOf(Push.Close.class, Codec.readPush(close));
  }

  @Test
  void jobRequestsCarryTheirShapeAndLeaveTheQueuesRulesToTheJobHandler() {
    Request.JobSubmit submit = (Request.JobSubmit) codec.decode(
        "{\"type\":\"job_submit\",\"id\":\"1\",\"queue\":\"exports\",\"idempotencyKey\":\"k\",\"job\":{\"data\":{\"room\":\"r\"},\"priority\":3}}").request();
    assertEquals("exports", submit.queue());
    assertEquals("k", submit.idempotencyKey());
    assertEquals(3, submit.job().get("priority").asInt());
    assertEquals(0, ((Request.JobSubmit) codec.decode("{\"type\":\"job_submit\",\"queue\":\"q\"}").request()).job().size());
    assertEquals(ErrorCode.BAD_FIELD, refused("{\"type\":\"job_submit\",\"queue\":\"q\",\"job\":[1]}").code());
    assertEquals(ErrorCode.MISSING_FIELD, refused("{\"type\":\"job_submit\",\"job\":{}}").code());

    assertEquals(new Request.JobFetch("q", 10L, 25000L, null, null),
        codec.decode("{\"type\":\"job_fetch\",\"queue\":\"q\",\"max\":10,\"waitMs\":25000}").request());
    assertEquals(ErrorCode.BAD_FIELD, refused("{\"type\":\"job_fetch\",\"queue\":\"q\",\"max\":\"ten\"}").code());
    assertEquals(ErrorCode.BAD_FIELD, refused("{\"type\":\"job_fetch\",\"queue\":\"q\",\"waitMs\":1.5}").code());
    assertEquals(new Request.JobCancel("q:0:ab", 4L), codec.decode("{\"type\":\"job_cancel\",\"job\":\"q:0:ab\",\"ifVersion\":4}").request());
    assertEquals(new Request.JobStatus("q:0:ab", 2L, 1000L), codec.decode("{\"type\":\"job_status\",\"job\":\"q:0:ab\",\"after\":2,\"waitMs\":1000}").request());

    assertEquals(ErrorCode.MISSING_FIELD, refused("{\"type\":\"job_complete\",\"job\":\"q:0:ab\"}").code());
    assertEquals(ErrorCode.MISSING_FIELD, refused("{\"type\":\"job_progress\",\"leaseId\":\"l\"}").code());
    assertEquals(ErrorCode.MISSING_FIELD, refused("{\"type\":\"job_fail\",\"job\":\"q:0:ab\",\"leaseId\":\"l\"}").code());
    assertEquals(ErrorCode.BAD_FIELD, refused("{\"type\":\"job_extend\",\"job\":\"q:0:ab\",\"leaseId\":7}").code());
    Request.JobComplete complete = (Request.JobComplete) codec.decode(
        "{\"type\":\"job_complete\",\"job\":\"q:0:ab\",\"leaseId\":\"l\",\"result\":{\"rows\":2}}").request();
    assertEquals(2, complete.result().get("rows").asInt());
    assertNull(((Request.JobComplete) codec.decode("{\"type\":\"job_complete\",\"job\":\"q:0:ab\",\"leaseId\":\"l\",\"result\":null}").request()).result());
  }

  @Test
  void aJobRefusalNamesTheJobItIsAbout() {
    assertEquals(
        "{\"type\":\"error\",\"id\":\"4\",\"code\":\"job_key_taken\",\"message\":\"taken\",\"jobId\":\"q:1:ab\"}",
        Codec.reply("4", new Reply.Failure(ErrorCode.JOB_KEY_TAKEN, "taken", "q:1:ab")));
    assertEquals("{\"type\":\"error\",\"code\":\"job_key_taken\",\"message\":\"taken\",\"jobId\":\"q:1:ab\"}",
        Codec.restBody(new Reply.Failure(ErrorCode.JOB_KEY_TAKEN, "taken", "q:1:ab")));
  }

  @Test
  void everyErrorCodeHasAWireNameAndAStatus() {
    for (ErrorCode code : ErrorCode.values()) {
      assertEquals(code, ErrorCode.fromWire(code.wire()).orElseThrow());
    }
    assertEquals(ErrorCode.DOC_NOT_FOUND, ErrorCode.ofEntity("not_found"));
    assertEquals(409, ErrorCode.DOC_EXISTS.httpStatus());
    assertEquals(404, ErrorCode.DOC_NOT_FOUND.httpStatus());
  }
  /** What a frame was before it was written in one pass: a tree of the head, the record's fields copied in. */
  private static String viaTree(Map<String, String> head, Object record) throws Exception {
    com.fasterxml.jackson.databind.node.ObjectNode node = Codec.JSON.createObjectNode();
    head.forEach(node::put);
    node.setAll((com.fasterxml.jackson.databind.node.ObjectNode) Codec.JSON.valueToTree(record));
    return Codec.JSON.writeValueAsString(node);
  }

  @Test
  void pushesAreWrittenAsATreeOfTheirTypeAndFieldsWouldBe() throws Exception {
    List<Push> pushes = List.of(
        new Push.Ping(),
        new Push.Welcome("ålice", "4f1c", "pekko://Parley@127.0.0.1:25520", 1, 30_000L, null, null),
        new Push.Event("r", 7, "2026-12-07T15:00:00Z", "message", "bob", null, "c\"1", "héllo \u0000 😀\n", null, null, null, null, true),
        new Push.Lagged(Map.of("a", 1L, "b", 2L)),
        new Push.DocOp("d", 3, parley.collab.ot.TextOperation.builder().retain(2).insert("x").build(), "bob", null),
        new Push.JobChanged(Codec.JSON.readTree("{\"id\":\"j\",\"state\":\"done\",\"type\":\"export\"}")));
    for (Push push : pushes) {
      assertEquals(viaTree(Map.of("type", Codec.typeOf(push)), push), Codec.push(push));
    }
  }

  @Test
  void acknowledgementsAreWrittenAsATreeOfTypeIdAndFieldsWouldBe() throws Exception {
    Reply written = new Reply.Written("r", 9, "2026-12-07T15:00:00Z", "c1", null);
    java.util.LinkedHashMap<String, String> head = new java.util.LinkedHashMap<>();
    head.put("type", "ok");
    head.put("id", "7 \"quoted\" \\ ünï \u0001");
    assertEquals(viaTree(head, written), Codec.reply(head.get("id"), written));
    assertEquals(viaTree(Map.of("type", "ok"), written), Codec.reply(null, written));
    assertEquals("{\"type\":\"ok\",\"id\":\"x\"}", Codec.reply("x", new Reply.Accepted()));
    assertEquals("{\"type\":\"pong\",\"id\":\"p\"}", Codec.reply("p", new Reply.Pong()));
  }
}
