// The package's side of docs/ot-vectors.json, the cases the server's OT
// (src/test/java/parley/collab/document/OtVectorsTest.java) is held to as well: every expected
// output there must be what TextOperation and OtClient give here. Needs no node.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { OtClient, ParleyError, TextOperation } from '../dist/index.js';

const vectors = JSON.parse(readFileSync(new URL('../../../docs/ot-vectors.json', import.meta.url), 'utf8'));
const op = (wire) => TextOperation.fromWire(wire);

/** Runs each case of `section`; a case with `error` must be refused with that code instead. */
function cases(section, check) {
  describe(section, () => {
    assert.ok(vectors[section]?.length > 0, `docs/ot-vectors.json has no ${section} cases`);
    for (const c of vectors[section]) {
      test(c.name, () => {
        if (c.error === undefined) {
          check(c);
        } else {
          assert.throws(() => check(c), (error) => error instanceof ParleyError && error.code === c.error);
        }
      });
    }
  });
}

cases('normalize', (c) => assert.deepEqual(op(c.wire).toWire(), c.op));

cases('apply', (c) => assert.equal(op(c.op).apply(c.doc), c.result));

cases('invert', (c) => assert.deepEqual(op(c.op).invert(c.doc).toWire(), c.result));

cases('compose', (c) => {
  const composed = op(c.a).compose(op(c.b));
  assert.deepEqual(composed.toWire(), c.result);
  assert.equal(composed.apply(c.doc), c.text);
});

cases('transform', (c) => {
  const a = op(c.a);
  const b = op(c.b);
  const [aPrime, bPrime] = TextOperation.transform(a, b);
  assert.deepEqual(aPrime.toWire(), c.aPrime);
  assert.deepEqual(bPrime.toWire(), c.bPrime);
  assert.equal(aPrime.apply(b.apply(c.doc)), c.text);
  assert.equal(bPrime.apply(a.apply(c.doc)), c.text);
});

cases('transformIndex', (c) => assert.equal(op(c.op).transformIndex(c.index), c.result));

cases('client', (c) => {
  let state = OtClient.synced();
  let text = c.doc;
  c.steps.forEach((step, i) => {
    const where = `step ${i + 1}`;
    if (step.local) {
      const edit = op(step.local);
      text = edit.apply(text);
      const out = OtClient.applyClient(state, edit);
      state = out.state;
      assert.deepEqual(out.send?.toWire() ?? null, step.send, where);
    } else if (step.server) {
      const incoming = OtClient.applyServer(state, op(step.server));
      state = incoming.state;
      text = incoming.apply.apply(text);
      assert.deepEqual(incoming.apply.toWire(), step.apply, where);
    } else {
      const out = OtClient.serverAck(state);
      state = out.state;
      assert.deepEqual(out.send?.toWire() ?? null, step.send, where);
    }
    assert.equal(text, step.text, where);
    assert.deepEqual(describeState(state), step.state, where);
  });
});

function describeState(state) {
  switch (state.kind) {
    case 'synchronized':
      return { kind: state.kind };
    case 'awaitingConfirm':
      return { kind: state.kind, outstanding: state.outstanding.toWire() };
    default:
      return { kind: state.kind, outstanding: state.outstanding.toWire(), buffer: state.buffer.toWire() };
  }
}

test('operations serialize to their wire form', () => {
  assert.equal(JSON.stringify({ op: op([3, 'hi', -2]) }), '{"op":[3,"hi",-2]}');
});

// TextOperation.diff is the package's own (the server has no text field to read): an editor
// on a <textarea> turns each input event into the operation it sends.
describe('diff: the operation a text field edit made', () => {
  const diff = (before, after, caret) => TextOperation.diff(before, after, caret).toWire();

  test('typing, deleting and replacing a selection are one span each', () => {
    assert.deepEqual(diff('hello', 'hello!', 6), [5, '!']);
    assert.deepEqual(diff('hello', 'hllo', 1), [1, -1, 3]);
    assert.deepEqual(diff('hello world', 'hello there', 11), [6, 'there', -5]);
    assert.deepEqual(diff('same', 'same', 2), [4]);
    assert.deepEqual(diff('', 'pasted text', 11), ['pasted text']);
  });

  test('the caret places an edit the texts alone leave ambiguous', () => {
    assert.deepEqual(diff('aa', 'aaa', 2), [1, 'a', 1], 'typed at 1');
    assert.deepEqual(diff('aa', 'aaa', 1), ['a', 2], 'typed at 0');
    assert.deepEqual(diff('aa', 'aaa'), [2, 'a'], 'no caret: at the end');
    assert.deepEqual(diff('abab', 'ab', 2), [2, -2], 'deleted before the caret');
    assert.deepEqual(diff('abab', 'ab', 0), [-2, 2], 'deleted after the caret');
  });

  test('never splits a surrogate pair', () => {
    assert.deepEqual(diff('a😀b', 'a😁b', 3), [1, '😁', -2, 1]);
    assert.deepEqual(diff('😀', '😀😀', 4), [2, '😀']);
  });

  test('applied to the text before, gives the text after, whatever the caret', () => {
    const alphabet = ['a', 'b', '😀', ' '];
    const random = (n) => Array.from({ length: n }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join('');
    for (let i = 0; i < 500; i++) {
      const before = random(Math.floor(Math.random() * 8));
      const after = random(Math.floor(Math.random() * 8));
      const caret = Math.floor(Math.random() * (after.length + 1));
      assert.equal(TextOperation.diff(before, after, caret).apply(before), after, `${JSON.stringify(before)} → ${JSON.stringify(after)} at ${caret}`);
    }
  });
});
