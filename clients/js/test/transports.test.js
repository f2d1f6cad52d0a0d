// The fallback transports against a real node: with no WebSocket to be had the client goes on
// over SSE with REST, and with no stream either over long-polling, with the same API; each
// resumes by cursor, so what was written while it was away arrives once, in order.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import WebSocket from 'ws';
import { ParleyError } from '../dist/index.js';
import { client, closeAll, eventsOf, mintToken, unique, until } from './support.js';

afterEach(closeAll);

const seqs = (events) => events.map((event) => event.seq);
const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** A WebSocket whose upgrade never succeeds, as behind a proxy that refuses upgrades: nothing listens on port 1. */
class RefusedWebSocket extends WebSocket {
  static opened = 0;
  constructor(url, protocols) {
    super('ws://127.0.0.1:1/v1/ws', protocols);
    RefusedWebSocket.opened += 1;
  }
}

/**
 * `fetch` that records each call's path and query; with `block`, a path starting with it fails
 * as a network error would (a proxy that cannot pass a stream).
 */
function recordingFetch(block) {
  const calls = [];
  const recording = async (url, init) => {
    const { pathname, searchParams } = new URL(url);
    calls.push({ path: pathname, params: Object.fromEntries(searchParams), method: init?.method ?? 'GET' });
    if (block && pathname.startsWith(block)) throw new TypeError('fetch failed (blocked by the test)');
    return fetch(url, init);
  };
  return { fetch: recording, calls };
}

/** The transport each state change named, in order, for `connecting` and `open`. */
function transportsSeen(made) {
  const seen = [];
  made.on('state', (change) => {
    if (change.transport) seen.push(`${change.state}:${change.transport}`);
  });
  return seen;
}

test('a WebSocket that cannot be opened gives way to SSE: pushes on the stream, requests over REST, the same typed errors', async () => {
  const user = unique('sam');
  const room = unique('sse');
  const { fetch, calls } = recordingFetch();
  const sam = client({ token: mintToken(user, 600), WebSocket: RefusedWebSocket, fetch });
  const states = transportsSeen(sam);
  const events = eventsOf(sam, room);
  const welcome = await sam.connect();

  assert.equal(sam.transport, 'sse');
  assert.deepEqual(states, ['connecting:websocket', 'connecting:sse', 'open:sse'], 'tried the WebSocket first, then SSE');
  assert.equal(welcome.user, user);
  assert.ok(welcome.session, 'the SSE stream welcomes with a session');
  assert.equal(welcome.pingInterval, undefined, 'an SSE welcome has no heartbeat to answer');

  assert.equal((await sam.createRoom(room)).seq, 1);
  const sent = await sam.send(room, 'over REST', 's-1');
  assert.equal(sent.duplicate, false);
  assert.equal((await sam.send(room, 'over REST', 's-1')).duplicate, true, 'Idempotency-Key is the clientMsgId');
  await until(sam, 'event', () => events.length >= 2, 'the events on the stream');
  assert.deepEqual(seqs(events), [1, 2]);
  assert.equal(events[1].body, 'over REST');

  const refused = await sam.send(unique('nowhere'), 'hi').catch((error) => error);
  assert.ok(refused instanceof ParleyError, String(refused));
  assert.equal(refused.code, 'room_not_found');
  assert.equal(refused.status, 404);
  assert.equal((await sam.request('join', { room: 'no spaces allowed' }).catch((error) => error)).code, 'bad_room_id');
  assert.equal((await sam.request('doc_ops', { doc: 'd', revision: 0 }).catch((error) => error)).code, 'not_supported');
  await sam.request('ping', {});

  assert.ok(calls.some((call) => call.path === '/v1/events'), 'an SSE stream was opened');
  assert.ok(calls.some((call) => call.path === `/v1/rooms/${room}/messages` && call.method === 'POST'), 'send went over REST');
  assert.ok(!calls.some((call) => call.path === '/v1/poll'), 'no long poll');
  assert.ok(sam.cursor, 'the stream gave a cursor');
});

test('an SSE stream that ends resumes from its cursor: what was written meanwhile arrives once, in order', async () => {
  const user = unique('sue');
  const room = unique('sse-gap');
  const other = client({ token: mintToken(user, 600) });
  await other.connect();
  await other.createRoom(room);

  // Tokens of 3 s and no renewal: the node ends the stream with a 4401 close event.
  const { fetch, calls } = recordingFetch();
  const sue = client({ token: () => mintToken(user, 3), autoRefresh: false, transports: ['sse'], fetch, reconnect: { initialDelay: 200 } });
  const events = eventsOf(sue, room);
  const closes = [];
  sue.on('close', (close) => closes.push(close));
  await sue.connect();
  assert.equal(sue.transport, 'sse');
  await other.send(room, 'before');
  await until(sue, 'event', () => events.length >= 1, 'the first message');

  await until(sue, 'close', () => closes.length > 0, 'the node ending the stream', 15_000);
  assert.deepEqual(closes[0], { code: 4401, reason: 'token_expired' });
  for (let i = 1; i <= 5; i++) await other.send(room, `while away ${i}`);

  await until(sue, 'event', () => events.length >= 6, 'the messages written while away');
  assert.deepEqual(seqs(events), range(2, 7), 'each once, in order');
  const streams = calls.filter((call) => call.path === '/v1/events');
  assert.ok(streams.length >= 2, 'a second stream');
  assert.equal(streams[0].params.cursor, undefined, 'the first stream starts after the read markers');
  assert.ok(streams.at(-1).params.cursor, 'the next one from the cursor');
  await other.send(room, 'after');
  await until(sue, 'event', () => events.length >= 7, 'the live message');
  assert.deepEqual(seqs(events), range(2, 8));
});

test('with no WebSocket and no stream the client long-polls, and resumes each poll from the cursor', async () => {
  const user = unique('pat');
  const room = unique('poll');
  const other = client({ token: mintToken(user, 600) });
  await other.connect();
  await other.createRoom(room);

  const { fetch, calls } = recordingFetch('/v1/events');
  const pat = client({
    token: () => mintToken(user, 3), autoRefresh: false, WebSocket: RefusedWebSocket, fetch, reconnect: { initialDelay: 200 },
  });
  const states = transportsSeen(pat);
  const events = eventsOf(pat, room);
  const closes = [];
  pat.on('close', (close) => closes.push(close));
  const welcome = await pat.connect();
  assert.equal(pat.transport, 'poll');
  assert.deepEqual(states, ['connecting:websocket', 'connecting:sse', 'connecting:poll', 'open:poll'], 'the WebSocket, SSE, then long-polling');
  assert.ok(calls.some((call) => call.path === '/v1/events'), 'SSE was tried');
  assert.equal(welcome.user, user, 'the welcome names the token\'s user');

  const sent = await pat.send(room, 'polled');
  await until(pat, 'event', () => events.length >= 1, 'its own message, polled');
  assert.equal(events[0].seq, sent.seq);
  const refused = await pat.send(unique('nowhere'), 'hi').catch((error) => error);
  assert.ok(refused instanceof ParleyError);
  assert.equal(refused.code, 'room_not_found');

  // The 3 s token expires: the held poll answers with a 4401 close; the next polls go on from its cursor.
  await until(pat, 'close', () => closes.length > 0, 'the poll answering the token expiry', 15_000);
  assert.deepEqual(closes[0], { code: 4401, reason: 'token_expired' });
  for (let i = 1; i <= 5; i++) await other.send(room, `while away ${i}`);
  await until(pat, 'event', () => events.length >= 6, 'the messages written while away');
  assert.deepEqual(seqs(events), range(2, 7), 'each once, in order');
  const polls = calls.filter((call) => call.path === '/v1/poll');
  assert.equal(polls[0].params.cursor, undefined);
  assert.ok(polls.slice(1).every((call) => call.params.cursor), 'every later poll names a cursor');
  assert.equal(pat.transport, 'poll', 'reconnects stay with the transport that worked');
});

test('a node busy starting sessions (503 unavailable) makes the client back off, not fall back to another transport', async () => {
  const user = unique('bea');
  const calls = [];
  let busy = 1;
  // The node's answer while it is starting as many sessions as it may (docs/transports.md).
  const busyOnce = async (url, init) => {
    const { pathname } = new URL(url);
    calls.push(pathname);
    if (pathname === '/v1/events' && busy-- > 0) {
      return new Response(JSON.stringify({ type: 'error', code: 'unavailable', message: 'busy; retry after 1 s' }), {
        status: 503, headers: { 'Content-Type': 'application/json', 'Retry-After': '1' },
      });
    }
    return fetch(url, init);
  };
  const bea = client({ token: mintToken(user, 600), WebSocket: RefusedWebSocket, fetch: busyOnce, reconnect: { initialDelay: 200 } });
  const states = [];
  const delays = [];
  bea.on('state', (change) => {
    states.push(change.transport ? `${change.state}:${change.transport}` : change.state);
    if (change.state === 'reconnecting') delays.push(change.delay);
  });
  await bea.connect();

  assert.equal(bea.transport, 'sse');
  assert.deepEqual(states, ['connecting:websocket', 'connecting:sse', 'reconnecting', 'open:sse'],
    'after the 503 it backed off and started again from the WebSocket');
  assert.ok(delays[0] >= 1000, `it waited out Retry-After: 1, not only its 200 ms backoff (waited ${delays[0]} ms)`);
  assert.deepEqual(calls.filter((path) => path === '/v1/events').length, 2);
  assert.ok(!calls.includes('/v1/poll'), 'long-polling was never tried');
});

test('transports: the client uses only those named; positions fill the gap a cursor-less stream leaves', async () => {
  const user = unique('ivy');
  const room = unique('heal');
  const writer = client({ token: mintToken(user, 600) });
  await writer.connect();
  await writer.createRoom(room);
  for (let i = 1; i <= 4; i++) await writer.send(room, `m${i}`);
  // With the read marker at 5 a stream alone starts after 5: only the positions bring 4 and 5.
  await writer.markRead(room, 5);

  let last = 5;
  for (const transport of ['sse', 'poll']) {
    RefusedWebSocket.opened = 0;
    const reader = client({ token: mintToken(user, 600), transports: [transport], WebSocket: RefusedWebSocket, positions: { [room]: 3 } });
    const events = eventsOf(reader, room);
    await reader.connect();
    assert.equal(reader.transport, transport);
    assert.equal(RefusedWebSocket.opened, 0, 'no WebSocket was tried');
    await until(reader, 'event', () => events.length >= last - 3, `the catch-up after seq 3 over ${transport}`);
    assert.deepEqual(seqs(events), range(4, last), transport);
    assert.deepEqual(events.slice(0, 2).map((e) => e.body), ['m3', 'm4']);
    last = (await writer.send(room, `live over ${transport}`)).seq;
    await until(reader, 'event', () => events.length >= last - 3, 'the live event');
    assert.deepEqual(seqs(events), range(4, last));
    reader.close();
  }
});

