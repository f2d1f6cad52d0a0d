package parley.transport;

import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import parley.chat.ChatSettings;
import parley.chat.fanout.NodeHub;
import parley.chat.handler.ChatHandler;
import parley.collab.handler.DocumentHandler;
import parley.protocol.Codec;

/**
 * What every transport of a node shares: the settings, the node's fan-out hub, the codec and
 * one handler per feature. Built once per node.
 */
public record Handlers(
    ChatSettings settings, ActorRef<NodeHub.Command> hub, Codec codec, ChatHandler chat, DocumentHandler documents) {

  public static Handlers create(ActorSystem<?> system, ChatSettings settings, ActorRef<NodeHub.Command> hub) {
    return new Handlers(
        settings,
        hub,
        new Codec(new Codec.Limits(settings.maxBodyBytes(), settings.maxTopicBytes())),
        new ChatHandler(system, settings),
        new DocumentHandler(system, settings.askTimeout()));
  }
}
