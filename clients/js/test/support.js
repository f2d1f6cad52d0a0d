// What the tests need of the node they run against (started by JsClientIT, which passes these
// in the environment): its URL, its HS256 secret (to mint tokens that expire in seconds) and a
// worker key with a queue of its own.
import { createHmac, randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { ParleyClient } from '../dist/index.js';

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: these tests run against a node; mvn verify -Dit.test=JsClientIT starts one and runs them`);
  }
  return value;
}

export const node = {
  get url() { return required('PARLEY_URL'); },
  get secret() { return required('PARLEY_AUTH_SECRET'); },
  get workerKey() { return required('PARLEY_WORKER_KEY'); },
  get queue() { return required('PARLEY_JOB_QUEUE'); },
};

/** A name no earlier run used (the node's keyspaces may outlive a run). */
export function unique(prefix) {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** An HS256 token for `user` living `seconds`, as an application backend mints them. */
export function mintToken(user, seconds) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode({ sub: user, iat: now, exp: now + seconds })}`;
  return `${unsigned}.${createHmac('sha256', node.secret).update(unsigned).digest('base64url')}`;
}

const open = new Set();

/** A client of the package under test, closed by closeAll(). */
export function client(options) {
  const made = new ParleyClient({ url: node.url, WebSocket, ...options });
  open.add(made);
  return made;
}

export function closeAll() {
  for (const made of open) made.close();
  open.clear();
}

/** Resolves once `condition()` holds, checked whenever `client` emits `on` (or rejects after `ms`). */
export function until(made, on, condition, what, ms = 20_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`timed out waiting for ${what}`));
    }, ms);
    const check = () => {
      if (condition()) {
        clearTimeout(timer);
        stop();
        resolve();
      }
    };
    const stop = made.on(on, check);
    check();
  });
}

/** Collects a client's room events for one room. */
export function eventsOf(made, room) {
  const events = [];
  made.on('event', (event) => {
    if (event.room === room) events.push(event);
  });
  return events;
}

/** A worker's REST call with the worker key (docs/jobs.md, Working on jobs). */
export async function worker(method, path, body) {
  const response = await fetch(node.url + path, {
    method,
    headers: { Authorization: `Bearer ${node.workerKey}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}
