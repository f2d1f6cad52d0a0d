// The enums the package declares against docs/asyncapi.json, so a code or push the server adds
// fails here until the package knows it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CLOSE_CODES, ERROR_CODES, EVENT_KINDS, PUSH_TYPES, REQUEST_TYPES } from '../dist/index.js';

const spec = JSON.parse(readFileSync(new URL('../../../docs/asyncapi.json', import.meta.url), 'utf8'));
const schemas = spec.components.schemas;

test('error codes, event kinds and close codes match asyncapi.json', () => {
  assert.deepEqual([...ERROR_CODES].sort(), [...schemas.ErrorCode.enum].sort());
  assert.deepEqual([...EVENT_KINDS].sort(), [...schemas.Event.properties.kind.enum].sort());
  assert.deepEqual([...CLOSE_CODES].sort(), [...schemas.Close.properties.code.enum].sort());
});

test('push and request types match the operations of asyncapi.json', () => {
  const titles = (action) =>
    Object.values(spec.operations)
      .filter((operation) => operation.action === action && operation.channel.$ref === '#/channels/websocket')
      .flatMap((operation) => operation.messages.map((message) => spec.components.messages[message.$ref.split('/').at(-1)].title));
  assert.deepEqual([...PUSH_TYPES].sort(), [...new Set(titles('send'))].sort());
  assert.deepEqual([...REQUEST_TYPES].sort(), [...new Set(titles('receive'))].sort());
});
