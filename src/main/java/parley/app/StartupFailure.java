package parley.app;

/**
 * A reason the node cannot start that the operator can fix. Its message is the one log line
 * the node prints before it exits with a non-zero status: what is wrong and how to fix it.
 */
public final class StartupFailure extends RuntimeException {

  public StartupFailure(String message) {
    super(message, null, false, false);
  }
}
