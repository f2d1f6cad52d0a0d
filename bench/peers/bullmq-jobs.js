// The jobs scenario of the load tool (parley.bench.Jobs) against BullMQ on Redis: the same
// steps, options and columns, so `bench compare` sets the two side by side
// (docs/benchmarks.md). BullMQ is a Node.js library, so its side of the load runs here.
//
//   node bench/peers/bullmq-jobs.js --redis 16379 --target bullmq-aof --workers 4 \
//        --concurrency 16 --in-flight 64 --backlog 1000 --rates 0,2500 --warmup 5 \
//        --duration 20 --server-pid <redis pid> --out result.json
//
// No-op jobs: a Queue adds them one call each (like Parley's one POST each), `--workers`
// Workers with `--concurrency` each take them and return at once. Pickup latency is from the
// add() call to the processor starting (BullMQ runs the processor when it has moved the job
// to active: its lease), on one monotonic clock in this process. Completed jobs are kept
// 1,000 deep and failed ones 5,000, like Parley's queue defaults (keep-completed,
// keep-failed per partition), so Redis does not grow without bound.
'use strict';

const fs = require('fs');
const os = require('os');
const { Queue, Worker } = require('bullmq');

const args = parse(process.argv.slice(2));
const opt = {
  redis: Number(args.redis ?? 16379),
  target: args.target ?? 'bullmq',
  queue: args.queue ?? 'bench',
  workers: Number(args.workers ?? 4),
  concurrency: Number(args.concurrency ?? 16),
  inFlight: Number(args['in-flight'] ?? 64),
  backlog: Number(args.backlog ?? 1000),
  rates: String(args.rates ?? '0').split(',').map(Number),
  warmup: Number(args.warmup ?? 5),
  duration: Number(args.duration ?? 20),
  drain: Number(args.drain ?? 120),
  serverPid: Number(args['server-pid'] ?? 0),
  out: args.out ?? '',
};

const connection = { host: '127.0.0.1', port: opt.redis, maxRetriesPerRequest: null };
const now = () => Number(process.hrtime.bigint()) / 1e3; // microseconds, monotonic

const load = {
  submitted: 0, completed: 0, outstanding: 0, errors: 0, measuring: false,
  pickup: [], submitAck: [], waiters: [],
};
function progressed() {
  const waiters = load.waiters;
  load.waiters = [];
  waiters.forEach((w) => w());
}
function awaitProgress(ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    load.waiters.push(() => { clearTimeout(timer); resolve(); });
  });
}

async function main() {
  const queue = new Queue(opt.queue, { connection });
  await queue.obliterate({ force: true });
  const workers = [];
  for (let w = 0; w < opt.workers; w++) {
    const worker = new Worker(opt.queue, async (job) => {
      if (load.measuring) {
        load.pickup.push(now() - job.data.t);
      }
    }, { connection, concurrency: opt.concurrency });
    worker.on('completed', () => { load.completed++; progressed(); });
    worker.on('failed', () => { load.errors++; load.completed++; progressed(); });
    workers.push(worker);
  }
  await Promise.all(workers.map((w) => w.waitUntilReady()));

  const submit = () => {
    load.outstanding++;
    load.submitted++;
    const t = now();
    queue.add('noop', { t }, { attempts: 1, removeOnComplete: 1000, removeOnFail: 5000 }).then(
      () => { if (load.measuring) load.submitAck.push(now() - t); },
      () => { load.errors++; load.submitted--; },
    ).finally(() => { load.outstanding--; progressed(); });
  };

  const startedAt = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const rows = [];
  const notes = [];
  for (const rate of opt.rates) {
    const step = rate === 0 ? 'max' : `rate=${rate}`;
    process.stderr.write(`jobs: ${step}, ${opt.workers} workers x ${opt.concurrency} (${opt.target})\n`);
    const start = now();
    const from = start + opt.warmup * 1e6;
    const until = from + opt.duration * 1e6;
    let window = null;
    let next = start;
    for (;;) {
      const t = now();
      if (!window && t >= from) {
        load.pickup = [];
        load.submitAck = [];
        window = { submitted: load.submitted, completed: load.completed, usage: usageStart() };
        load.measuring = true;
      }
      if (t >= until) break;
      if (rate === 0) {
        if (load.outstanding >= opt.inFlight || load.submitted - load.completed >= opt.backlog) {
          await awaitProgress(1);
          continue;
        }
      } else if (t < next) {
        await sleepMicros(next - t);
        continue;
      } else if (load.outstanding >= opt.inFlight) {
        // As many outstanding as the Java tool allows its bounded connection pool.
        await awaitProgress(1);
        continue;
      } else {
        next += 1e6 / rate;
      }
      submit();
      // Let the event loop run the workers between submissions, as separate processes would.
      if (load.submitted % 16 === 0) await new Promise((r) => setImmediate(r));
    }
    const submittedInWindow = load.submitted - window.submitted;
    const completedInWindow = load.completed - window.completed;
    const used = usageStop(window.usage);
    load.measuring = false;
    const pickup = load.pickup;
    const acks = load.submitAck;
    const drainStart = now();
    while ((load.outstanding > 0 || load.completed < load.submitted) && now() - drainStart < opt.drain * 1e6) {
      await awaitProgress(50);
    }
    if (load.completed < load.submitted) {
      notes.push(`${step}: ${load.submitted - load.completed} jobs not completed ${opt.drain} s after submitting stopped`);
    }
    const row = { step };
    row.submitted_per_s = Math.round(submittedInWindow / opt.duration);
    row.completed_per_s = Math.round(completedInWindow / opt.duration);
    latencies(row, 'pickup', pickup);
    latencies(row, 'submit_ack', acks);
    row.drain_s = round((now() - drainStart) / 1e6, 1);
    row.errors = load.errors;
    load.errors = 0;
    Object.assign(row, used);
    process.stderr.write(JSON.stringify(row) + '\n');
    rows.push(row);
  }

  await Promise.all(workers.map((w) => w.close()));
  await queue.close();
  const recorded = {
    scenario: 'jobs',
    startedAt,
    environment: {
      host: os.hostname(), cores: os.cpus().length, node: process.version,
      bullmq: require('bullmq/package.json').version, loadavg_after: os.loadavg()[0],
    },
    options: opt,
    results: [{ scenario: 'jobs', target: opt.target, rows, notes }],
  };
  console.log(table(rows, opt.target));
  if (opt.out) {
    fs.writeFileSync(opt.out, JSON.stringify(recorded, null, 2));
    process.stderr.write(`bullmq-jobs: wrote ${opt.out}\n`);
  }
}

// Percentiles of the exact latencies (microseconds), in the columns Numbers.latencies writes.
function latencies(row, prefix, micros) {
  row[`${prefix}_count`] = micros.length;
  if (micros.length === 0) return;
  const sorted = Float64Array.from(micros).sort();
  const at = (p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  row[`${prefix}_p50_ms`] = round(at(50) / 1000, 2);
  row[`${prefix}_p99_ms`] = round(at(99) / 1000, 2);
  row[`${prefix}_p999_ms`] = round(at(99.9) / 1000, 2);
  row[`${prefix}_max_ms`] = round(sorted[sorted.length - 1] / 1000, 2);
}

// CPU (% of one core) and peak RSS of Redis (server_) and of this process (client_), read from
// /proc like the Java tool's Usage.
function usageStart() {
  const watched = [['client', process.pid]];
  if (opt.serverPid) watched.unshift(['server', opt.serverPid]);
  const peak = new Map(watched.map(([name]) => [name, 0]));
  const sample = () => watched.forEach(([name, pid]) => peak.set(name, Math.max(peak.get(name), rss(pid))));
  sample();
  return { watched, peak, sample, timer: setInterval(sample, 500), t: now(), cpu: watched.map(([, pid]) => cpu(pid)) };
}
function usageStop(u) {
  clearInterval(u.timer);
  u.sample();
  const seconds = (now() - u.t) / 1e6;
  const columns = {};
  u.watched.forEach(([name, pid], i) => {
    columns[`${name}_cpu_pct`] = Math.round(((cpu(pid) - u.cpu[i]) / seconds) * 100);
    columns[`${name}_rss_mb`] = Math.round(u.peak.get(name) / 1048576);
  });
  return columns;
}
const TICKS = 100;
function cpu(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}
function rss(pid) {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return line ? Number(line.replace(/\D+/g, '')) * 1024 : 0;
}

function sleepMicros(us) {
  return new Promise((resolve) => (us >= 1000 ? setTimeout(resolve, Math.floor(us / 1000)) : setImmediate(resolve)));
}
function round(v, d) {
  const s = 10 ** d;
  return Math.round(v * s) / s;
}
function table(rows, target) {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cells = [columns, ...rows.map((r) => columns.map((c) => String(r[c] ?? '')))];
  const widths = columns.map((_, i) => Math.max(...cells.map((l) => l[i].length)));
  return `== jobs / ${target}\n` + cells.map((l) => l.map((c, i) => c.padStart(widths[i])).join('  ')).join('\n');
}
function parse(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) {
      throw new Error(`expected --option value, got '${argv[i]}'`);
    }
    out[argv[i].slice(2)] = argv[i + 1];
  }
  return out;
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
