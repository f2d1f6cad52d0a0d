package parley.bench;

import java.util.function.Function;
import parley.collab.ot.TextOperation;

/**
 * One editor of one document in the docs scenario, against Parley ({@link ParleyEditor}) or
 * ShareDB ({@link ShareDbEditor}). Both are OT clients of the same discipline: one operation in
 * flight, later edits composed into a buffer behind it, others' operations transformed against
 * both. They report to an {@link EditMeter}.
 */
interface DocEditor {

  /**
   * Makes the edit {@code change} computes from the local text, and sends it or buffers it;
   * false if the editor cannot edit now (it is taking the server's text again, or is gone).
   */
  boolean edit(Function<String, TextOperation> change);

  /** The local text, unacknowledged edits included. */
  String text();

  /** Whether some local edit awaits the server's acknowledgement. */
  boolean pending();

  void close();
}
