package parley.app;

import com.typesafe.config.Config;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import parley.auth.AuthSettings;
import parley.cluster.ExitedPeerDowning;

/** Parley's typed settings, read once at start-up from the {@code parley} config section. */
public record Settings(
    String profile, Http http, Cassandra cassandra, ClusterSettings cluster, AuthSettings auth) {

  /**
   * {@code allowedOrigins}: browser origins (scheme://host[:port]) besides the node's own that
   * may open a WebSocket or an SSE stream; {@code *} allows any.
   */
  /**
   * The client API's address, the browser origins it admits, and how long a connection may
   * take to deliver a request head ({@code parley.http.request-header-timeout}).
   */
  /** {@code websocketPort} 0: no Netty WebSocket port (the client port serves /v1/ws either way). */
  public record Http(String iface, int port, int websocketPort, java.util.List<String> allowedOrigins, Duration requestHeaderTimeout) {}

  public record Cassandra(
      List<InetSocketAddress> contactPoints,
      String localDatacenter,
      String username,
      String password,
      String journalKeyspace,
      String snapshotKeyspace,
      String replication,
      boolean applySchemaOnStart,
      Duration connectTimeout,
      Embedded embedded) {

    /** Reads {@code parley.cassandra}; the schema commands need nothing else. */
    public static Cassandra from(Config root) {
      Config cas = root.getConfig("parley.cassandra");
      Config emb = cas.getConfig("embedded");
      return new Cassandra(
          parseContactPoints(cas.getString("contact-points")),
          cas.getString("local-datacenter"),
          cas.getString("username"),
          cas.getString("password"),
          cas.getString("journal-keyspace"),
          cas.getString("snapshot-keyspace"),
          cas.getString("replication"),
          cas.getBoolean("apply-schema-on-start"),
          cas.getDuration("connect-timeout"),
          new Embedded(
              Path.of(emb.getString("data-dir")),
              emb.getInt("native-port"),
              emb.getInt("storage-port"),
              Path.of(emb.getString("classpath-file")),
              emb.getString("heap"),
              emb.getString("java"),
              emb.getDuration("start-timeout")));
    }

    /** No external Cassandra configured: the node starts the embedded one. */
    public boolean embeddedWanted() {
      return contactPoints.isEmpty();
    }
  }

  public record Embedded(
      Path dataDir,
      int nativePort,
      int storagePort,
      Path classpathFile,
      String heap,
      String java,
      Duration startTimeout) {}

  public record ClusterSettings(
      List<String> seedNodes,
      boolean bootstrap,
      int virtualNodes,
      int maxSimultaneousRebalance,
      ExitedPeerDowning.Settings exitedPeerDowning) {}

  public static Settings from(Config root) {
    Config c = root.getConfig("parley");
    Config cl = c.getConfig("cluster");
    return new Settings(
        c.getString("profile"),
        new Http(
            c.getString("http.interface"),
            c.getInt("http.port"),
            c.getInt("http.websocket-port"),
            parseOrigins(c.getString("http.allowed-origins")),
            c.getDuration("http.request-header-timeout")),
        Cassandra.from(root),
        new ClusterSettings(
            splitList(cl.getString("seed-nodes")),
            cl.getBoolean("bootstrap"),
            cl.getInt("virtual-nodes"),
            cl.getInt("max-simultaneous-rebalance"),
            new ExitedPeerDowning.Settings(
                cl.getBoolean("exited-peer-downing.enabled"),
                cl.getDuration("exited-peer-downing.interval"),
                cl.getDuration("exited-peer-downing.connect-timeout"),
                cl.getInt("exited-peer-downing.watched"),
                cl.getInt("exited-peer-downing.refusals"))),
        AuthSettings.from(root));
  }

  public boolean dev() {
    return "dev".equals(profile);
  }

  /**
   * Parses "https://app.example.com,http://localhost:3000" (or "*"); an entry that is no
   * origin (scheme://host[:port], nothing after) is a start-up failure, not a page refused
   * later for no visible reason.
   */
  static List<String> parseOrigins(String value) {
    List<String> origins = splitList(value);
    for (String origin : origins) {
      if (origin.equals("*")) {
        continue;
      }
      String trimmed = origin.endsWith("/") ? origin.substring(0, origin.length() - 1) : origin;
      boolean valid;
      try {
        java.net.URI uri = new java.net.URI(trimmed);
        valid = ("http".equalsIgnoreCase(uri.getScheme()) || "https".equalsIgnoreCase(uri.getScheme()))
            && uri.getHost() != null
            && uri.getRawPath().isEmpty()
            && uri.getRawQuery() == null
            && uri.getRawFragment() == null
            && uri.getRawUserInfo() == null;
      } catch (java.net.URISyntaxException e) {
        valid = false;
      }
      if (!valid) {
        throw new StartupFailure(
            "PARLEY_ALLOWED_ORIGINS has a bad entry '" + origin + "': expected scheme://host[:port], e.g. https://app.example.com, or *");
      }
    }
    return origins;
  }

  /** Parses "host:port,host2" (port 9042 when omitted); a bad entry is a start-up failure. */
  static List<InetSocketAddress> parseContactPoints(String value) {
    return splitList(value).stream()
        .map(
            entry -> {
              int colon = entry.lastIndexOf(':');
              String host = colon < 0 ? entry : entry.substring(0, colon);
              String port = colon < 0 ? "9042" : entry.substring(colon + 1);
              try {
                return InetSocketAddress.createUnresolved(host, Integer.parseInt(port));
              } catch (IllegalArgumentException e) {
                throw new StartupFailure(
                    "PARLEY_CASSANDRA_CONTACT_POINTS has a bad entry '"
                        + entry
                        + "': expected host:port, e.g. cassandra-0.cassandra:9042");
              }
            })
        .toList();
  }

  private static List<String> splitList(String value) {
    return Arrays.stream(value.split(",")).map(String::strip).filter(s -> !s.isEmpty()).toList();
  }
}
