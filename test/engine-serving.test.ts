/**
 * The engine in the product: int8 models served on it by default, side by side with onnxruntime int8 and fp32, the
 * backend and kernel path visible in /models and /metrics; and the fallback to onnxruntime, said once at start-up,
 * when the addon is absent.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, startCli, waitUntilReady } from './helpers/cli-process.js';
import { requireAddon } from './helpers/engine-fixtures.js';
import { metricValues, plantedQaCheckpoint, startTestServer, type TestServer } from './helpers/server-fixture.js';
import { convert } from '../conversion/convert.js';
import { convertOptions, workspace } from './helpers/workspace.js';

const root = workspace('engine-serving');
const modelsDir = join(root, 'models');
let server: TestServer;
const context = 'The museum is by the river in Zurich, near the old town.';

before(async () => {
  requireAddon();
  await convert(convertOptions(plantedQaCheckpoint(root, 'zurich'), join(modelsDir, 'qa')));
  server = await startTestServer(modelsDir, (config) => (config.runtime.backend = 'both'));
});
after(() => server?.close());

test('--backend engine,onnxruntime serves the engine, onnxruntime int8 and fp32 side by side, and says which is which', async () => {
  const models = (await server.app.inject({ url: '/models' })).json() as {
    name: string;
    backend: string;
    kernel_path: string;
    default: boolean;
  }[];
  const byName = Object.fromEntries(models.map((m) => [m.name, m]));
  assert.deepEqual(Object.keys(byName).sort(), ['qa-fp32', 'qa-int8', 'qa-int8-ort']);
  assert.equal(byName['qa-int8'].backend, 'engine');
  assert.match(byName['qa-int8'].kernel_path, /^(avx512vnni|avxvnni|avx2|scalar)$/);
  assert.equal(byName['qa-int8-ort'].backend, 'onnxruntime');
  assert.equal(byName['qa-fp32'].backend, 'onnxruntime');
  assert.ok(byName['qa-int8'].default, 'the engine-served int8 model is the default for QA');
  for (const name of Object.keys(byName)) {
    const response = await server.app.inject({
      method: 'POST',
      url: `/models/${name}/qa`,
      payload: { question: 'Where is the museum?', context },
    });
    assert.equal(response.statusCode, 200, `${name}: ${response.body}`);
    assert.equal(response.json().answer, 'Zurich', name);
  }
  const metrics = metricValues((await server.app.inject({ url: '/metrics' })).body);
  const info = [...metrics.keys()].filter((key) => key.startsWith('sbs_model_info{'));
  assert.ok(
    info.some(
      (key) => key.includes('model="qa-int8"') && key.includes('backend="engine"') && /kernel_path="\w+"/.test(key),
    ),
    info.join('\n'),
  );
  assert.ok(info.some((key) => key.includes('model="qa-int8-ort"') && key.includes('backend="onnxruntime"')));
  const v2 = (await server.app.inject({ url: '/v2/models/qa-int8' })).json();
  assert.equal(v2.parameters.backend, 'engine');
});

test('many concurrent requests on the engine are batched raggedly and answered exactly', async () => {
  const questions = Array.from({ length: 24 }, (_, i) => `Where is museum number ${i}${' really'.repeat(i % 5)}?`);
  const responses = await Promise.all(
    questions.map((question) =>
      server.app.inject({
        method: 'POST',
        url: '/qa',
        payload: { question, context: context.repeat(1 + (question.length % 3)) },
      }),
    ),
  );
  for (const response of responses) {
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(response.json().answer, 'Zurich');
  }
  const metrics = metricValues((await server.app.inject({ url: '/metrics' })).body);
  const batches = metrics.get('sbs_batch_size_count{model="qa-int8"}') ?? 0;
  const rows = metrics.get('sbs_batch_size_sum{model="qa-int8"}') ?? 0;
  assert.ok(rows >= 24 && batches < rows, `rows ${rows} ran in ${batches} batches: expected some batching`);
});

test('without the addon the server says so once and serves int8 on onnxruntime; --backend engine refuses to start', async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const missing = join(root, 'no-such-addon.node');
  const fallback = startCli(['serve', '--models-dir', modelsDir, '--port', String(port)], {
    SBS_ENGINE_ADDON: missing,
  });
  try {
    await waitUntilReady(base, fallback);
    const models = (await (await fetch(`${base}/models`)).json()) as { name: string; backend: string }[];
    assert.equal(models.find((m) => m.name === 'qa-int8')?.backend, 'onnxruntime');
    const answer = await fetch(`${base}/qa`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ question: 'Where?', context }),
    });
    assert.equal((await answer.json()).answer, 'Zurich');
    const lines = fallback
      .output()
      .split('\n')
      .filter((line) => line.includes('sparse engine unavailable'));
    assert.equal(lines.length, 1, fallback.output());
    assert.match(lines[0], /not built .*int8 models run on onnxruntime/);
  } finally {
    fallback.child.kill('SIGTERM');
    await fallback.exited;
  }
  const strict = startCli(
    ['serve', '--models-dir', modelsDir, '--port', String(await freePort()), '--backend', 'engine'],
    { SBS_ENGINE_ADDON: missing },
  );
  assert.equal(await strict.exited, 1, strict.output());
  assert.match(strict.output(), /--backend engine but the sparse engine is unavailable/);
});
