package parley.persistence;

import com.datastax.oss.driver.api.core.AllNodesFailedException;
import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.config.DefaultDriverOption;
import com.datastax.oss.driver.api.core.config.DriverConfigLoader;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.stream.Collectors;
import parley.app.Settings;
import parley.app.StartupFailure;

/**
 * Opens a plain driver session for start-up work (schema checks and `schema apply`), before
 * the actor system and the journal plugin's own session exist.
 */
public final class CassandraConnection {

  private CassandraConnection() {}

  public static CqlSession open(Settings.Cassandra settings, List<InetSocketAddress> contactPoints) {
    DriverConfigLoader config =
        DriverConfigLoader.programmaticBuilder()
            .withDuration(DefaultDriverOption.CONNECTION_CONNECT_TIMEOUT, settings.connectTimeout())
            .withDuration(DefaultDriverOption.CONNECTION_INIT_QUERY_TIMEOUT, settings.connectTimeout())
            .withDuration(DefaultDriverOption.REQUEST_TIMEOUT, settings.connectTimeout())
            .withDuration(
                DefaultDriverOption.CONTROL_CONNECTION_AGREEMENT_TIMEOUT, settings.connectTimeout())
            .build();
    var builder =
        CqlSession.builder()
            .withConfigLoader(config)
            .withLocalDatacenter(settings.localDatacenter());
    contactPoints.forEach(
        cp -> builder.addContactPoint(new InetSocketAddress(cp.getHostString(), cp.getPort())));
    if (!settings.username().isBlank()) {
      builder.withAuthCredentials(settings.username(), settings.password());
    }
    try {
      return builder.build();
    } catch (AllNodesFailedException e) {
      throw new StartupFailure(
          "Cannot reach Cassandra at "
              + describe(contactPoints)
              + " ("
              + firstLine(e.getMessage())
              + "). Check that it is running and that PARLEY_CASSANDRA_CONTACT_POINTS and"
              + " PARLEY_CASSANDRA_DATACENTER are right.");
    } catch (RuntimeException e) {
      throw new StartupFailure(
          "Cannot connect to Cassandra at "
              + describe(contactPoints)
              + ": "
              + firstLine(String.valueOf(e.getMessage())));
    }
  }

  public static String describe(List<InetSocketAddress> contactPoints) {
    return contactPoints.stream()
        .map(cp -> cp.getHostString() + ":" + cp.getPort())
        .collect(Collectors.joining(","));
  }

  private static String firstLine(String message) {
    int newline = message.indexOf('\n');
    return newline < 0 ? message : message.substring(0, newline);
  }
}
