// Sends that survive a reload: each send waits in a store until acknowledged, and a client
// with the same store sends what is left on its next connection. The node writes a resent
// clientMsgId once (docs/protocol.md, Idempotency). IndexedDB is the browser's store; here it
// runs over fake-indexeddb, an in-memory IndexedDB for Node.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { IDBFactory } from 'fake-indexeddb';
import WebSocket from 'ws';
import { IndexedDBSendStore, MemorySendStore, ParleyError } from '../dist/index.js';
import { client, closeAll, mintToken, unique, until } from './support.js';

afterEach(closeAll);

/** Nothing listens on port 1: the client can never connect, as a page offline. */
class RefusedWebSocket extends WebSocket {
  constructor(url, protocols) {
    super('ws://127.0.0.1:1/v1/ws', protocols);
  }
}

/** A client that cannot connect makes a send, which times out and stays in `store`. */
async function sendOffline(user, store, room, body, clientMsgId) {
  const offline = client({ token: mintToken(user, 600), transports: ['websocket'], WebSocket: RefusedWebSocket, sendStore: store, requestTimeout: 300 });
  offline.connect().catch(() => {});
  const failed = await offline.send(room, body, clientMsgId).catch((error) => error);
  assert.ok(failed instanceof ParleyError);
  assert.equal(failed.code, 'request_timeout');
  offline.close();
}

/** The room's messages with this clientMsgId, as history has them. */
async function messagesWith(reader, room, clientMsgId) {
  const { events } = await reader.history(room, { limit: 200 });
  return events.filter((event) => event.clientMsgId === clientMsgId);
}

for (const transport of ['websocket', 'poll']) {
  test(`a send made offline is sent by the next client with the same store, once; a repeat after a lost ack is a duplicate (${transport})`, async () => {
    const user = unique('quinn');
    const room = unique('queue');
    const owner = client({ token: mintToken(user, 600) });
    await owner.connect();
    await owner.createRoom(room);

    const store = new MemorySendStore();
    await sendOffline(user, store, room, 'written offline', 'q-1');
    assert.deepEqual((await store.list()).map((send) => send.clientMsgId), ['q-1'], 'kept after the timeout and the close');

    // The reload: a new client, the same store.
    const next = client({ token: mintToken(user, 600), transports: [transport], sendStore: store });
    const resent = [];
    next.on('resent', (r) => resent.push(r));
    await next.connect();
    await until(next, 'resent', () => resent.length >= 1, 'the queued send, resent');
    assert.equal(resent[0].send.clientMsgId, 'q-1');
    assert.equal(resent[0].reply.duplicate, false);
    assert.deepEqual(await store.list(), [], 'acknowledged: gone from the store');
    assert.equal((await messagesWith(owner, room, 'q-1')).length, 1);

    // The ack was lost (the page closed between the write and the delete): the send is back in
    // the store, resent, and the node answers with the original seq instead of writing again.
    await store.put({ clientMsgId: 'q-1', room, body: 'written offline', queuedAt: Date.now() });
    const again = client({ token: mintToken(user, 600), transports: [transport], sendStore: store });
    const resentAgain = [];
    again.on('resent', (r) => resentAgain.push(r));
    await again.connect();
    await until(again, 'resent', () => resentAgain.length >= 1, 'the repeat');
    assert.equal(resentAgain[0].reply.duplicate, true);
    assert.equal(resentAgain[0].reply.seq, resent[0].reply.seq);
    assert.deepEqual(await store.list(), []);
    assert.equal((await messagesWith(owner, room, 'q-1')).length, 1, 'written once');
  });
}

test('sends are queued in order and resent oldest first; one refused for good leaves the queue', async () => {
  const user = unique('ray');
  const room = unique('order');
  const owner = client({ token: mintToken(user, 600) });
  await owner.connect();
  await owner.createRoom(room);
  const store = new MemorySendStore();
  for (const id of ['o-1', 'o-2', 'o-3']) await sendOffline(user, store, room, id, id);
  await sendOffline(user, store, unique('nowhere'), 'lost', 'o-4');

  const next = client({ token: mintToken(user, 600), sendStore: store });
  const resent = [];
  next.on('resent', (r) => resent.push(r));
  await next.connect();
  await until(next, 'resent', () => resent.length >= 4, 'all four');
  assert.deepEqual(resent.map((r) => r.send.clientMsgId), ['o-1', 'o-2', 'o-3', 'o-4']);
  const seqs = resent.slice(0, 3).map((r) => r.reply.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'written in the order sent');
  assert.equal(resent[3].error.code, 'room_not_found');
  assert.deepEqual(await store.list(), [], 'nothing left: three acknowledged, one refused for good');

  // A send acknowledged at once never stays in the store.
  await next.send(room, 'online', 'o-5');
  assert.deepEqual(await store.list(), []);
});

test('IndexedDBSendStore keeps sends across instances (a reload) and the client resends from it', async () => {
  const indexedDB = new IDBFactory();
  const first = new IndexedDBSendStore('parley-test', indexedDB);
  await first.put({ clientMsgId: 'b', room: 'r', body: 'second', queuedAt: 2 });
  await first.put({ clientMsgId: 'a', room: 'r', body: 'first', queuedAt: 1 });
  await first.put({ clientMsgId: 'c', room: 'r', body: 'third', queuedAt: 3 });
  await first.delete('c');
  await first.delete('unknown');
  await first.close();

  const reloaded = new IndexedDBSendStore('parley-test', indexedDB);
  assert.deepEqual(await reloaded.list(), [
    { clientMsgId: 'a', room: 'r', body: 'first', queuedAt: 1 },
    { clientMsgId: 'b', room: 'r', body: 'second', queuedAt: 2 },
  ]);
  await reloaded.close();

  // The same through the client: a send made offline, then a new page with a new store object.
  const user = unique('uma');
  const room = unique('idb');
  const owner = client({ token: mintToken(user, 600) });
  await owner.connect();
  await owner.createRoom(room);
  const pageOne = new IndexedDBSendStore('parley-client', indexedDB);
  await sendOffline(user, pageOne, room, 'from IndexedDB', 'i-1');
  await pageOne.close();

  const pageTwo = new IndexedDBSendStore('parley-client', indexedDB);
  const next = client({ token: mintToken(user, 600), sendStore: pageTwo });
  const resent = [];
  next.on('resent', (r) => resent.push(r));
  await next.connect();
  await until(next, 'resent', () => resent.length >= 1, 'the send kept in IndexedDB');
  assert.equal(resent[0].reply.duplicate, false);
  assert.deepEqual(await pageTwo.list(), []);
  assert.equal((await messagesWith(owner, room, 'i-1')).length, 1);
  await pageTwo.close();
});

test('a direct message made offline is queued too, and sent with send_dm by the next client', async () => {
  const user = unique('val');
  const peer = unique('wes');
  const store = new MemorySendStore();
  const offline = client({ token: mintToken(user, 600), transports: ['websocket'], WebSocket: RefusedWebSocket, sendStore: store, requestTimeout: 300 });
  offline.connect().catch(() => {});
  const failed = await offline.sendDm(peer, 'are you there?', 'dm-1').catch((error) => error);
  assert.equal(failed.code, 'request_timeout');
  offline.close();
  assert.deepEqual((await store.list()).map(({ clientMsgId, to, room }) => ({ clientMsgId, to, room })), [{ clientMsgId: 'dm-1', to: peer, room: undefined }]);

  const next = client({ token: mintToken(user, 600), sendStore: store });
  const resent = [];
  next.on('resent', (r) => resent.push(r));
  await next.connect();
  await until(next, 'resent', () => resent.length >= 1, 'the queued direct message');
  assert.equal(resent[0].send.to, peer);
  assert.equal(resent[0].reply.duplicate, false);
  assert.equal(resent[0].reply.room, `dm:${[user, peer].sort().join(':')}`);
  assert.deepEqual(await store.list(), []);
  assert.equal((await messagesWith(next, resent[0].reply.room, 'dm-1')).length, 1);
});
