package parley.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import parley.collab.ot.TextOperation;

class ShareDbEditorTest {

  private static final ObjectMapper JSON = new ObjectMapper();

  private final List<String> sent = new ArrayList<>();
  private final EditMeter meter = new EditMeter();
  private ShareDbEditor editor;

  /** A frame from the server, written with ' for ". */
  private void receive(String frame) {
    editor.onFrame(frame.replace('\'', '"'));
  }

  private JsonNode lastSent() throws Exception {
    return JSON.readTree(sent.get(sent.size() - 1));
  }

  private static JsonNode json(String text) throws Exception {
    return JSON.readTree(text.replace('\'', '"'));
  }

  private boolean insert(int at, String s) {
    return editor.edit(text -> TextOperation.builder().retain(at).insert(s).retain(text.length() - at).build());
  }

  @BeforeEach
  void openOnAbcAtVersion5() {
    meter.open();
    editor = new ShareDbEditor("d1", false, meter, sent::add);
    receive("{'a':'init','protocol':1,'protocolMinor':2,'id':'me','type':'http://sharejs.org/types/JSONv0'}");
    receive("{'data':{'v':5,'data':{'text':'abc'}},'a':'s','c':'docs','d':'d1'}");
  }

  @Test
  void subscribesOnConnectAndOpensWithTheSnapshot() throws Exception {
    assertEquals(json("{'a':'s','c':'docs','d':'d1'}"), JSON.readTree(sent.get(0)));
    assertTrue(editor.opened().isDone());
    assertEquals("abc", editor.text());
  }

  @Test
  void createsTheDocumentFirstWhenAskedTo() throws Exception {
    sent.clear();
    editor = new ShareDbEditor("d2", true, meter, sent::add);
    receive("{'a':'init','protocol':1,'protocolMinor':2,'id':'me','type':'http://sharejs.org/types/JSONv0'}");
    assertEquals(
        json("{'a':'op','c':'docs','d':'d2','v':0,'seq':1,'create':{'type':'json0','data':{'text':''}}}"),
        lastSent());
    receive("{'src':'me','seq':1,'v':0,'a':'op','c':'docs','d':'d2'}");
    assertEquals(json("{'a':'s','c':'docs','d':'d2'}"), lastSent());
    receive("{'data':{'v':1,'data':{'text':''}},'a':'s','c':'docs','d':'d2'}");
    assertTrue(insert(0, "x"));
    assertEquals(2, lastSent().path("seq").asLong());
  }

  @Test
  void keepsOneOperationInFlightAndTransformsTheBufferAgainstOthersBeforeItsAck() throws Exception {
    assertTrue(insert(0, "X"));
    assertEquals(
        json("{'a':'op','c':'docs','d':'d1','v':5,'seq':1,'op':[{'p':['text',0],'si':'X'}]}"), lastSent());
    int frames = sent.size();
    assertTrue(insert(4, "Y"));
    assertEquals(frames, sent.size(), "the second edit waits behind the first");

    // Someone deleted "b" before our insert reached the server; then comes our ack.
    receive("{'a':'op','c':'docs','d':'d1','v':5,'src':'other','seq':7,'op':[{'p':['text',1],'sd':'b'}]}");
    assertEquals("XacY", editor.text());
    receive("{'src':'me','seq':1,'v':6,'a':'op','c':'docs','d':'d1'}");

    // The buffer goes next, based on version 7 and on the server's text "Xac".
    assertEquals(
        json("{'a':'op','c':'docs','d':'d1','v':7,'seq':2,'op':[{'p':['text',3],'si':'Y'}]}"), lastSent());
    receive("{'src':'me','seq':2,'v':7,'a':'op','c':'docs','d':'d1'}");
    assertFalse(editor.pending());
    assertEquals("XacY", editor.text());
    assertEquals(2, meter.take().acknowledged());
  }

  @Test
  void appliesOperationsInVersionOrderAndDropsOnesItAlreadyHas() {
    receive("{'a':'op','c':'docs','d':'d1','v':6,'src':'o','seq':2,'op':[{'p':['text',4],'si':'2'}]}");
    assertEquals("abc", editor.text(), "version 6 waits for version 5");
    receive("{'a':'op','c':'docs','d':'d1','v':5,'src':'o','seq':1,'op':[{'p':['text',3],'si':'1'}]}");
    receive("{'a':'op','c':'docs','d':'d1','v':5,'src':'o','seq':1,'op':[{'p':['text',3],'si':'1'}]}");
    assertEquals("abc12", editor.text());
  }

  @Test
  void takesTheServersTextAgainWhenAnOperationIsRefused() throws Exception {
    assertTrue(insert(0, "X"));
    receive("{'a':'op','c':'docs','d':'d1','v':5,'seq':1,'op':[{'p':['text',0],'si':'X'}],"
        + "'error':{'code':'ERR_APPLY_OP_TRANSFORM_FAILED','message':'no'}}");
    assertEquals(json("{'a':'s','c':'docs','d':'d1'}"), lastSent());
    assertFalse(insert(0, "Z"), "no edits while the text is being replaced");
    receive("{'data':{'v':9,'data':{'text':'server'}},'a':'s','c':'docs','d':'d1'}");
    assertEquals("server", editor.text());
    assertFalse(editor.pending());
    assertEquals(1, meter.take().resyncs());
  }
}
