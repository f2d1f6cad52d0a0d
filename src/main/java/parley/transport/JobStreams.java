package parley.transport;

import org.apache.pekko.actor.typed.ActorRef;
import parley.chat.user.UserEntity;
import parley.protocol.Codec;
import parley.protocol.Push;

/**
 * The user's job pushes on a connection that resumes by cursor (long-poll, SSE): first what
 * changed after the cursor's place, out of the user entity's window, then each push as it comes,
 * each once and in the order of its position (so each job's in version order). The place
 * travels in every cursor the connection hands out ({@link ResumeCursor.Jobs}).
 *
 * <p>Live pushes and the catch-up come from the entity by one path, so a push that arrives while
 * a catch-up is asked for is in its answer and is not delivered on its own. A push that skips a
 * position, or comes from another incarnation of the entity, makes the connection catch up again
 * from its place, as a room's gap does (design rule 6); so does a client that lagged.
 *
 * <p>The first catch-up is asked for as the connection starts, so its place (from now, without
 * a cursor) is where the client was welcomed; but its answer is applied only once the rooms know
 * where they start ({@link #roomsPlaced}), since the cursor after each push names them too.
 */
final class JobStreams {

  private final Session session;
  private final ActorRef<UserEntity.Notice> notices;
  /** The entity incarnation the client's place is counted by; null until it has a place. */
  private String epoch;
  private long delivered;
  /** A catch-up is asked for: live pushes wait, its answer holds them. */
  private boolean catchingUp;
  /** A push could not be delivered (the client lags): catch up once it has read. */
  private boolean behind;
  private boolean started;
  /** Whether the rooms know where they start: until then the first answer is held. */
  private boolean roomsPlaced;
  private UserEntity.JobsFrom held;
  /** A push came after the held answer: catch up again once it is applied. */
  private boolean pushedWhileHeld;

  /** Placed after {@code given} (null: from the start on). */
  JobStreams(Session session, ActorRef<UserEntity.Notice> notices, ResumeCursor.Jobs given) {
    this.session = session;
    this.notices = notices;
    if (given != null) {
      epoch = given.epoch();
      delivered = given.position();
    }
  }

  /** Catches up from the place given, then follows the pushes as they come. */
  void start() {
    catchUp();
  }

  /** The rooms know where they start: the first answer, if it came, is applied now. */
  void roomsPlaced() {
    roomsPlaced = true;
    if (held != null) {
      UserEntity.JobsFrom answer = held;
      held = null;
      onJobsFrom(answer);
      if (pushedWhileHeld && !catchingUp && !behind) {
        catchUp();
      }
    }
  }

  /** The client's place after what was delivered; null while it has none. */
  ResumeCursor.Jobs position() {
    return epoch == null ? null : new ResumeCursor.Jobs(epoch, delivered);
  }

  void onJobsFrom(UserEntity.JobsFrom answer) {
    if (!catchingUp) {
      // The answer to an ask that timed out, overtaken by the ask sent after it.
      return;
    }
    if (!roomsPlaced) {
      held = answer;
      return;
    }
    boolean sameEpoch = answer.epoch().equals(epoch);
    if (answer.reset() != null && !sameEpoch) {
      String message = "jobs_window".equals(answer.reset())
          ? "more of your jobs changed since this cursor than the server keeps: read the jobs you follow again (GET /v1/jobs/{id})"
          : "the server no longer knows which of your jobs changed since this cursor (it restarted): read the jobs you follow again (GET /v1/jobs/{id})";
      if (!offer(Codec.push(new Push.JobsReset(answer.reset(), message)), answer.epoch(), answer.from())) {
        return;
      }
      sameEpoch = true;
    } else if (!sameEpoch) {
      // The client had no place yet: it starts now.
      epoch = answer.epoch();
      delivered = answer.from();
      sameEpoch = true;
    }
    for (UserEntity.JobPush push : answer.pushes()) {
      if (push.position() > delivered && !offer(push.frame(), answer.epoch(), push.position())) {
        return;
      }
    }
    if (answer.more()) {
      catchUp();
      return;
    }
    catchingUp = false;
    delivered = Math.max(delivered, answer.position());
    reportStarted();
  }

  void onRelayed(UserEntity.Relayed relayed) {
    if (held != null) {
      pushedWhileHeld = true;
      return;
    }
    if (catchingUp || behind) {
      return;
    }
    if (!relayed.epoch().equals(epoch) || relayed.position() > delivered + 1) {
      catchUp();
    } else if (relayed.position() == delivered + 1) {
      offer(relayed.frame(), relayed.epoch(), relayed.position());
    }
  }

  /** The client has read what it lagged behind: catch up on what it could not be given. */
  void resumeAfterLag() {
    if (behind) {
      behind = false;
      catchUp();
    }
  }

  private void catchUp() {
    catchingUp = true;
    session.tellUser(new UserEntity.FollowJobs(epoch, delivered, notices));
    // An entity that does not answer (its node is failing over) must not hold up the start of a
    // poll; the ask goes out again, and the place stays where it was.
    session.later(session.handlers().settings().askTimeout(), this::unanswered);
  }

  private void unanswered() {
    if (catchingUp && held == null && session.open()) {
      reportStarted();
      catchUp();
    }
  }

  /** Hands one frame to the client with the cursor after it; false (behind) if it lags. */
  private boolean offer(String frame, String atEpoch, long position) {
    ResumeCursor.Jobs after = new ResumeCursor.Jobs(atEpoch, position);
    if (!session.offerJobPush(frame, after)) {
      behind = true;
      catchingUp = false;
      return false;
    }
    epoch = atEpoch;
    delivered = position;
    return true;
  }

  private void reportStarted() {
    if (!started) {
      started = true;
      session.jobsStarted();
    }
  }
}
