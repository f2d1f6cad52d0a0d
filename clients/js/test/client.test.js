// The package against a real node (JsClientIT starts it with 1 s heartbeats and no clock skew).
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import WebSocket from 'ws';
import { ParleyError } from '../dist/index.js';
import { client, closeAll, eventsOf, mintToken, node, unique, until, worker } from './support.js';

afterEach(closeAll);

const seqs = (events) => events.map((event) => event.seq);
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test('a client resumes each room from the seq it was given and follows it live', async () => {
  const user = unique('ann');
  const room = unique('resume');
  const writer = client({ token: mintToken(user, 600) });
  await writer.connect();
  await writer.createRoom(room);
  for (let i = 1; i <= 4; i++) await writer.send(room, `m${i}`);
  // seq 1 is the room's creation, 2-5 the messages. With the read marker at 5, only a resume
  // that names seq 3 brings 4 and 5.
  await writer.markRead(room, 5);

  const reader = client({ token: mintToken(user, 600), positions: { [room]: 3 } });
  const events = eventsOf(reader, room);
  await reader.connect();
  await until(reader, 'event', () => events.length >= 2, 'the catch-up after seq 3');
  assert.deepEqual(seqs(events), [4, 5]);
  assert.deepEqual(events.map((e) => e.body), ['m3', 'm4']);

  await writer.send(room, 'live');
  await until(reader, 'event', () => events.length >= 3, 'the live event');
  assert.deepEqual(seqs(events), [4, 5, 6]);
  assert.equal(reader.positions[room], 6);
});

test('two users send to each other through a room', async () => {
  const room = unique('pair');
  const alice = client({ token: mintToken(unique('alice'), 600) });
  const bobUser = unique('bob');
  const bob = client({ token: mintToken(bobUser, 600) });
  await Promise.all([alice.connect(), bob.connect()]);
  await alice.createRoom(room, { visibility: 'public', topic: 'pairs' });
  await bob.join(room);
  const heard = eventsOf(alice, room);

  const sent = await bob.send(room, 'hello alice', 'b-1');
  assert.equal(sent.duplicate, false);
  await until(alice, 'event', () => heard.some((e) => e.kind === 'message'), "bob's message");
  const message = heard.find((e) => e.kind === 'message');
  assert.equal(message.body, 'hello alice');
  assert.equal(message.user, bobUser);
  assert.equal(message.seq, sent.seq);

  const again = await bob.send(room, 'hello alice', 'b-1');
  assert.equal(again.duplicate, true, 'the same clientMsgId is written once');
  assert.equal(again.seq, sent.seq);
});

test('a refused request rejects with a ParleyError carrying the wire code', async () => {
  const carol = client({ token: mintToken(unique('carol'), 600) });
  await carol.connect();
  const refused = await carol.send(unique('nowhere'), 'hi').catch((error) => error);
  assert.ok(refused instanceof ParleyError, String(refused));
  assert.equal(refused.code, 'room_not_found');
  assert.equal(refused.retryable, false);
  assert.match(refused.message, /does not exist/);

  const badId = await carol.request('join', { room: 'no spaces allowed' }).catch((error) => error);
  assert.equal(badId.code, 'bad_room_id');
});

test('after the server closes the socket the client reconnects and resumes with nothing missed', async () => {
  const user = unique('dan');
  const room = unique('gap');
  const other = client({ token: mintToken(user, 600) });
  await other.connect();
  await other.createRoom(room);

  // Tokens of 3 s and no refresh: the server ends the connection with 4401 token_expired; the
  // callback gives a fresh token for the reconnect.
  const dropped = client({ token: () => mintToken(user, 3), autoRefresh: false, reconnect: { initialDelay: 200 } });
  const events = eventsOf(dropped, room);
  const closes = [];
  dropped.on('close', (close) => closes.push(close));
  const states = [];
  dropped.on('state', (change) => states.push(change.state));
  await dropped.connect();
  await other.send(room, 'before');
  await until(dropped, 'event', () => events.length >= 1, 'the first message');

  // Written while the connection is closing or gone: the resume must bring each exactly once.
  await until(dropped, 'close', () => closes.length > 0, 'the server closing the connection', 15_000);
  assert.deepEqual(closes[0], { code: 4401, reason: 'token_expired' });
  for (let i = 1; i <= 5; i++) await other.send(room, `while away ${i}`);

  await until(dropped, 'event', () => events.length >= 6, 'the messages written while away');
  assert.deepEqual(seqs(events), range(2, 7), 'each once, in order');
  assert.ok(states.includes('reconnecting'), `states: ${states}`);
  assert.equal(states.at(-1), 'open');
  await other.send(room, 'after');
  await until(dropped, 'event', () => events.length >= 7, 'the live message after the reconnect');
  assert.deepEqual(seqs(events), range(2, 8));
});

test('with roomStart latest a room starts at its newest event, and the room list comes first', async () => {
  const user = unique('ida');
  const room = unique('latest');
  const writer = client({ token: mintToken(user, 600) });
  await writer.connect();
  await writer.createRoom(room, { topic: 'old news' });
  for (let i = 1; i <= 3; i++) await writer.send(room, `unread ${i}`);

  // The read marker is on the creation (seq 1): by default seqs 2-4 come as unread.
  const unread = client({ token: mintToken(user, 600) });
  const backlog = eventsOf(unread, room);
  await unread.connect();
  await until(unread, 'event', () => backlog.length >= 3, 'the unread events');
  assert.deepEqual(seqs(backlog), [2, 3, 4]);

  const latest = client({ token: mintToken(user, 600), roomStart: 'latest' });
  const order = [];
  latest.on('rooms', ({ rooms }) => order.push({ rooms }));
  latest.on('state', ({ state }) => order.push(state));
  const live = eventsOf(latest, room);
  await latest.connect();
  const listed = order.find((entry) => entry.rooms)?.rooms.find((entry) => entry.room === room);
  assert.equal(listed?.lastSeq, 4);
  assert.equal(listed.topic, 'old news');
  assert.ok(order.indexOf('open') > order.findIndex((entry) => entry.rooms), `the list before open: ${JSON.stringify(order)}`);
  assert.equal(latest.positions[room], 4);
  await writer.send(room, 'live');
  await until(latest, 'event', () => live.length >= 1, 'the live message');
  assert.deepEqual(seqs(live), [5], 'nothing of the past, the live event once');
});

/** A WebSocket for a network the test switches off: while `down`, every new socket is refused. */
function switchableNetwork() {
  const network = new EventTarget();
  network.down = false;
  network.WebSocket = class extends WebSocket {
    constructor(url, protocols) {
      super(network.down ? 'ws://127.0.0.1:1/v1/ws' : url, protocols);
    }
  };
  network.set = (up) => {
    network.down = !up;
    network.dispatchEvent(new Event(up ? 'online' : 'offline'));
  };
  return network;
}

test('the network\'s offline event drops the connection at once; online reconnects at once and resumes', async () => {
  const user = unique('jon');
  const room = unique('network');
  const other = client({ token: mintToken(unique('kit'), 600) });
  await other.connect();
  await other.createRoom(room);
  const network = switchableNetwork();
  // Backoff so long that only the online event can bring the connection back within the test.
  const away = client({
    token: mintToken(user, 600), WebSocket: network.WebSocket, networkEventTarget: network, transports: ['websocket'],
    reconnect: { initialDelay: 60_000, maxDelay: 60_000 },
  });
  const states = [];
  away.on('state', (change) => states.push(change));
  const events = eventsOf(away, room);
  const first = await away.connect();
  await away.join(room);

  network.set(false);
  assert.equal(states.at(-1).state, 'reconnecting', 'dropped on the event, not at the heartbeat');
  assert.ok(states.at(-1).delay >= 30_000, `the next attempt is far off: ${JSON.stringify(states.at(-1))}`);
  assert.equal(away.welcome, null);
  await other.send(room, 'while away');

  const back = Date.now();
  network.set(true);
  await away.whenReady();
  assert.ok(Date.now() - back < 5_000, 'reconnected without waiting out the backoff');
  assert.notEqual(away.welcome.session, first.session, 'a new connection');
  await until(away, 'event', () => events.some((e) => e.body === 'while away'), 'what was written while away');
});

test('retryNow skips the backoff\'s wait', async () => {
  const network = switchableNetwork();
  network.down = true;
  const late = client({
    token: mintToken(unique('lou'), 600), WebSocket: network.WebSocket, networkEventTarget: null, transports: ['websocket'],
    reconnect: { initialDelay: 60_000, maxDelay: 60_000 },
  });
  const states = [];
  late.on('state', ({ state }) => states.push(state));
  const connected = late.connect();
  await until(late, 'state', () => states.includes('reconnecting'), 'a refused first attempt');
  network.down = false;
  const asked = Date.now();
  late.retryNow();
  await connected;
  assert.ok(Date.now() - asked < 5_000, 'connected at once, not in a minute');
});

test('the server\'s heartbeats are answered: an idle connection outlives several heartbeat deadlines', async () => {
  const idle = client({ token: mintToken(unique('hal'), 600) });
  let pings = 0;
  idle.on('ping', () => (pings += 1));
  const closes = [];
  idle.on('close', (close) => closes.push(close));
  const welcome = await idle.connect();
  assert.equal(welcome.pingInterval + welcome.pingTimeout, 2000, 'the node closes a silent client after 2 s here');
  // The client sends nothing of its own meanwhile: only its pongs keep the connection.
  await until(idle, 'ping', () => pings >= 5, 'five pings', 15_000);
  assert.deepEqual(closes, [], 'the server never closed the connection');
  assert.equal(idle.welcome.session, welcome.session, 'still the first connection');
  await idle.request('ping', {});
});

test('the token is refreshed before it expires: one connection outlives several tokens', async () => {
  const user = unique('erin');
  let minted = 0;
  const erin = client({
    token: () => {
      minted += 1;
      return mintToken(user, 4);
    },
  });
  const refreshed = [];
  erin.on('refreshed', (r) => refreshed.push(r));
  const closes = [];
  erin.on('close', (close) => closes.push(close));
  const welcome = await erin.connect();
  assert.ok(welcome.tokenExpiresIn > 0 && welcome.tokenExpiresIn <= 4000, JSON.stringify(welcome));
  assert.equal(welcome.pingInterval, 1000, 'the node pings every second here');

  // Three refreshes at half of a 4 s life take about 6 s: past the first token's expiry, on the
  // same connection.
  await until(erin, 'refreshed', () => refreshed.length >= 3, 'three refreshes', 15_000);
  assert.deepEqual(closes, [], 'the server never closed the connection');
  assert.equal(erin.welcome.session, welcome.session, 'still the first connection');
  assert.ok(refreshed.every((r) => r.tokenExpiresIn > 0 && r.tokenExpiresIn <= 4000));
  assert.equal(minted, 4, 'one token to connect, one per refresh');
  await erin.request('ping', {});
});

test('a refresh with another user\'s token is refused with token_user_mismatch', async () => {
  let next = mintToken(unique('fay'), 600);
  const fay = client({ token: () => next, autoRefresh: false });
  await fay.connect();
  next = mintToken(unique('intruder'), 600);
  const refused = await fay.refresh().catch((error) => error);
  assert.equal(refused.code, 'token_user_mismatch');
  await fay.request('ping', {});
});

test('a job is submitted and followed to completion through pushes and long polls', async () => {
  const gus = client({ token: mintToken(unique('gus'), 600) });
  await gus.connect();
  const pushed = [];
  gus.on('job', (job) => pushed.push(job));

  const submitted = await gus.submitJob(node.queue, { data: { report: 'q3' } }, { idempotencyKey: unique('report') });
  assert.equal(submitted.state, 'waiting');
  assert.equal(submitted.version, 1);
  const followed = [];
  const following = (async () => {
    for await (const job of gus.followJob(submitted.id, { wait: 5000 })) followed.push(job);
  })();

  const leased = (await worker('POST', `/v1/queues/${node.queue}/lease?max=1&wait=10000`)).jobs[0];
  assert.equal(leased.id, submitted.id);
  await worker('POST', `/v1/jobs/${leased.id}/progress`, { leaseId: leased.leaseId, progress: { pct: 50 } });
  await worker('POST', `/v1/jobs/${leased.id}/complete`, { leaseId: leased.leaseId, result: { rows: 12 } });
  await following;

  const last = followed.at(-1);
  assert.equal(last.state, 'completed');
  assert.deepEqual(last.result, { rows: 12 });
  const versions = followed.map((job) => job.version);
  assert.deepEqual(versions, [...versions].sort((a, b) => a - b), 'in version order');
  assert.equal(new Set(versions).size, versions.length, 'each version once');
  await until(gus, 'job', () => pushed.some((job) => job.state === 'completed'), 'the completed push');
  assert.deepEqual(pushed.map((job) => job.version), [1, 2, 3, 4], 'every change pushed once, in order');
  assert.equal((await gus.waitForJob(submitted.id)).state, 'completed');

  const missing = await gus.getJob(`${node.queue}:0:${'0'.repeat(32)}`).catch((error) => error);
  assert.ok(missing instanceof ParleyError);
  assert.equal(missing.code, 'job_not_found');
  assert.equal(missing.status, 404);
});

/**
 * A `ws` socket that hands the page the reply to `resume` only together with the push after it
 * (pings pass meanwhile), in one task, as happens when both come in one read from the network.
 */
class ResumeReplyWithNextFrame extends WebSocket {
  #resumeId = null;
  #held = null;
  #handler = null;

  send(data, ...rest) {
    const frame = JSON.parse(String(data));
    if (frame.type === 'resume') this.#resumeId = frame.id;
    super.send(data, ...rest);
  }

  get onmessage() {
    return this.#handler;
  }

  set onmessage(handler) {
    this.#handler = handler;
    super.onmessage = (message) => {
      const frame = JSON.parse(String(message.data));
      if (this.#resumeId !== null && frame.id === this.#resumeId) {
        this.#held = message;
        return;
      }
      if (this.#held && frame.type !== 'ping') {
        const reply = this.#held;
        this.#held = null;
        this.#handler(reply);
      }
      this.#handler(message);
    };
  }
}

test("the 'open' state comes before the events a resume brings, even when they arrive with its reply", async () => {
  const user = unique('eve');
  const room = unique('order');
  const writer = client({ token: mintToken(user, 600) });
  await writer.connect();
  await writer.createRoom(room);
  for (let i = 1; i <= 3; i++) await writer.send(room, `m${i}`);

  const reader = client({ token: mintToken(user, 600), positions: { [room]: 1 }, WebSocket: ResumeReplyWithNextFrame });
  const seen = [];
  reader.on('state', (change) => seen.push(change.state));
  reader.on('event', (event) => {
    if (event.room === room) seen.push(event.seq);
  });
  await reader.connect();
  await until(reader, 'event', () => seen.filter((entry) => typeof entry === 'number').length >= 3, 'the catch-up');
  assert.deepEqual(seen, ['connecting', 'open', 2, 3, 4]);
});
