// ParleyDocument: first against a scripted connection (ordering, cursors, resyncs, with no
// node), then against a real node (JsClientIT starts it).
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { ParleyDocument, ParleyError } from '../dist/index.js';
import { client, closeAll, mintToken, unique } from './support.js';

afterEach(closeAll);

/** A connection whose requests wait until the test answers them, and whose pushes the test sends. */
class ScriptedConnection {
  welcome = { user: 'me' };
  transport = 'websocket';
  requests = [];
  listeners = new Map();

  on(type, listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(listener);
    return () => this.listeners.get(type).delete(listener);
  }

  request(type, fields) {
    return new Promise((resolve, reject) => this.requests.push({ type, fields, resolve, reject }));
  }

  push(type, fields) {
    for (const listener of this.listeners.get(type) ?? []) listener(fields);
  }

  /** The oldest unanswered request of `type`. */
  take(type) {
    const index = this.requests.findIndex((r) => r.type === type);
    assert.notEqual(index, -1, `no ${type} request was sent`);
    return this.requests.splice(index, 1)[0];
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

async function opened(connection, text, revision = 0, cursors = []) {
  const opening = ParleyDocument.open(connection, 'spec');
  connection.take('doc_open').resolve({ doc: 'spec', text, revision, owner: 'me', editors: [], cursors });
  return opening;
}

test('server revisions apply in order even when an ack is handled after the push that follows it', async () => {
  const connection = new ScriptedConnection();
  const doc = await opened(connection, 'ab');
  doc.insert(2, 'c');
  const submit = connection.take('doc_submit');
  assert.deepEqual(submit.fields.op, [2, 'c']);
  assert.equal(submit.fields.revision, 0);

  connection.push('doc_op', { doc: 'spec', revision: 2, op: [3, 'd'], author: 'bob', clientOpId: 'b-1' });
  assert.equal(doc.text, 'abc', 'revision 2 waits for revision 1');
  submit.resolve({ doc: 'spec', revision: 1, clientOpId: submit.fields.clientOpId });
  await settle();
  assert.equal(doc.text, 'abcd');
  assert.equal(doc.revision, 2);
  assert.equal(doc.state.kind, 'synchronized');
});

test('edits made while one is in flight go as one operation after its ack, transformed past others', async () => {
  const connection = new ScriptedConnection();
  const doc = await opened(connection, 'hello');
  doc.insert(5, '!');
  const first = connection.take('doc_submit');
  doc.insert(0, '😀');
  doc.insert(2, ' ');
  assert.equal(doc.text, '😀 hello!');
  assert.equal(doc.state.kind, 'awaitingWithBuffer');
  connection.push('doc_op', { doc: 'spec', revision: 1, op: [5, ' world'], author: 'bob', clientOpId: 'b-1' });
  assert.equal(doc.text, '😀 hello! world', 'ties go to the client, as on the server');
  first.resolve({ doc: 'spec', revision: 2, clientOpId: first.fields.clientOpId });
  await settle();
  const second = connection.take('doc_submit');
  assert.deepEqual(second.fields.op, ['😀 ', 12]);
  assert.equal(second.fields.revision, 2);
  assert.notEqual(second.fields.clientOpId, first.fields.clientOpId);
});

test('remote cursors are moved to local positions past local edits and remote operations', async () => {
  const connection = new ScriptedConnection();
  const doc = await opened(connection, 'hello', 0, [{ user: 'bob', session: 's-bob', position: 5, selectionEnd: 5 }]);
  assert.equal(doc.cursors.get('s-bob').position, 5);
  doc.insert(0, '👋 ');
  assert.equal(doc.cursors.get('s-bob').position, 8, 'a local insert before the cursor moves it on, two units for the emoji');
  const submit = connection.take('doc_submit');

  connection.push('doc_op', { doc: 'spec', revision: 1, op: [5, ' world'], author: 'bob', clientOpId: 'b-1' });
  // bob's cursor at revision 1, in the server's text "hello world" (no 👋 yet): its end.
  connection.push('doc_cursor', { doc: 'spec', user: 'bob', session: 's-bob', revision: 1, position: 11, selectionEnd: 6 });
  assert.equal(doc.text, '👋 hello world');
  assert.deepEqual(doc.cursors.get('s-bob'), { user: 'bob', session: 's-bob', position: 14, selectionEnd: 9 });

  // A cursor of a revision not yet here waits for it.
  connection.push('doc_cursor', { doc: 'spec', user: 'bob', session: 's-bob', revision: 2, position: 0, selectionEnd: 0 });
  assert.equal(doc.cursors.get('s-bob').position, 14);
  submit.resolve({ doc: 'spec', revision: 2, clientOpId: submit.fields.clientOpId });
  await settle();
  assert.equal(doc.cursors.get('s-bob').position, 0);

  connection.push('doc_cursor_removed', { doc: 'spec', user: 'bob', session: 's-bob' });
  assert.equal(doc.cursors.size, 0);
});

test('doc_resync with resync_required opens the document again and takes its text', async () => {
  const connection = new ScriptedConnection();
  const doc = await opened(connection, 'abc');
  const resyncs = [];
  doc.on('resync', (r) => resyncs.push(r));
  doc.insert(3, 'd');
  connection.take('doc_submit');
  connection.push('doc_resync', { doc: 'spec', code: 'resync_required', message: 'fell behind' });
  connection.take('doc_open').resolve({ doc: 'spec', text: 'server text', revision: 1200, owner: 'me', editors: [], cursors: [] });
  await settle();
  assert.equal(doc.text, 'server text');
  assert.equal(doc.revision, 1200);
  assert.equal(doc.pending, false);
  assert.deepEqual(resyncs, [{ code: 'resync_required', message: 'fell behind' }]);
  doc.insert(0, '>');
  assert.equal(connection.take('doc_submit').fields.revision, 1200);
});

test('after a reconnect, doc_ops resync_required means taking the text of doc_open', async () => {
  const connection = new ScriptedConnection();
  const doc = await opened(connection, 'abc');
  const resyncs = [];
  doc.on('resync', (r) => resyncs.push(r.code));
  doc.insert(0, 'x');
  connection.take('doc_submit').reject(new ParleyError('connection_lost', 'dropped'));
  connection.push('state', { state: 'reconnecting' });
  connection.push('state', { state: 'open' });
  connection.take('doc_open').resolve({ doc: 'spec', text: 'far ahead', revision: 5000, owner: 'me', editors: [], cursors: [] });
  await settle();
  const ops = connection.take('doc_ops');
  assert.equal(ops.fields.revision, 0);
  ops.reject(new ParleyError('resync_required', 'too old'));
  await settle();
  assert.equal(doc.text, 'far ahead');
  assert.equal(doc.revision, 5000);
  assert.deepEqual(resyncs, ['resync_required']);
});

test('after a reconnect the missed operations are applied and the in-flight one is sent again', async () => {
  const connection = new ScriptedConnection();
  const doc = await opened(connection, 'abc');
  doc.insert(3, '!');
  const lost = connection.take('doc_submit');
  lost.reject(new ParleyError('connection_lost', 'dropped'));
  connection.push('state', { state: 'open' });
  connection.take('doc_open').resolve({ doc: 'spec', text: 'ignored', revision: 1, owner: 'me', editors: [], cursors: [] });
  await settle();
  connection.take('doc_ops').resolve({ doc: 'spec', fromRevision: 0, revision: 1, ops: [{ revision: 1, op: ['>', 3], author: 'bob', clientOpId: 'b-1' }] });
  await settle();
  assert.equal(doc.text, '>abc!');
  const again = connection.take('doc_submit');
  assert.equal(again.fields.clientOpId, lost.fields.clientOpId);
  assert.equal(again.fields.revision, 1);
  assert.deepEqual(again.fields.op, [4, '!']);
});

test('a refused operation resynchronizes, forbidden closes', async () => {
  const connection = new ScriptedConnection();
  const doc = await opened(connection, 'abc');
  const events = [];
  doc.on('resync', (r) => events.push(`resync ${r.code}`));
  doc.on('closed', (c) => events.push(`closed ${c.code}`));
  doc.insert(0, 'x');
  connection.take('doc_submit').reject(new ParleyError('document_too_large', 'too large'));
  await settle();
  connection.take('doc_open').resolve({ doc: 'spec', text: 'abc', revision: 0, owner: 'me', editors: [], cursors: [] });
  await settle();
  assert.equal(doc.text, 'abc');
  connection.push('doc_resync', { doc: 'spec', code: 'forbidden', message: 'left the room' });
  assert.deepEqual(events, ['resync document_too_large', 'closed forbidden']);
  assert.throws(() => doc.insert(0, 'y'));
});

// Against a real node.

async function twoEditors(text) {
  const aliceUser = unique('alice');
  const bobUser = unique('bob');
  const alice = client({ token: mintToken(aliceUser, 600) });
  const bob = client({ token: mintToken(bobUser, 600) });
  await Promise.all([alice.connect(), bob.connect()]);
  const id = unique('doc');
  await alice.request('doc_create', { doc: id, text, editors: [bobUser] });
  const [a, b] = await Promise.all([alice.openDocument(id), bob.openDocument(id)]);
  return { alice, bob, a, b };
}

/** Resolves once `condition()` holds, checked on every event of `docs`. */
function whenAll(docs, condition, what, ms = 20_000) {
  return new Promise((resolve, reject) => {
    const stops = [];
    const done = (error) => {
      clearTimeout(timer);
      stops.forEach((stop) => stop());
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${what}: ${docs.map((d) => JSON.stringify(d.text)).join(' / ')}`)), ms);
    const check = () => condition() && done();
    for (const doc of docs) for (const type of ['change', 'ack', 'cursors', 'resync']) stops.push(doc.on(type, check));
    check();
  });
}

test('two editors typing at once, emoji included, converge on one text', async () => {
  const { a, b } = await twoEditors('hello');
  for (let i = 0; i < 5; i++) {
    a.insert(0, i % 2 ? '😀' : 'a');
    b.insert(b.text.length, i % 2 ? '𝄞' : 'b');
    if (i === 2) b.delete(0, 1);
  }
  // With nothing unacknowledged on either side and one revision, each has every edit.
  const settled = () => !a.pending && !b.pending && a.revision === b.revision;
  await whenAll([a, b], settled, 'both editors to settle');
  assert.equal(a.text, b.text);
  assert.equal(a.text.replace(/[a😀]/gu, '').replace(/[b𝄞]/gu, ''), 'ello');
  assert.equal([...a.text].filter((c) => c === '😀').length, 2);
});

test("an editor sees the other's cursor at local positions", async () => {
  const { a, b } = await twoEditors('0123456789');
  b.moveCursor(4, 6);
  await whenAll([a], () => a.cursors.size === 1, "bob's cursor");
  assert.deepEqual([...a.cursors.values()].map((c) => [c.position, c.selectionEnd]), [[4, 6]]);
  a.insert(0, '🎉');
  assert.deepEqual([...a.cursors.values()].map((c) => [c.position, c.selectionEnd]), [[6, 8]]);
  b.delete(0, 2);
  await whenAll([a], () => a.text === '🎉23456789' && !a.pending, "bob's delete");
  assert.deepEqual([...a.cursors.values()].map((c) => [c.position, c.selectionEnd]), [[4, 6]]);
});

test('edits made while the connection is down are sent once it is back, exactly once', async () => {
  const { alice, a, b } = await twoEditors('abc');
  alice.connection.socket.close();
  a.insert(3, '1');
  a.insert(4, '2');
  b.insert(0, '>');
  await whenAll([a, b], () => a.text === '>abc12' && b.text === '>abc12' && !a.pending && a.isLive, 'the offline edits to arrive');
  assert.equal(b.revision, a.revision);
});
