import { ParleyClient, type ClientOptions } from './client.js';
import { ParleyError } from './errors.js';
import type { LeasedJob, Reply, RequestFields } from './protocol.js';
import { MemorySendStore } from './sendStore.js';

/** What a {@link JobWorker} works on, and how; only `queue` is required. */
export interface WorkerOptions {
  /** The queue to work on. */
  queue: string;
  /** Handlers run at once; the worker fetches only as many jobs as it has free. Default 1. */
  concurrency?: number;
  /** Each job's lease in milliseconds (1,000–600,000), extended while its handler runs. Default 30,000. */
  lease?: number;
  /** Milliseconds one fetch waits on the node for jobs while the queue is empty (at most 30,000). Default 25,000. */
  fetchWait?: number;
  /** The worker's name in the node's logs. Default `js-worker`. */
  name?: string;
}

/** What a handler is given beside its job. */
export interface JobContext {
  /**
   * Aborted (its reason a `lease_lost` {@link ParleyError}) once the lease is lost: the job was
   * cancelled, or its lease ran out. Nothing stops the handler; its outcome will be refused,
   * so it should stop when it can.
   */
  readonly signal: AbortSignal;
  /** Reports progress (any JSON, at most 4 KiB); the job's submitter is pushed it. */
  progress(progress: unknown): Promise<void>;
}

/**
 * What a worker does with one job: the value it returns (or resolves with, any JSON) completes
 * the job as its `result`; an exception (or a rejection) fails the attempt with its message as
 * the job's `error`, and the job is retried after its backoff while it has attempts left.
 */
export type JobHandler = (job: LeasedJob, context: JobContext) => unknown;

/** Where {@link JobWorker.connect} connects: the node's URL and the worker key, and the client's connection options. */
export interface WorkerConnectOptions extends Pick<ClientOptions, 'url' | 'WebSocket' | 'connectTimeout' | 'requestTimeout'> {
  /** The worker key (`PARLEY_WORKER_KEY`), sent where a user sends a token. */
  workerKey: string;
  /** Reconnect delays, each with jitter: exponential from `initialDelay` up to `maxDelay`. Defaults 200 ms and 10 s. */
  reconnect?: { initialDelay?: number; maxDelay?: number };
}

/** One leased job as the worker tracks it. */
interface Lease {
  readonly id: string;
  readonly leaseId: string;
  /**
   * When the lease ends at the latest, by this machine's clock: when the fetch or the last
   * extension was asked for, plus the lease (the node counts from when it answers, a little
   * later). Not the node's `leaseUntil`, which is by the node's clock. Past it a report is not
   * sent (again).
   */
  deadline: number;
  lost: boolean;
  /** Its handler has returned: no more extensions. */
  finished: boolean;
  readonly controller: AbortController;
  timer?: ReturnType<typeof setTimeout>;
}

/** The most jobs one fetch may ask for (the node's `max-fetch`). */
const MAX_FETCH = 100;
/** A fetch's timeout beyond its wait on the node. */
const FETCH_GRACE = 15_000;
/** The pause before a request refused for now is sent again. */
const RETRY_MS = 200;
/** Codes after which the same request may simply go again: the connection's and the protocol's retryable ones. */
const TRANSIENT = new Set(['connection_lost', 'request_timeout', 'rate_limited', 'unavailable', 'timeout']);
/** The longest `error` a failed attempt reports (the node takes 4 KiB). */
const MAX_ERROR = 1000;

/**
 * Works on the jobs of one queue over a worker connection (docs/jobs.md, Workers over the
 * WebSocket), as the Java `parley.client.JobWorker` does: fetches as many jobs as it has free
 * slots (`job_fetch`, held on the node while the queue is empty), runs a {@link JobHandler} on
 * each, extends each lease when half of what is left of it has passed, and completes the job
 * with the handler's result or fails the attempt with its error.
 *
 * The connection is a {@link ParleyClient} opened with the worker key over the WebSocket (the
 * worker requests have no SSE or long-poll form). It reconnects by itself, with backoff and
 * jitter; meanwhile the handlers keep running, their reports wait for the next connection and
 * go over it while their leases may still hold, and fetching resumes on it.
 *
 * {@link stop} is graceful: no new fetch, the running handlers finish and report, and jobs a
 * fetch already out brings in afterwards are failed back at once (error {@link RELEASED}) so
 * they run again elsewhere after their backoff. Execution is at least once: make handlers
 * idempotent.
 */
export class JobWorker {
  /** The error a job fetched by a stopping worker is failed back with (the Java worker's too). */
  static readonly RELEASED = 'released: the worker stopped before starting the job';

  private readonly settings: Required<WorkerOptions>;
  private readonly done: Promise<void>;
  private readonly pending = new Set<Promise<void>>();
  private readonly stopListening: () => void;
  private stopping = false;
  private wake: (() => void) | null = null;
  private runningNow = 0;
  private fetchOut = false;
  private counts = { completed: 0, failed: 0, lost: 0, released: 0, reconnects: 0 };
  private whyStopped: ParleyError | null = null;

  private constructor(
    private readonly client: ParleyClient,
    options: WorkerOptions,
    private readonly handler: JobHandler,
    /** The worker opened the client itself (connect), so it closes it when it stops. */
    private readonly ownsClient: boolean,
  ) {
    this.settings = {
      queue: options.queue,
      concurrency: options.concurrency ?? 1,
      lease: options.lease ?? 30_000,
      fetchWait: options.fetchWait ?? 25_000,
      name: options.name ?? 'js-worker',
    };
    if (!this.settings.queue) throw new TypeError('queue is required');
    if (!Number.isInteger(this.settings.concurrency) || this.settings.concurrency < 1) {
      throw new RangeError('concurrency must be a whole number >= 1');
    }
    let opened = client.welcome !== null;
    this.stopListening = client.on('state', ({ state }) => {
      if (state === 'open') {
        if (opened) this.counts.reconnects += 1;
        opened = true;
      } else if (state === 'closed' && !this.stopping) {
        // Closed for good: nothing can be fetched or reported over it any more.
        this.whyStopped = new ParleyError('client_closed', 'the worker\'s client was closed');
        void this.stop();
      }
    });
    this.done = this.work();
  }

  /**
   * Starts working on `options.queue` over `client`, a client connected with the worker key
   * (`new ParleyClient({ url, token: workerKey, WebSocket, transports: ['websocket'] })`). The
   * worker rides out the client's reconnects, and stops when the client is closed.
   */
  static start(client: ParleyClient, options: WorkerOptions, handler: JobHandler): JobWorker {
    return new JobWorker(client, options, handler, false);
  }

  /**
   * Connects to `connection.url` with the worker key over the WebSocket and works on
   * `options.queue`, reconnecting whenever the connection is lost, until {@link stop} (which
   * closes the connection). Rejects if the first connection cannot be made (a wrong key, no
   * node there): that is not worth retrying.
   */
  static async connect(connection: WorkerConnectOptions, options: WorkerOptions, handler: JobHandler): Promise<JobWorker> {
    const client = new ParleyClient({
      url: connection.url,
      token: connection.workerKey,
      WebSocket: connection.WebSocket,
      transports: ['websocket'],
      connectTimeout: connection.connectTimeout,
      requestTimeout: connection.requestTimeout,
      reconnect: { initialDelay: connection.reconnect?.initialDelay ?? 200, maxDelay: connection.reconnect?.maxDelay ?? 10_000 },
      // A worker sends no messages; a browser's shared IndexedDB queue is the page user's.
      sendStore: new MemorySendStore(),
    });
    let stopWatching = () => {};
    const refused = new Promise<never>((_, reject) => {
      stopWatching = client.on('state', ({ state }) => {
        if (state === 'reconnecting') {
          reject(new ParleyError('connection_lost', `could not connect to ${connection.url} with the worker key`));
        }
      });
    });
    try {
      await Promise.race([client.connect(), refused]);
    } catch (error) {
      client.close();
      throw error;
    } finally {
      stopWatching();
    }
    return new JobWorker(client, options, handler, true);
  }

  /**
   * Stops fetching, lets the running handlers finish and report, and fails back what a fetch
   * already out brings in meanwhile; resolves once all that is done. Safe to call more than once.
   */
  stop(): Promise<void> {
    this.stopping = true;
    this.wakeUp();
    return this.done;
  }

  /** Resolves once the worker has stopped: after {@link stop}, when its client was closed, or when a fetch was refused for good. */
  get stopped(): Promise<void> {
    return this.done;
  }

  /** Jobs completed (the node acknowledged the completion). */
  get completed(): number {
    return this.counts.completed;
  }

  /** Attempts failed by their handler (acknowledged). */
  get failed(): number {
    return this.counts.failed;
  }

  /** Outcomes refused, or not sent, because the lease was lost. */
  get lost(): number {
    return this.counts.lost;
  }

  /** Jobs fetched while stopping and failed back unstarted. */
  get released(): number {
    return this.counts.released;
  }

  /** Connections the client opened again after one was lost, while the worker ran. */
  get reconnects(): number {
    return this.counts.reconnects;
  }

  /** Handlers running now (until their outcome is answered). */
  get running(): number {
    return this.runningNow;
  }

  /** Whether a fetch is out now (or waiting for a connection to go out on). */
  get fetching(): boolean {
    return this.fetchOut;
  }

  /**
   * Why the worker stopped by itself, if it did: a fetch refused for good (`queue_not_found`,
   * `not_supported` over SSE or long-polling, `forbidden` on a user's connection) or its client
   * closed (`client_closed`). Null after {@link stop}.
   */
  get failure(): ParleyError | null {
    return this.whyStopped;
  }

  // Fetching.

  private async work(): Promise<void> {
    const { queue, concurrency, lease, fetchWait, name } = this.settings;
    while (!this.stopping) {
      const free = concurrency - this.runningNow;
      if (free <= 0) {
        await this.pause();
        continue;
      }
      let jobs: LeasedJob[];
      const askedAt = Date.now();
      this.fetchOut = true;
      try {
        ({ jobs } = await this.client.request(
          'job_fetch',
          { queue, max: Math.min(free, MAX_FETCH), waitMs: fetchWait, lease, worker: name },
          { timeout: fetchWait + FETCH_GRACE },
        ));
      } catch (error) {
        if (this.stopping) break;
        if (error instanceof ParleyError && TRANSIENT.has(error.code)) {
          // The connection dropped under the fetch, or a partition is failing over: ask again
          // a moment later (over the next connection, which the request waits for).
          await this.pause(RETRY_MS);
          continue;
        }
        this.whyStopped = error instanceof ParleyError ? error : new ParleyError('request_timeout', String(error));
        this.stopping = true;
        break;
      } finally {
        // Cleared before the jobs start: seeing it set after a job started means the next fetch is out.
        this.fetchOut = false;
      }
      for (const leased of jobs) {
        const job = leaseOf(leased, askedAt + lease);
        this.track(this.stopping ? this.release(job) : this.run(leased, job));
      }
    }
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    this.stopListening();
    if (this.ownsClient) this.client.close();
  }

  /** Resolves when a handler finishes, on stop, or after `ms`. */
  private pause(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = ms === undefined ? undefined : setTimeout(() => this.wakeUp(), ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private track(work: Promise<void>): void {
    this.pending.add(work);
    const settled = () => {
      this.pending.delete(work);
      this.wakeUp();
    };
    work.then(settled, settled);
  }

  private release(job: Lease): Promise<void> {
    return this.report(job, 'job_fail', { error: JobWorker.RELEASED }).then(
      () => void (this.counts.released += 1),
      // Not failed back: its lease runs out instead, which spends the attempt just the same.
      () => {},
    );
  }

  // Running one job.

  private async run(leased: LeasedJob, job: Lease): Promise<void> {
    this.runningNow += 1;
    this.scheduleExtend(job);
    try {
      let result: unknown;
      try {
        result = await this.handler(leased, {
          signal: job.controller.signal,
          progress: (progress) => this.report(job, 'job_progress', { progress }).then(() => undefined),
        });
      } catch (error) {
        job.finished = true;
        await this.outcome(job, 'job_fail', { error: shortened(describe(error)) }, 'failed');
        return;
      }
      job.finished = true;
      await this.outcome(job, 'job_complete', { result }, 'completed');
    } finally {
      job.finished = true;
      clearTimeout(job.timer);
      this.runningNow -= 1;
    }
  }

  /**
   * Extends the lease when half of what is left of it has passed, and again after each
   * extension, until the handler returns or the lease is lost.
   */
  private scheduleExtend(job: Lease): void {
    const wait = Math.max(100, (job.deadline - Date.now()) / 2);
    job.timer = setTimeout(() => {
      if (job.finished || job.lost) return;
      const askedAt = Date.now();
      this.report(job, 'job_extend', { lease: this.settings.lease }).then(
        () => {
          job.deadline = askedAt + this.settings.lease;
          if (!job.finished && !job.lost) this.scheduleExtend(job);
        },
        // lease_lost has marked the job; anything else (the client closed) ends the extensions.
        () => {},
      );
    }, wait);
  }

  /** Sends the outcome and waits for its answer, so that stop() resolves after it. */
  private async outcome(job: Lease, type: 'job_complete' | 'job_fail', fields: { result?: unknown; error?: string }, counter: 'completed' | 'failed'): Promise<void> {
    if (job.lost) {
      this.counts.lost += 1;
      return;
    }
    try {
      await this.report(job, type, fields as RequestFields<typeof type>);
      this.counts[counter] += 1;
    } catch {
      if (job.lost) this.counts.lost += 1;
    }
  }

  /**
   * Sends a report on `job`. One that found no connection, or lost it, or was refused for now
   * is sent again (over the next connection) as long as the lease may still hold: the lease, not
   * the connection, is the worker's hold on the job. Past the lease it is refused here as the
   * node would refuse it. A `lease_lost` marks the job and aborts its handler's signal.
   */
  private async report<T extends 'job_extend' | 'job_progress' | 'job_complete' | 'job_fail'>(
    job: Lease,
    type: T,
    fields: Omit<RequestFields<T>, 'job' | 'leaseId'>,
  ): Promise<Reply<T>> {
    for (;;) {
      const left = job.deadline - Date.now();
      if (job.lost || left <= 0) {
        throw this.leaseLost(job, new ParleyError('lease_lost', `the lease of ${job.id} ran out before ${type} could be sent`));
      }
      try {
        const frame = { ...fields, job: job.id, leaseId: job.leaseId } as RequestFields<T>;
        return await this.client.request(type, frame, { timeout: left });
      } catch (error) {
        if (!(error instanceof ParleyError)) throw error;
        if (error.code === 'lease_lost') throw this.leaseLost(job, error);
        if (!TRANSIENT.has(error.code)) throw error;
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  }

  private leaseLost(job: Lease, error: ParleyError): ParleyError {
    if (!job.lost) {
      job.lost = true;
      clearTimeout(job.timer);
      job.controller.abort(error);
    }
    return error;
  }
}

function leaseOf(leased: LeasedJob, deadline: number): Lease {
  return {
    id: leased.id,
    leaseId: leased.leaseId,
    deadline,
    lost: false,
    finished: false,
    controller: new AbortController(),
  };
}

/** A thrown value as a failed attempt's `error`: its message, or its name when it has none. */
function describe(error: unknown): string {
  if (error instanceof Error) return error.message.trim() ? error.message : error.name;
  return String(error);
}

/** At most {@link MAX_ERROR} characters, never cutting a surrogate pair in two. */
function shortened(error: string): string {
  if (error.length <= MAX_ERROR) return error;
  const code = error.charCodeAt(MAX_ERROR - 1);
  return error.slice(0, code >= 0xd800 && code <= 0xdbff ? MAX_ERROR - 1 : MAX_ERROR);
}
