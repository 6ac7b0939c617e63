import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { freePort, startCli, waitUntilReady } from './helpers/cli-process.js';
import { prepareModels } from './helpers/server-fixture.js';
import { workspace } from './helpers/workspace.js';

const root = workspace('process');
let modelsDir: string;

before(async () => {
  modelsDir = await prepareModels(root);
});

test('SIGTERM under load: readiness drops, every accepted request is answered, exit code 0', async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // A long batching delay keeps the requests queued when the signal arrives: draining must flush them.
  const server = startCli(['serve', '--models-dir', modelsDir, '--port', String(port), '--max-batch-delay-ms', '500']);
  await waitUntilReady(base, server);
  const context = 'The museum is by the river in Zurich, near the old town. '.repeat(20);
  const requests = Array.from({ length: 20 }, (_, i) =>
    fetch(`${base}/qa`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ question: `Where is museum ${i}?`, context }),
    }).then(async (r) => ({ status: r.status, body: await r.json() })),
  );
  await new Promise((resolve) => setTimeout(resolve, 150));
  server.child.kill('SIGTERM');
  const results = await Promise.all(requests);
  assert.deepEqual(
    results.map((r) => r.status),
    new Array(20).fill(200),
  );
  assert.ok(results.every((r) => r.body.answer === 'Zurich'));
  assert.equal(await server.exited, 0, server.output());
  assert.match(server.output(), /drained; exiting/);
});

test('a model whose files do not match the manifest stops start-up with a clear error', async () => {
  const brokenRoot = join(root, 'broken');
  mkdirSync(brokenRoot);
  await prepareModels(brokenRoot);
  appendFileSync(join(brokenRoot, 'models', 'qa', 'model.int8.onnx'), Buffer.from([0]));
  const server = startCli([
    'serve',
    '--models-dir',
    join(root, 'broken', 'models'),
    '--port',
    String(await freePort()),
  ]);
  assert.equal(await server.exited, 1);
  assert.match(server.output(), /error: qa: model\.int8\.onnx does not match its sha256 in manifest\.json/);
});

test('first run with no models and no Hub: one clear message naming the two ways forward', async () => {
  const empty = join(root, 'empty-models');
  const server = startCli(['serve', '--models-dir', empty, '--port', String(await freePort())], {
    HF_ENDPOINT: 'http://127.0.0.1:9',
    SBS_CACHE_DIR: join(root, 'cache'),
  });
  assert.equal(await server.exited, 1);
  const output = server.output();
  assert.match(output, /cannot reach the Hugging Face Hub at http:\/\/127\.0\.0\.1:9/);
  assert.match(output, /convert a local checkpoint/);
  assert.match(output, /--demo/);
});

test('--demo generates, converts and serves a random-weight QA model, saying its answers are meaningless', async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = startCli([
    'serve',
    '--demo',
    '--models-dir',
    join(root, 'demo-models'),
    '--port',
    String(port),
    '--precisions',
    'int8',
  ]);
  await waitUntilReady(base, server);
  assert.match(server.output(), /RANDOM weights\. Its answers are MEANINGLESS/);
  const context = 'Sparse models run fast on CPUs.';
  const answer = await (
    await fetch(`${base}/qa`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ question: 'What runs fast?', context }),
    })
  ).json();
  assert.equal(context.slice(answer.start, answer.end), answer.answer);
  server.child.kill('SIGTERM');
  assert.equal(await server.exited, 0);
});
