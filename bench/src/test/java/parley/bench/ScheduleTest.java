package parley.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class ScheduleTest {

  private record Tick(long due, int index) {}

  @Test
  void ticksAreDueOnAFixedGridRoundRobinOverTheTargets() throws InterruptedException {
    List<Tick> ticks = new CopyOnWriteArrayList<>();
    CountDownLatch ten = new CountDownLatch(10);
    Schedule schedule =
        new Schedule(
            3,
            (due, index) -> {
              ticks.add(new Tick(due, index));
              ten.countDown();
            });
    Thread thread = new Thread(schedule, "schedule-test");
    thread.start();
    schedule.rate(200);
    assertTrue(ten.await(10, TimeUnit.SECONDS), "ten ticks at 200 a second");
    schedule.stop();
    thread.join(5000);

    for (int i = 0; i < 10; i++) {
      assertEquals(i % 3, ticks.get(i).index(), "tick " + i + " goes to the next target");
    }
    for (int i = 1; i < 10; i++) {
      assertEquals(5_000_000L, ticks.get(i).due() - ticks.get(i - 1).due(),
          "due 1/200 s apart, whenever the tick actually ran (no coordinated omission)");
    }
  }
}
