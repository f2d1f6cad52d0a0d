package parley.chat.handler;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import scala.concurrent.Promise;
import scala.jdk.javaapi.FutureConverters;

class ChatHandlerTest {

  @Test
  void theStepsAfterAnAskRunOnTheGivenExecutorNotOnAThreadOfTheirOwn() throws Exception {
    ExecutorService dispatcher = Executors.newSingleThreadExecutor(r -> new Thread(r, "dispatcher"));
    try {
      Promise<String> answer = Promise.apply();
      // What EntityRef.ask returns: a Scala future converted to a CompletionStage.
      CompletionStage<String> asked = FutureConverters.asJava(answer.future());

      CompletableFuture<String> ranOn =
          ChatHandler.plain(asked, dispatcher).thenApply(a -> a + " on " + Thread.currentThread().getName());
      answer.success("answer");

      assertEquals("answer on dispatcher", ranOn.get(5, TimeUnit.SECONDS));
    } finally {
      dispatcher.shutdownNow();
    }
  }
}
