package parley.transport;

import java.time.Duration;
import org.apache.pekko.NotUsed;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.stream.Attributes;
import org.apache.pekko.stream.BidiShape;
import org.apache.pekko.stream.Inlet;
import org.apache.pekko.stream.Outlet;
import org.apache.pekko.stream.javadsl.BidiFlow;
import org.apache.pekko.stream.stage.AbstractInHandler;
import org.apache.pekko.stream.stage.AbstractOutHandler;
import org.apache.pekko.stream.stage.GraphStage;
import org.apache.pekko.stream.stage.GraphStageLogic;
import org.apache.pekko.stream.stage.TimerGraphStageLogic;

/**
 * Bounds how long a connection may take to deliver a whole request head (Slowloris: a client
 * that sends one header line every few seconds keeps Pekko HTTP's idle timeout from ever
 * firing, and a thousand of them hold every connection the node allows). Pekko HTTP 1.x has
 * no header-read timeout, but a request reaches the handler flow only once its head is
 * parsed; this stage sits in front of the handler of each connection and closes the
 * connection when no request has arrived within {@code deadline}:
 *
 * <ul>
 *   <li>of the connection being accepted (its first request, which is also a WebSocket
 *       upgrade), and
 *   <li>of a response of known length being handed to the connection (the next request on a
 *       kept-alive connection: an idle kept-alive connection is closed after as long).
 * </ul>
 *
 * After a streamed response (an SSE stream) or a WebSocket upgrade no deadline runs: the
 * stream's heartbeats and the idle timeout govern the connection from then on. Closing is
 * graceful: a response still being written is finished first.
 */
public final class RequestDeadline extends GraphStage<BidiShape<HttpRequest, HttpRequest, HttpResponse, HttpResponse>> {

  private static final String TIMER = "request-head";

  private final Duration deadline;
  private final Inlet<HttpRequest> fromClient = Inlet.create("RequestDeadline.fromClient");
  private final Outlet<HttpRequest> toHandler = Outlet.create("RequestDeadline.toHandler");
  private final Inlet<HttpResponse> fromHandler = Inlet.create("RequestDeadline.fromHandler");
  private final Outlet<HttpResponse> toClient = Outlet.create("RequestDeadline.toClient");
  private final BidiShape<HttpRequest, HttpRequest, HttpResponse, HttpResponse> shape =
      BidiShape.of(fromClient, toHandler, fromHandler, toClient);

  private RequestDeadline(Duration deadline) {
    this.deadline = deadline;
  }

  /** To join with a connection's handler flow: {@code RequestDeadline.of(d).join(handler)}. */
  public static BidiFlow<HttpRequest, HttpRequest, HttpResponse, HttpResponse, NotUsed> of(Duration deadline) {
    return BidiFlow.fromGraph(new RequestDeadline(deadline));
  }

  @Override
  public BidiShape<HttpRequest, HttpRequest, HttpResponse, HttpResponse> shape() {
    return shape;
  }

  @Override
  public GraphStageLogic createLogic(Attributes attributes) {
    return new TimerGraphStageLogic(shape) {
      /** Requests handed to the handler and not yet answered (more than one if pipelined). */
      private int unanswered;

      @Override
      public void preStart() {
        scheduleOnce(TIMER, deadline);
      }

      {
        setHandler(fromClient, new AbstractInHandler() {
          @Override
          public void onPush() {
            cancelTimer(TIMER);
            unanswered++;
            push(toHandler, grab(fromClient));
          }

          @Override
          public void onUpstreamFinish() {
            complete(toHandler);
          }
        });
        setHandler(toHandler, new AbstractOutHandler() {
          @Override
          public void onPull() {
            pull(fromClient);
          }

          @Override
          public void onDownstreamFinish(Throwable cause) {
            cancel(fromClient, cause);
          }
        });
        setHandler(fromHandler, new AbstractInHandler() {
          @Override
          public void onPush() {
            HttpResponse response = grab(fromHandler);
            push(toClient, response);
            unanswered--;
            boolean finite = response.entity().isStrict() || response.entity().isDefault();
            if (unanswered == 0 && finite && !response.status().equals(StatusCodes.SWITCHING_PROTOCOLS)) {
              scheduleOnce(TIMER, deadline);
            }
          }

          @Override
          public void onUpstreamFinish() {
            complete(toClient);
          }
        });
        setHandler(toClient, new AbstractOutHandler() {
          @Override
          public void onPull() {
            pull(fromHandler);
          }

          @Override
          public void onDownstreamFinish(Throwable cause) {
            cancel(fromHandler, cause);
          }
        });
      }

      @Override
      public void onTimer(Object key) {
        completeStage();
      }
    };
  }
}
