// The package as a user gets it: `npm pack`, installed into a fresh project, its types checked
// by tsc there and its quick start run against the node (the job worker's example type-checked).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { node, mintToken, unique } from './support.js';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'parley-client-pack-'));
after(() => rmSync(work, { recursive: true, force: true }));

const run = (command, args, cwd, env = {}) =>
  execFileSync(command, args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

test('a fresh project installs the packed tarball, type-checks against it and talks to the node; the README quick start runs', async () => {
  run('npm', ['pack', '--pack-destination', work], packageDir);
  const tarball = readdirSync(work).find((name) => name.endsWith('.tgz'));
  assert.ok(tarball, 'npm pack made a tarball');

  const app = join(work, 'app');
  run('mkdir', ['-p', app], work);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  // ws, and for tsc its types, Node's and TypeScript, at the versions this package is built with.
  const pinned = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8')).devDependencies;
  const tools = ['ws', '@types/ws', '@types/node', 'typescript'].map((name) => `${name}@${pinned[name]}`);
  run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(work, tarball), ...tools], app);

  writeFileSync(join(app, 'main.ts'), `
import WebSocket from 'ws';
import { ParleyClient, ParleyError, type RoomEvent } from '@parley/client';

const client = new ParleyClient({ url: process.env.PARLEY_URL!, token: process.env.TOKEN!, WebSocket });
const heard: RoomEvent[] = [];
client.on('event', (e) => heard.push(e));
await client.connect();
const room: string = process.env.ROOM!;
const created: number = (await client.createRoom(room)).seq;
const sent = await client.send(room, 'from a fresh project');
const refused = await client.join('bad room id').catch((e: ParleyError) => e.code);
client.close();
console.log(JSON.stringify({ created, seq: sent.seq, refused }));
`);
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out', types: ['node'] },
    files: ['main.ts', 'quickstart.ts', 'worker.ts'],
  }));
  // The README's quick start as written, pointed at this node.
  const readme = readFileSync(join(packageDir, 'README.md'), 'utf8');
  const quickstart = readme.match(/## Quick start\n\n```ts\n([\s\S]*?)```/)[1];
  writeFileSync(join(app, 'quickstart.ts'), quickstart.replaceAll('http://localhost:8080', node.url));
  // The job worker's example is type-checked only: run, it would take the suite's jobs.
  writeFileSync(join(app, 'worker.ts'), readme.match(/## Job worker\n[\s\S]*?```ts\n([\s\S]*?)```/)[1]);
  run('node', ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], app);

  const out = run('node', ['out/main.js'], app, { PARLEY_URL: node.url, TOKEN: mintToken(unique('fresh'), 600), ROOM: unique('fresh') });
  assert.deepEqual(JSON.parse(out), { created: 1, seq: 2, refused: 'bad_room_id' });

  // The quick start stays connected, as a chat client does: wait for alice's own message, then stop it.
  const started = spawn('node', ['out/quickstart.js'], { cwd: app });
  let output = '';
  const heard = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 20_000);
    started.stdout.on('data', (chunk) => {
      output += chunk;
      if (/^lobby #\d+ alice: hello$/m.test(output)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    started.stderr.on('data', (chunk) => (output += chunk));
  });
  started.kill();
  assert.ok(heard, `the quick start printed its own message:\n${output}`);
});
