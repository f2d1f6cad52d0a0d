// A terminal chat on @parley/client (README.md beside it): joins a room, says hello, sends
// every line you type, prints every event that arrives, and submits a job it then follows.
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { ParleyClient, ParleyError } from '@parley/client';

const url = process.env.PARLEY_URL ?? 'http://localhost:8080';
const user = process.env.PARLEY_USER ?? 'alice';
const room = process.env.PARLEY_ROOM ?? 'lobby';
const queue = process.env.PARLEY_JOB_QUEUE ?? 'default';

// Only a dev node (./parley run) hands out tokens like this; a real application gets its
// user's token from its own backend. The client calls it for every connection and refresh.
async function devToken() {
  const response = await fetch(`${url}/v1/dev/token`, { method: 'POST', body: JSON.stringify({ user }) });
  if (!response.ok) throw new Error(`POST ${url}/v1/dev/token answered ${response.status}: is it a dev node (./parley run)?`);
  return (await response.json()).token;
}

// The client would keep retrying a node that is not there; say so and stop instead.
await devToken().catch((error) => {
  console.error(`no Parley dev node at ${url}: ${error.cause?.message ?? error.message}`);
  process.exit(1);
});

const client = new ParleyClient({ url, token: devToken, WebSocket });
client.on('event', (e) => console.log(`${e.room} #${e.seq} ${e.user}: ${e.kind === 'message' ? e.body : `(${e.kind})`}`));
client.on('state', ({ state, transport }) => console.log(`[${state}${transport ? ` over ${transport}` : ''}]`));
client.on('error', (error) => console.error(`[error] ${error.message}`));

const welcome = await client.connect();
console.log(`connected as ${welcome.user} to ${welcome.node}`);

// Creating a room again with the same settings is fine; a room someone else made is joined.
await client.createRoom(room).catch((error) => {
  if (error instanceof ParleyError && error.code === 'room_exists') return client.join(room);
  throw error;
});

// Wait for the greeting to come back as an event, so even a run without input shows the round trip.
const greeting = randomUUID();
const heard = new Promise((resolve) => {
  const stop = client.on('event', (e) => {
    if (e.room === room && e.clientMsgId === greeting) {
      stop();
      resolve();
    }
  });
});
const sent = await client.send(room, `hello from ${user}`, greeting);
console.log(`sent #${sent.seq}`);
await heard;

// A job for whatever worker serves the queue (./parley worker echoes its data back).
try {
  const job = await client.submitJob(queue, { data: { from: user, room, ms: 1000 } });
  console.log(`job ${job.id} ${job.state} on queue ${queue}`);
  void followJob(job.id, job.version);
} catch (error) {
  if (!(error instanceof ParleyError)) throw error;
  console.log(`job refused: ${error.code} (${error.message})`);
}

async function followJob(id, seen) {
  try {
    for await (const job of client.followJob(id)) {
      if (job.version <= seen) continue;
      const detail = job.state === 'completed' ? job.result : job.state === 'failed' ? job.error : job.progress;
      console.log(`job ${id} ${job.state}${detail === null ? '' : ` ${JSON.stringify(detail)}`}`);
    }
  } catch (error) {
    console.error(`[error] following job ${id}: ${error.message}`);
  }
}

console.log(`type a line to send it to ${room}; Ctrl-D or Ctrl-C to quit`);
const input = createInterface({ input: process.stdin });
const sending = new Set();
input.on('line', (line) => {
  if (line.trim() === '') return;
  const send = client.send(room, line).catch((error) => console.error(`[error] not sent: ${error.code ?? error.message}`));
  sending.add(send);
  send.finally(() => sending.delete(send));
});
// Input ended (Ctrl-D, or the end of a pipe): let the last lines be acknowledged first.
const quit = async () => {
  await Promise.allSettled(sending);
  client.close();
  process.exit(0);
};
input.on('close', quit);
input.on('SIGINT', quit);
process.on('SIGINT', quit);
