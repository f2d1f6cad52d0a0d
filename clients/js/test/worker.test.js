// The job worker (src/worker.ts) against a real node (JsClientIT gives it a worker key and a
// queue of one partition, PARLEY_JOB_QUEUE): users submit jobs, the worker runs them, the users
// follow them to the worker's outcome.
import assert from 'node:assert/strict';
import { afterEach, test as nodeTest } from 'node:test';
import WebSocket from 'ws';
import { JobWorker, ParleyError } from '../dist/index.js';
import { client, closeAll, mintToken, node, unique, until } from './support.js';

/** Each test's limit: a broken worker fails its test instead of hanging the suite. */
const test = (name, fn) => nodeTest(name, { timeout: 90_000 }, fn);

// What each test leaves behind is cleaned up before the next, so that no test's worker takes
// another test's job: gates opened (so handlers return), workers stopped, unfinished jobs cancelled.
const gates = [];
const workers = [];
const submitted = [];

afterEach(async () => {
  for (const gate of gates.splice(0)) gate.open();
  await Promise.all(workers.splice(0).map((worker) => worker.stop()));
  await Promise.all(submitted.splice(0).map(({ by, id }) => by.cancelJob(id).catch(() => {})));
  closeAll();
});

/** A promise the test resolves when it says so. */
function gate() {
  let open;
  const opened = new Promise((resolve) => (open = resolve));
  const made = { opened, open };
  gates.push(made);
  return made;
}

/** Resolves once `condition()` holds, checked every 20 ms (for state no event announces), or rejects after `ms`. */
async function eventually(condition, what, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A connected user who submits jobs and hears their pushes (`pushed`). */
async function submitter() {
  const user = client({ token: mintToken(unique('boss'), 600) });
  user.pushed = [];
  user.on('job', (job) => user.pushed.push(job));
  await user.connect();
  return user;
}

async function submit(user, submission = {}) {
  const job = await user.submitJob(node.queue, submission);
  submitted.push({ by: user, id: job.id });
  return job;
}

/** A client connected with the worker key over the WebSocket, as JobWorker.start takes it. */
async function workerClient(options = {}) {
  const made = client({ token: node.workerKey, transports: ['websocket'], reconnect: { initialDelay: 100 }, ...options });
  await made.connect();
  return made;
}

function started(worker) {
  workers.push(worker);
  return worker;
}

test('jobs a user submits are completed by a connected worker, the results visible to the user', async () => {
  const user = await submitter();
  const jobs = await Promise.all([1, 2, 3].map((n) => submit(user, { data: { n } })));
  const worker = started(await JobWorker.connect(
    { url: node.url, workerKey: node.workerKey, WebSocket },
    { queue: node.queue, concurrency: 2, fetchWait: 1000 },
    (job) => ({ echo: job.data, attempt: job.attemptsMade }),
  ));

  const finished = await Promise.all(jobs.map((job) => user.waitForJob(job.id)));
  assert.deepEqual(finished.map((job) => job.state), ['completed', 'completed', 'completed']);
  assert.deepEqual(finished.map((job) => job.result), [1, 2, 3].map((n) => ({ echo: { n }, attempt: 0 })));
  await eventually(() => worker.completed === 3, 'the three completions acknowledged');
  await worker.stop();
  assert.equal(worker.failure, null);
  assert.equal(worker.running, 0);
});

test('the worker runs at most its concurrency of handlers at once, and fetches only for its free slots', async () => {
  const fetches = [];
  let worker;
  class RecordingWebSocket extends WebSocket {
    send(data) {
      const frame = JSON.parse(data);
      // What the worker asks for beside what it runs, as it sends the fetch.
      if (frame.type === 'job_fetch') fetches.push({ max: frame.max, running: worker?.running ?? 0 });
      super.send(data);
    }
  }
  const user = await submitter();
  const total = 8;
  const concurrency = 3;
  const jobs = [];
  for (let i = 0; i < total; i++) jobs.push(await submit(user, { data: { i } }));
  let active = 0;
  let most = 0;
  let begun = 0;
  const checks = new Set();
  const changed = () => {
    for (const check of [...checks]) check();
  };
  const when = (condition) => new Promise((resolve) => {
    const check = () => {
      if (!condition()) return;
      checks.delete(check);
      resolve();
    };
    checks.add(check);
    check();
  });
  worker = started(JobWorker.start(await workerClient({ WebSocket: RecordingWebSocket }), { queue: node.queue, concurrency, fetchWait: 1000 }, async () => {
    begun += 1;
    active += 1;
    most = Math.max(most, active);
    changed();
    // Each handler holds its slot until all the slots are taken (or no job is left to take one).
    await when(() => active >= concurrency || begun >= total);
    active -= 1;
    changed();
    return 'done';
  }));

  const finished = await Promise.all(jobs.map((job) => user.waitForJob(job.id)));
  assert.ok(finished.every((job) => job.state === 'completed'));
  assert.equal(begun, total, 'each job ran once');
  assert.equal(most, concurrency, 'the slots were all taken at once, never more');
  assert.ok(fetches.length > 1);
  assert.deepEqual(fetches.filter((f) => f.max + f.running !== concurrency), [], 'each fetch asks for the free slots, no more');
});

test('progress a handler reports reaches the job\'s submitter', async () => {
  const user = await submitter();
  const job = await submit(user, { data: { rows: 40 } });
  started(JobWorker.start(await workerClient(), { queue: node.queue, fetchWait: 1000 }, async (leased, { progress }) => {
    await progress({ pct: 50 });
    // The job completes only once its submitter has been pushed the progress.
    await until(user, 'job', () => user.pushed.some((j) => j.id === leased.id && j.progress?.pct === 50), 'the progress push');
    return { rows: leased.data.rows };
  }));

  const versions = [];
  for await (const seen of user.followJob(job.id, { wait: 5000 })) versions.push(seen);
  const last = versions.at(-1);
  assert.equal(last.state, 'completed');
  assert.deepEqual(last.result, { rows: 40 });
  assert.deepEqual(last.progress, { pct: 50 }, 'the progress is kept on the job');
});

test('a handler that throws fails the attempt: the job is retried while it has attempts left, then fails with the error', async () => {
  const user = await submitter();
  const backoff = { type: 'fixed', delay: 0, jitter: 0 };
  const once = await submit(user, { data: { failures: 1 }, attempts: 2, backoff });
  const always = await submit(user, { data: { failures: 5 }, attempts: 2, backoff });
  const worker = started(JobWorker.start(await workerClient(), { queue: node.queue, fetchWait: 1000 }, (job) => {
    if (job.attemptsMade < job.data.failures) throw new Error(`boom on attempt ${job.attemptsMade}`);
    return { succeededOn: job.attemptsMade };
  }));

  const retried = await user.waitForJob(once.id);
  assert.equal(retried.state, 'completed');
  assert.deepEqual(retried.result, { succeededOn: 1 }, 'the second attempt completed it');
  const failed = await user.waitForJob(always.id);
  assert.equal(failed.state, 'failed');
  assert.equal(failed.error, 'boom on attempt 1', 'the last attempt\'s error');
  assert.equal(failed.attemptsMade, 2);
  await eventually(() => worker.failed === 3 && worker.completed === 1, 'three failed attempts and a completion acknowledged');
});

test('the lease is extended while the handler runs: a job outlives its lease on its first attempt', async () => {
  const user = await submitter();
  const job = await submit(user);
  const lease = 1000;
  let runs = 0;
  let aborted = false;
  let ranFor = 0;
  const worker = started(JobWorker.start(await workerClient(), { queue: node.queue, lease, fetchWait: 1000 }, async (leased, { signal }) => {
    runs += 1;
    const start = Date.now();
    signal.addEventListener('abort', () => (aborted = true));
    // Every extension is a transition of the job, pushed to its submitter: the handler runs
    // until three have been made, past the first lease's end.
    const extensions = () => user.pushed.filter((j) => j.id === leased.id && j.state === 'active' && j.version > leased.version).length;
    await until(user, 'job', () => extensions() >= 3, 'three lease extensions');
    ranFor = Date.now() - start;
    return { attempt: leased.attemptsMade };
  }));

  const finished = await user.waitForJob(job.id);
  assert.equal(finished.state, 'completed');
  assert.deepEqual(finished.result, { attempt: 0 }, 'the first attempt completed it');
  assert.equal(finished.error, null, 'no lease ran out');
  assert.equal(runs, 1);
  assert.ok(ranFor > lease, `the handler ran ${ranFor} ms, longer than its ${lease} ms lease`);
  assert.equal(aborted, false);
  assert.equal(worker.lost, 0);
});

test('a lost lease aborts the handler\'s signal; its outcome is not counted as done', async () => {
  const user = await submitter();
  const job = await submit(user);
  const running = gate();
  const giveUp = gate();
  let reason;
  const worker = started(JobWorker.start(await workerClient(), { queue: node.queue, lease: 1000, fetchWait: 1000 }, async (leased, { signal }) => {
    running.open();
    // Told, not killed: the handler decides when to stop (or the test gives up on it).
    await Promise.race([new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true })), giveUp.opened]);
    reason = signal.reason;
    return 'too late';
  }));

  await running.opened;
  await user.cancelJob(job.id);
  await eventually(() => worker.lost === 1, 'the lost outcome');
  assert.ok(reason instanceof ParleyError, String(reason));
  assert.equal(reason.code, 'lease_lost');
  assert.equal((await user.getJob(job.id)).state, 'cancelled');
  assert.equal(worker.completed, 0);
});

test('stop() sends no new fetch, fails back what a held fetch brings, and resolves once the running handler has reported', async () => {
  const sent = [];
  class RecordingWebSocket extends WebSocket {
    send(data) {
      sent.push(JSON.parse(data));
      super.send(data);
    }
  }
  const user = await submitter();
  const first = await submit(user, { data: { name: 'first' } });
  const firstRunning = gate();
  const finishFirst = gate();
  const log = [];
  const worker = started(JobWorker.start(
    await workerClient({ WebSocket: RecordingWebSocket }),
    { queue: node.queue, concurrency: 2, fetchWait: 10_000 },
    async (job) => {
      firstRunning.open();
      await finishFirst.opened;
      log.push(`${job.data.name} returned`);
      return { name: job.data.name };
    },
  ));

  await firstRunning.opened;
  // One slot is free: a fetch is out, held on the node.
  await eventually(() => worker.fetching, 'the fetch for the free slot');
  const fetches = () => sent.filter((frame) => frame.type === 'job_fetch').length;
  const fetchesBeforeStop = fetches();
  const stopping = worker.stop().then(() => log.push('stopped'));
  const late = await submit(user, { data: { name: 'late' } });

  // The held fetch leases the late job; the stopping worker fails it back instead of running it.
  await eventually(() => worker.released === 1, 'the late job failed back');
  const releasedJob = await user.getJob(late.id);
  assert.equal(releasedJob.error, JobWorker.RELEASED);
  assert.equal(releasedJob.attemptsMade, 1);
  assert.ok(['waiting', 'delayed'].includes(releasedJob.state), releasedJob.state);
  assert.deepEqual(log, [], 'stop() waits for the running handler');

  finishFirst.open();
  await stopping;
  assert.deepEqual(log, ['first returned', 'stopped']);
  assert.equal(worker.completed, 1, 'its outcome was acknowledged before stop() resolved');
  assert.equal((await user.getJob(first.id)).state, 'completed');
  assert.equal(fetches(), fetchesBeforeStop, 'no fetch after stop()');
  assert.equal(worker.fetching, false);
  assert.equal(worker.failure, null);
});

test('a lost connection is opened again: a running job reports over the new one, a held fetch is sent again', async () => {
  const sockets = [];
  class TrackedWebSocket extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols);
      this.fetches = 0;
      sockets.push(this);
    }

    send(data) {
      if (JSON.parse(data).type === 'job_fetch') this.fetches += 1;
      super.send(data);
    }
  }
  const user = await submitter();
  const first = await submit(user, { data: { name: 'first' } });
  const firstRunning = gate();
  const finishFirst = gate();
  const runs = [];
  const worker = started(JobWorker.start(
    await workerClient({ WebSocket: TrackedWebSocket }),
    { queue: node.queue, fetchWait: 1000 },
    async (job) => {
      runs.push(job.data.name);
      if (job.data.name === 'first') {
        firstRunning.open();
        await finishFirst.opened;
      }
      return { name: job.data.name, attempt: job.attemptsMade };
    },
  ));

  await firstRunning.opened;
  // The network drops under the running job (no fetch is out: the only slot is busy), and the
  // handler returns before the client has connected again.
  sockets.at(-1).terminate();
  finishFirst.open();
  const done = await user.waitForJob(first.id);
  assert.equal(done.state, 'completed');
  assert.deepEqual(done.result, { name: 'first', attempt: 0 }, 'completed by the attempt that was running, over the new connection');
  assert.equal(sockets.length, 2);
  assert.equal(worker.reconnects, 1);

  // Now it drops under a held fetch. The node may still lease a job to that fetch until its
  // wait ends; the new connection's second fetch goes out after its first one's wait, which
  // started after the drop, so by then the old fetch is over and the next job can only go to
  // the worker's new connection.
  await eventually(() => worker.fetching && sockets[1].fetches > 0, 'a fetch held on the second connection');
  sockets[1].terminate();
  await eventually(() => sockets.length === 3 && sockets[2].fetches >= 2, 'fetching again on a third connection');
  const next = await submit(user, { data: { name: 'next' } });
  const nextDone = await user.waitForJob(next.id);
  assert.equal(nextDone.state, 'completed');
  assert.deepEqual(nextDone.result, { name: 'next', attempt: 0 });
  assert.deepEqual(runs, ['first', 'next']);
  assert.equal(worker.reconnects, 2);
  assert.equal(worker.failure, null);
});

test('a worker stops by itself, saying why, when its fetch is refused for good or its key is wrong', async () => {
  const unknownQueue = started(await JobWorker.connect(
    { url: node.url, workerKey: node.workerKey, WebSocket },
    { queue: unique('no-such-queue') },
    () => 'never',
  ));
  await unknownQueue.stopped;
  assert.equal(unknownQueue.failure?.code, 'queue_not_found');

  const wrongKey = await JobWorker.connect({ url: node.url, workerKey: 'not-the-worker-key', WebSocket }, { queue: node.queue }, () => 'never')
    .catch((error) => error);
  assert.ok(wrongKey instanceof ParleyError, String(wrongKey));
  assert.equal(wrongKey.code, 'connection_lost');
});
