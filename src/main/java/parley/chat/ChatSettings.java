package parley.chat;

import com.typesafe.config.Config;
import java.time.Duration;

/** Chat settings, read once at start-up from {@code parley.chat} (conf/chat.conf). */
public record ChatSettings(
    int maxFrameBytes,
    int maxBodyBytes,
    int recentWindow,
    int maxBatch,
    int maxBatchBytes,
    Duration hubLease,
    Duration hubRenewInterval,
    int pageSize,
    int ratePerSecond,
    int rateBurst,
    int floodDisconnectAfter,
    Duration typingInterval,
    int outboundBuffer,
    Duration askTimeout,
    Duration heartbeatInterval,
    Duration heartbeatTimeout,
    int maxTopicBytes,
    int presenceListLimit,
    int userRatePerSecond,
    int userRateBurst,
    int maxConnectionsPerUser,
    int roomsPerMinute,
    Duration offlineGrace,
    Duration sessionRenewInterval,
    int maxStartingSessions) {

  public ChatSettings {
    requirePositive("max-frame-bytes", maxFrameBytes);
    requirePositive("max-body-bytes", maxBodyBytes);
    requirePositive("recent-window", recentWindow);
    requirePositive("max-batch", maxBatch);
    requirePositive("max-batch-bytes", maxBatchBytes);
    requirePositive("page-size", pageSize);
    requirePositive("rate-per-second", ratePerSecond);
    requirePositive("rate-burst", rateBurst);
    requirePositive("outbound-buffer", outboundBuffer);
    requirePositive("hub-lease", hubLease);
    requirePositive("hub-renew-interval", hubRenewInterval);
    requirePositive("session-renew-interval", sessionRenewInterval);
    requirePositive("typing-interval", typingInterval);
    requirePositive("ask-timeout", askTimeout);
    requirePositive("heartbeat-interval", heartbeatInterval);
    requirePositive("max-topic-bytes", maxTopicBytes);
    requirePositive("user-rate-per-second", userRatePerSecond);
    requirePositive("user-rate-burst", userRateBurst);
    requirePositive("max-connections-per-user", maxConnectionsPerUser);
    requirePositive("rooms-per-minute", roomsPerMinute);
    requirePositive("max-starting-sessions", maxStartingSessions);
    if (presenceListLimit < 0) {
      throw new IllegalArgumentException("parley.chat.presence-list-limit must not be negative, was " + presenceListLimit);
    }
    if (offlineGrace.isNegative()) {
      throw new IllegalArgumentException("parley.chat.offline-grace must not be negative, was " + offlineGrace);
    }
    if (heartbeatTimeout.isNegative()) {
      throw new IllegalArgumentException("parley.chat.heartbeat-timeout must not be negative, was " + heartbeatTimeout);
    }
  }

  private static void requirePositive(String key, int value) {
    if (value < 1) {
      throw new IllegalArgumentException("parley.chat." + key + " must be positive, was " + value);
    }
  }

  private static void requirePositive(String key, Duration value) {
    if (value.isNegative() || value.isZero()) {
      throw new IllegalArgumentException("parley.chat." + key + " must be positive, was " + value);
    }
  }

  public static ChatSettings from(Config root) {
    Config c = root.getConfig("parley.chat");
    return new ChatSettings(
        c.getInt("max-frame-bytes"),
        c.getInt("max-body-bytes"),
        c.getInt("recent-window"),
        c.getInt("max-batch"),
        c.getInt("max-batch-bytes"),
        c.getDuration("hub-lease"),
        c.getDuration("hub-renew-interval"),
        c.getInt("page-size"),
        c.getInt("rate-per-second"),
        c.getInt("rate-burst"),
        c.getInt("flood-disconnect-after"),
        c.getDuration("typing-interval"),
        c.getInt("outbound-buffer"),
        c.getDuration("ask-timeout"),
        c.getDuration("heartbeat-interval"),
        c.getDuration("heartbeat-timeout"),
        c.getInt("max-topic-bytes"),
        c.getInt("presence-list-limit"),
        c.getInt("user-rate-per-second"),
        c.getInt("user-rate-burst"),
        c.getInt("max-connections-per-user"),
        c.getInt("rooms-per-minute"),
        c.getDuration("offline-grace"),
        c.getDuration("session-renew-interval"),
        c.getInt("max-starting-sessions"));
  }
}
