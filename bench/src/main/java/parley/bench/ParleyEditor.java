package parley.bench;

import java.net.URI;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import parley.client.DocumentClient;
import parley.client.ParleyClient;
import parley.collab.ot.TextOperation;

/**
 * An editor of a Parley document: the reference {@link DocumentClient} (protocol v1, tokens from
 * a dev-profile node's {@code POST /v1/dev/token}), which reconnects by itself when its
 * connection is lost; each loss is counted.
 */
final class ParleyEditor implements DocEditor {

  private final DocumentClient client;

  private ParleyEditor(DocumentClient client) {
    this.client = client;
  }

  /** Creates {@code doc}, empty, owned by {@code owner} and editable by {@code editors}. */
  static void create(URI http, String owner, String doc, List<String> editors) throws Exception {
    try (ParleyClient connection = connector(http, owner, null).connect().get()) {
      DocumentClient.create(connection, doc, "", editors).get();
    }
  }

  /** Opens {@code doc} as {@code user}; completes once its text has arrived. */
  static CompletableFuture<DocEditor> open(URI http, String user, String doc, EditMeter meter) {
    DocumentClient.Listener listener =
        new DocumentClient.Listener() {
          @Override
          public void onSubmitted(String clientOpId, long baseRevision) {
            meter.submitted(clientOpId);
          }

          @Override
          public void onAcknowledged(String clientOpId, long revision) {
            meter.acknowledged(clientOpId);
          }

          @Override
          public void onRemoteOperation(long revision, String author, String clientOpId, TextOperation applied) {
            meter.arrived(clientOpId);
          }

          @Override
          public void onResync(String code, String message) {
            meter.resynced();
          }
        };
    return DocumentClient.open(connector(http, user, meter), doc, listener).thenApply(ParleyEditor::new);
  }

  /**
   * Connections for {@code user}; with a meter, each that ends other than normally (the
   * scenario's own close is normal) counts as lost.
   */
  private static DocumentClient.Connector connector(URI http, String user, EditMeter meter) {
    URI ws = URI.create(http.toString().replaceFirst("^http", "ws")).resolve("/v1/ws");
    // Pushes go to the document client's callback; none need queueing for a reader.
    ParleyClient.Options quiet = ParleyClient.Options.defaults().withPushBuffer(0);
    return () ->
        CompletableFuture.supplyAsync(() -> ParleyClient.devToken(http, user))
            .thenCompose(token -> ParleyClient.connect(ws, token, quiet))
            .thenApply(connection -> {
              if (meter != null) {
                connection.closed().thenAccept(status -> {
                  if (!status.normal()) {
                    meter.lost();
                  }
                });
              }
              return connection;
            });
  }

  @Override
  public boolean edit(Function<String, TextOperation> change) {
    try {
      client.edit(change);
      return true;
    } catch (IllegalStateException resyncing) {
      return false;
    }
  }

  @Override
  public String text() {
    return client.text();
  }

  @Override
  public boolean pending() {
    return client.snapshot().pending();
  }

  @Override
  public void close() {
    client.close();
  }
}
