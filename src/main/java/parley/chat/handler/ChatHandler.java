package parley.chat.handler;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import parley.chat.ChatSettings;
import parley.chat.Ids;
import parley.chat.room.RoomEntity;
import parley.chat.room.RoomPush;
import parley.chat.user.UserEntity;
import parley.jobs.export.RoomExports;
import parley.limits.RateByKey;
import parley.protocol.ErrorCode;
import parley.protocol.Reply;
import parley.protocol.Request;

/**
 * Chat requests, whatever transport they came by: each becomes the commands of the room and
 * user entities it concerns, and their answers one {@link Reply}. It keeps no connection
 * state: what a connection follows is the session's business, which acts on the reply.
 */
public final class ChatHandler {

  private final ClusterSharding sharding;
  private final ChatSettings settings;
  private final ActorSystem<?> system;

  /**
   * Typing notices sent lately, by user and room, for the whole node: one notice per interval
   * however many connections or REST calls the user makes.
   */
  private final Cache<String, Boolean> typingSent;

  /** Rooms each user may create, per minute on this node ({@code parley.chat.rooms-per-minute}). */
  private final RateByKey roomCreations;

  private final RoomExports exports;

  public ChatHandler(ActorSystem<?> system, ChatSettings settings) {
    this.sharding = ClusterSharding.get(system);
    this.settings = settings;
    this.system = system;
    this.typingSent = Caffeine.newBuilder().expireAfterWrite(settings.typingInterval()).maximumSize(100_000).build();
    this.roomCreations = new RateByKey(settings.roomsPerMinute() / 60.0, settings.roomsPerMinute(), System::nanoTime);
    this.exports = RoomExports.create(system, settings.askTimeout());
  }

  /** Runs {@code request} for {@code user}; the stage always completes, with a failure reply if need be. */
  public CompletionStage<Reply> handle(String user, Request.Chat request) {
    return request.accept(new Calls(user)).exceptionally(ChatHandler::failed);
  }

  /**
   * Whether {@code user} is in every one of {@code rooms}: empty if so, else the refusal (a
   * resume cursor naming a room the user is not in, checked before a stream starts).
   */
  public CompletionStage<java.util.Optional<Reply>> refuseRoomsNotJoined(String user, java.util.Set<String> rooms) {
    return ask(userEntity(user), UserEntity.GetRooms::new)
        .thenApply(list -> {
          java.util.Set<String> mine = new java.util.HashSet<>();
          list.rooms().forEach(marker -> mine.add(marker.room()));
          return rooms.stream()
              .filter(room -> !mine.contains(room))
              .findFirst()
              .<Reply>map(room -> Reply.Failure.of(ErrorCode.NOT_A_MEMBER, "the cursor names room " + room + ", which " + user + " is not in"));
        })
        .exceptionally(failure -> java.util.Optional.of(failed(failure)));
  }

  /** An ask that got no answer, or broke: retryable, and the client is told so. */
  public static Reply failed(Throwable failure) {
    Throwable cause = failure instanceof CompletionException && failure.getCause() != null ? failure.getCause() : failure;
    if (cause instanceof TimeoutException) {
      return Reply.Failure.of(ErrorCode.TIMEOUT, "no answer in time; retry (with the same clientMsgId for writes)");
    }
    return Reply.Failure.of(ErrorCode.UNAVAILABLE, "the request could not be completed; retry");
  }

  private final class Calls implements Request.ChatVisitor<CompletionStage<Reply>> {
    private final String user;

    Calls(String user) {
      this.user = user;
    }

    @Override
    public CompletionStage<Reply> createRoom(Request.CreateRoom r) {
      java.time.Duration wait = roomCreations.admit(user);
      if (!wait.isZero()) {
        return done(Reply.Failure.retryAfter(ErrorCode.RATE_LIMITED, wait, "at most " + settings.roomsPerMinute() + " rooms a minute"));
      }
      return write(r.room(), to -> new RoomEntity.Create(user, r.visibility(), r.topic(), to))
          .thenApply(reply -> joined(r.room(), reply));
    }

    @Override
    public CompletionStage<Reply> join(Request.Join r) {
      return write(r.room(), to -> new RoomEntity.Join(user, to)).thenApply(reply -> joined(r.room(), reply));
    }

    /**
     * The user's room list learns of the room; the join event is where the user's timeline
     * starts. The room's outbox makes sure of that whatever happens to this node
     * ({@link parley.chat.room.MembershipOutbox}); telling the user entity here too, ahead of it,
     * lets the joiner's very next {@code list_rooms} see the room. The user entity takes both.
     */
    private Reply joined(String room, Reply reply) {
      if (reply instanceof Reply.Written written) {
        userEntity(user).tell(new UserEntity.RoomJoined(room, written.seq(), system.ignoreRef()));
      }
      return reply;
    }

    @Override
    public CompletionStage<Reply> leave(Request.Leave r) {
      // The room's outbox tells the user's room list, in order with the user's other changes
      // of membership there; list_rooms leaves out a room that no longer counts the user
      // meanwhile. A second, unordered copy sent from here could overtake a later rejoin.
      return write(r.room(), to -> new RoomEntity.Leave(user, to));
    }

    @Override
    public CompletionStage<Reply> invite(Request.Invite r) {
      return write(r.room(), to -> new RoomEntity.Invite(user, r.user(), to));
    }

    @Override
    public CompletionStage<Reply> removeMember(Request.RemoveMember r) {
      // The removed user's room list forgets the room as after their own leave.
      return write(r.room(), to -> new RoomEntity.RemoveMember(user, r.user(), to));
    }

    @Override
    public CompletionStage<Reply> setTopic(Request.SetTopic r) {
      return write(r.room(), to -> new RoomEntity.SetTopic(user, r.topic(), r.ifVersion(), to));
    }

    @Override
    public CompletionStage<Reply> send(Request.Send r) {
      return write(r.room(), to -> new RoomEntity.Post(user, r.clientMsgId(), r.body(), false, to));
    }

    @Override
    public CompletionStage<Reply> edit(Request.Edit r) {
      return write(r.room(), to -> new RoomEntity.Edit(user, r.target(), r.clientMsgId(), r.body(), to));
    }

    @Override
    public CompletionStage<Reply> delete(Request.Delete r) {
      return write(r.room(), to -> new RoomEntity.Delete(user, r.target(), r.clientMsgId(), to));
    }

    @Override
    public CompletionStage<Reply> sendDm(Request.SendDm r) {
      if (r.to().equals(user)) {
        return done(Reply.Failure.of(ErrorCode.BAD_FIELD, "a direct message needs another user"));
      }
      String room = Ids.directRoom(user, r.to());
      return ask(room(room), (ActorRef<RoomEntity.WriteReply> to) -> new RoomEntity.PostDirect(user, r.to(), r.clientMsgId(), r.body(), to))
          .thenCompose(reply -> {
            if (reply instanceof RoomEntity.Rejected rejected) {
              return done(rejection(rejected.code(), rejected.message()));
            }
            RoomEntity.Written written = (RoomEntity.Written) reply;
            // Both users' room lists learn of the room; the position before the message
            // keeps it unread and starts the other connections' timeline there.
            for (String member : List.of(user, r.to())) {
              userEntity(member).tell(new UserEntity.RoomJoined(room, written.seq() - 1, system.ignoreRef()));
            }
            return ask(userEntity(r.to()), UserEntity.GetPresence::new)
                .thenApply(presence -> (Reply) new Reply.DirectWritten(
                    room, written.seq(), Instant.ofEpochMilli(written.ts()).toString(), written.clientMsgId(),
                    presence.online(), written.duplicate()));
          });
    }

    @Override
    public CompletionStage<Reply> history(Request.History r) {
      long to = r.before() == null ? Long.MAX_VALUE : r.before() - 1;
      return ask(room(r.room()), (ActorRef<RoomEntity.EventsReply> replyTo) -> new RoomEntity.GetEvents(user, 0, to, r.limit(), replyTo))
          .thenApply(reply -> {
            if (reply instanceof RoomEntity.Rejected rejected) {
              return rejection(rejected.code(), rejected.message());
            }
            RoomEntity.Events events = (RoomEntity.Events) reply;
            return new Reply.History(
                r.room(),
                events.events().stream().map(ChatPushes::event).toList(),
                !events.events().isEmpty() && events.events().get(0).seq() > 1);
          });
    }

    @Override
    public CompletionStage<Reply> listMembers(Request.ListMembers r) {
      return withInfo(r.room(), info -> {
        Map<String, String> members = new TreeMap<>(info.members());
        boolean withPresence = members.size() <= settings.presenceListLimit();
        List<CompletableFuture<Reply.Member>> entries = new ArrayList<>();
        members.forEach((member, role) -> entries.add(
            withPresence
                ? ask(userEntity(member), UserEntity.GetPresence::new)
                    .thenApply(p -> new Reply.Member(member, role, p.online(), p.lastSeen() == null ? null : p.lastSeen().truncatedTo(ChronoUnit.MILLIS).toString()))
                    .exceptionally(failure -> new Reply.Member(member, role, null, null))
                    .toCompletableFuture()
                : CompletableFuture.completedFuture(new Reply.Member(member, role, null, null))));
        return all(entries).thenApply(list -> (Reply) new Reply.Members(r.room(), info.visibility(), info.topic(), info.lastSeq(), info.settingsVersion(), list));
      });
    }

    @Override
    public CompletionStage<Reply> listRooms(Request.ListRooms r) {
      return ask(userEntity(user), UserEntity.GetRooms::new).thenCompose(list -> {
        List<CompletableFuture<Reply.RoomEntry>> entries = new ArrayList<>();
        list.rooms().stream()
            .sorted((a, b) -> a.room().compareTo(b.room()))
            .forEach(marker -> entries.add(info(marker.room())
                .thenApply(reply -> reply instanceof RoomEntity.Info info
                    ? (info.members().containsKey(user)
                        ? new Reply.RoomEntry(marker.room(), marker.readSeq(), info.lastSeq(),
                            Math.max(0, info.lastSeq() - marker.readSeq()), info.direct(), info.topic())
                        : null)
                    : isRefusal(reply) ? null : new Reply.RoomEntry(marker.room(), marker.readSeq(), null, null, null, null))
                .exceptionally(failure -> new Reply.RoomEntry(marker.room(), marker.readSeq(), null, null, null, null))
                .toCompletableFuture()));
        // A room that no longer counts the user (a leave or removal its outbox has yet to
        // deliver to the user entity) is left out; one that did not answer is listed bare.
        return all(entries).thenApply(rooms -> (Reply) new Reply.RoomList(rooms.stream().filter(java.util.Objects::nonNull).toList()));
      });
    }

    /**
     * The room says whether the user is a member and how far its timeline goes: a marker is
     * kept within the timeline, and only members move theirs.
     */
    @Override
    public CompletionStage<Reply> markRead(Request.MarkRead r) {
      return withInfo(r.room(), info -> {
        if (!info.members().containsKey(user)) {
          return done(Reply.Failure.of(ErrorCode.NOT_A_MEMBER, user + " is not a member of room " + r.room()));
        }
        long seq = Math.min(r.seq(), info.lastSeq());
        return ask(userEntity(user), (ActorRef<UserEntity.ReadReply> to) -> new UserEntity.MarkRead(r.room(), seq, to))
            .thenApply(read -> {
              if (read instanceof UserEntity.Rejected rejected) {
                return rejection(rejected.code(), rejected.message());
              }
              UserEntity.MarkedRead marked = (UserEntity.MarkedRead) read;
              long now = System.currentTimeMillis();
              room(r.room()).tell(new RoomEntity.Relay(new RoomPush.Ephemeral(r.room(), "read", user, marked.readSeq(), null, now)));
              if (Ids.isDirectRoom(r.room())) {
                room(r.room()).tell(new RoomEntity.Relay(new RoomPush.Ephemeral(r.room(), "receipt", user, marked.readSeq(), "read", now)));
              }
              return new Reply.MarkedRead(r.room(), marked.readSeq(), Math.max(0, info.lastSeq() - marked.readSeq()));
            });
      });
    }

    @Override
    public CompletionStage<Reply> typing(Request.Typing r) {
      if (typingSent.asMap().putIfAbsent(user + '\n' + r.room(), Boolean.TRUE) == null) {
        room(r.room()).tell(new RoomEntity.Typing(user));
      }
      return done(new Reply.Accepted());
    }

    @Override
    public CompletionStage<Reply> exportRoom(Request.ExportRoom r) {
      return exports.request(user, r.room());
    }

    private CompletionStage<Reply> write(
        String room, Function<ActorRef<RoomEntity.WriteReply>, RoomEntity.Command> command) {
      return ask(room(room), command).thenApply(reply -> {
        if (reply instanceof RoomEntity.Rejected rejected) {
          return rejection(rejected.code(), rejected.message());
        }
        RoomEntity.Written w = (RoomEntity.Written) reply;
        return new Reply.Written(
            w.room(),
            w.seq(),
            w.ts() > 0 ? Instant.ofEpochMilli(w.ts()).toString() : null,
            w.clientMsgId(),
            w.clientMsgId() != null ? w.duplicate() : null);
      });
    }

    /** The room refused to tell the user about itself: it does not count them in. */
    private static boolean isRefusal(RoomEntity.InfoReply reply) {
      return reply instanceof RoomEntity.Rejected rejected
          && (rejected.code().equals(ErrorCode.ROOM_NOT_FOUND.wire()) || rejected.code().equals(ErrorCode.NOT_A_MEMBER.wire()));
    }

    private CompletionStage<RoomEntity.InfoReply> info(String room) {
      return ask(room(room), (ActorRef<RoomEntity.InfoReply> to) -> new RoomEntity.GetInfo(user, to));
    }

    /** Runs {@code then} with the room's info as this user may see it; a refusal is the reply. */
    private CompletionStage<Reply> withInfo(String room, Function<RoomEntity.Info, CompletionStage<Reply>> then) {
      return info(room).thenCompose(reply -> reply instanceof RoomEntity.Info info
          ? then.apply(info)
          : done(rejection(((RoomEntity.Rejected) reply).code(), ((RoomEntity.Rejected) reply).message())));
    }
  }

  private <Q, R> CompletionStage<R> ask(EntityRef<Q> target, Function<ActorRef<R>, Q> command) {
    return plain(target.ask(command::apply, settings.askTimeout()), system.executionContext());
  }

  /**
   * {@code stage} as a plain CompletableFuture, completed on {@code executor}. An ask's stage is
   * a converted Scala future that runs every callback chained on it asynchronously on
   * CompletableFuture's default pool: a hop per step, and a new thread per step wherever that
   * pool has fewer than two threads (Main sizes a node's; an embedding may not). Chained on the
   * plain future, the handlers' steps run where the answer arrives.
   */
  public static <T> CompletableFuture<T> plain(CompletionStage<T> stage, java.util.concurrent.Executor executor) {
    CompletableFuture<T> plain = new CompletableFuture<>();
    stage.whenCompleteAsync(
        (value, failure) -> {
          if (failure != null) {
            plain.completeExceptionally(failure);
          } else {
            plain.complete(value);
          }
        },
        executor);
    return plain;
  }

  /** Every answer, in the order asked (each stage already turns its own failure into a value). */
  private static <T> CompletionStage<List<T>> all(List<CompletableFuture<T>> stages) {
    return CompletableFuture.allOf(stages.toArray(CompletableFuture[]::new))
        .thenApply(done -> stages.stream().map(CompletableFuture::join).toList());
  }

  private static CompletionStage<Reply> done(Reply reply) {
    return CompletableFuture.completedFuture(reply);
  }

  private static Reply rejection(String code, String message) {
    return Reply.Failure.of(ErrorCode.ofEntity(code), message);
  }

  private EntityRef<RoomEntity.Command> room(String room) {
    return sharding.entityRefFor(RoomEntity.ENTITY_KEY, room);
  }

  private EntityRef<UserEntity.Command> userEntity(String user) {
    return sharding.entityRefFor(UserEntity.ENTITY_KEY, user);
  }
}
