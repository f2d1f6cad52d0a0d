package parley.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import org.junit.jupiter.api.Test;
import parley.chat.room.TimelineEvent;

class FramesTest {

  private static TimelineEvent message(long seq, String body) {
    return new TimelineEvent("general", seq, 1_700_000_000_000L, TimelineEvent.MESSAGE, "alice", null, body, "c" + seq, null, null, null, false, false);
  }

  @Test
  void anEventIsRenderedOnceForEverySocketThatGetsIt() {
    TimelineEvent event = message(7, "hello");

    String first = Frames.eventFrame(event);

    assertEquals(parley.protocol.Codec.push(parley.chat.handler.ChatPushes.event(event)), first, "the same frame as rendering it afresh");
    assertSame(first, Frames.eventFrame(event), "the second socket gets the rendered frame");
    assertSame(first, Frames.eventFrame(message(7, "hello")), "keyed by value: an equal event, however it arrived");
  }

  @Test
  void eventsThatDifferInAnyFieldGetTheirOwnFrame() {
    String original = Frames.eventFrame(message(8, "hello"));
    String edited = Frames.eventFrame(message(8, "hello!"));

    assertNotEquals(original, edited);
    assertEquals(parley.protocol.Codec.push(parley.chat.handler.ChatPushes.event(message(8, "hello!"))), edited);
  }
}
