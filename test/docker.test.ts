import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chownSync, cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { freePort } from './helpers/cli-process.js';
import { containerTools } from './helpers/docker-container.js';
import {
  buildProjectImage,
  DockerUnavailable,
  ensureBaseImage,
  ensureDockerEngine,
  type DockerEngine,
} from './helpers/docker-engine.js';
import { startPrometheus, type PrometheusServer } from './helpers/docker-prometheus.js';
import { metricValues, prepareModels } from './helpers/server-fixture.js';
import { workspace } from './helpers/workspace.js';

/*
 * End to end against a real Docker engine and a real Prometheus: build the image, convert inside it, serve tiny
 * models from a read-only volume, wait for its HEALTHCHECK, scrape it, stop it under load.
 * SBS_DOCKER_TEST=0 skips it; SBS_DOCKER_TEST=require turns "no Docker engine can run here" into a failure.
 */

const repoRoot = join(import.meta.dirname, '..');
const runId = `${process.pid}-${randomBytes(3).toString('hex')}`;
const imageTag = `sparse-bert-serve-test:${runId}`;
const bakedTag = `${imageTag}-baked`;
const cacheRepo = 'sparse-bert-serve-test-cache';
const runLabel = `sparse-bert-serve.test-run=${runId}`;
const containerName = `sbs-test-${runId}`;
const context = 'The museum is by the river in Zurich, near the old town.';
const json = { 'content-type': 'application/json' };
// The served container requires this key, read from a mounted file as deploy/kubernetes mounts its Secret.
const apiKey = `docker-test-${randomBytes(16).toString('hex')}`;
const authorized = { authorization: `Bearer ${apiKey}` };

const startedAt = Date.now();
const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;
const log = (line: string) => process.stderr.write(`docker test: ${line}\n`);

let skipReason: string | undefined;
let engine: DockerEngine | undefined;
let prometheus: PrometheusServer | undefined;
let modelsDir: string;
let port: number;
let qaModel: string;
const base = () => `http://127.0.0.1:${port}`;

const docker = (args: string[], options: { allowFailure?: boolean; timeoutMs?: number; cwd?: string } = {}) =>
  engine!.docker(args, options);
const available = (t: TestContext) => {
  if (skipReason) t.skip(skipReason);
  return !skipReason;
};
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const qa = (question: string) =>
  fetch(`${base()}/qa`, {
    method: 'POST',
    headers: { ...json, ...authorized },
    body: JSON.stringify({ question, context }),
  });

const { containerState, logsOf, waitHealthy, runServer } = containerTools(() => engine!, runLabel);

// Registered before workspace(): after() hooks run in order, so containers go before their mounted folders.
after(async () => {
  await prometheus?.stop();
  if (engine) {
    const ids = (await docker(['ps', '-aq', '--filter', `label=${runLabel}`], { allowFailure: true })).stdout
      .split(/\s+/)
      .filter(Boolean);
    if (ids.length) await docker(['rm', '-f', ...ids], { allowFailure: true });
    // This run's images go; the base image and the dependency cache images stay for the next run.
    await docker(['rmi', imageTag, `${imageTag}-build`, bakedTag, `${bakedTag}-build`], { allowFailure: true });
    await engine.stop();
  }
  if (!skipReason) log(`done in ${seconds(startedAt)}`);
});

const root = workspace('docker');

before(
  async () => {
    const mode = process.env.SBS_DOCKER_TEST;
    if (mode === '0' || mode === 'skip') {
      skipReason = 'SBS_DOCKER_TEST=0';
      return;
    }
    try {
      engine = await ensureDockerEngine(log);
    } catch (error) {
      if (error instanceof DockerUnavailable && mode !== 'require') {
        skipReason = `no Docker engine: ${error.message}`;
        log(`SKIPPING: ${skipReason}`);
        return;
      }
      throw error;
    }
    log(`engine: ${engine.description} (${seconds(startedAt)})`);
    let phase = Date.now();
    const baseImage = await ensureBaseImage(engine, repoRoot, log);
    log(`base image ${baseImage.image}: ${baseImage.built ? `imported in ${seconds(phase)}` : 'present'}`);
    phase = Date.now();
    [modelsDir] = await Promise.all([prepareModels(root), buildProjectImage(engine, repoRoot, imageTag, cacheRepo)]);
    log(`image ${imageTag} built and tiny models converted in ${seconds(phase)}`);
  },
  { timeout: 30 * 60_000 },
);

test(
  'the image: production dependencies only, non-root, EXPOSE 8080, HEALTHCHECK on /readyz, node runs the CLI directly',
  { timeout: 60_000 },
  async (t) => {
    if (!available(t)) return;
    const [info] = JSON.parse((await docker(['image', 'inspect', imageTag])).stdout);
    const config = info.Config;
    assert.equal(config.User, '1000:1000');
    assert.deepEqual(Object.keys(config.ExposedPorts), ['8080/tcp']);
    assert.deepEqual(config.Entrypoint, ['node', 'dist/src/cli.js']);
    assert.deepEqual(config.Cmd, ['serve']);
    for (const variable of ['HOST=0.0.0.0', 'PORT=8080', 'MODELS_DIR=/models'])
      assert.ok(config.Env.includes(variable), `${variable} in ${config.Env}`);
    assert.deepEqual(config.Healthcheck.Test.slice(0, 2), ['CMD', 'node']);
    assert.match(config.Healthcheck.Test.join(' '), /\/readyz/);
    log(`image size ${(info.Size / 1e6).toFixed(0)} MB (${info.Size} bytes)`);
    assert.ok(info.Size < 450e6, `image is ${info.Size} bytes`);

    const listing = await docker([
      'run',
      '--rm',
      '--network',
      'none',
      '--entrypoint',
      'sh',
      imageTag,
      '-c',
      'ls -A; echo --; ls node_modules; echo --; ls -d node_modules/onnxruntime-node/bin/napi-v*/*/*; echo --; find engine -type f; command -v sleep >&2; command -v g++ >&2 || echo no-compiler >&2',
    ]);
    const [app, modules, ortBinaries, engineFiles] = listing.stdout
      .split('--\n')
      .map((part) => part.trim().split('\n'));
    assert.deepEqual(app.sort(), ['dist', 'engine', 'node_modules', 'package.json']);
    // The engine ships as its built addon alone; the compiler stayed in the build stage.
    assert.deepEqual(engineFiles, ['engine/build/Release/sbs_engine.node']);
    assert.match(listing.stderr, /no-compiler/);
    // (@types/* stay: protobufjs 6, a production dependency, depends on @types/node and @types/long.)
    for (const dev of ['typescript', 'tsx', 'prettier', 'esbuild'])
      assert.ok(!modules.includes(dev), `dev dependency ${dev} in the image`);
    assert.ok(modules.includes('onnxruntime-node') && modules.includes('fastify'));
    assert.equal(ortBinaries.length, 1, `onnxruntime-node binaries for one platform only: ${ortBinaries}`);
    assert.match(ortBinaries[0], /\/linux\/(x64|arm64)$/);
    assert.match(listing.stderr, /\/sleep$/m, 'sleep, for the Kubernetes preStop hook');
  },
);

test(
  'the image runs convert: a checkpoint from a read-only volume becomes the same artifacts as on the host',
  { timeout: 120_000 },
  async (t) => {
    if (!available(t)) return;
    const out = join(root, 'converted');
    mkdirSync(out);
    // The image's user (uid 1000) writes the volume; a non-root caller runs the container as itself instead.
    const user =
      process.getuid!() === 0
        ? (chownSync(out, 1000, 1000), [])
        : ['--user', `${process.getuid!()}:${process.getgid!()}`];
    const result = await docker(
      [
        'run',
        '--rm',
        '--label',
        runLabel,
        '--network',
        'none',
        ...user,
        '-v',
        `${join(root, 'ckpt-cls')}:/ckpt:ro`,
        '-v',
        `${out}:/models`,
        imageTag,
        'convert',
        '/ckpt',
        '--models-dir',
        '/models',
        '--name',
        'sst2',
      ],
      { allowFailure: true },
    );
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout + result.stderr, /wrote \/models\/sst2: BertForSequenceClassification/);
    assert.equal(JSON.parse(readFileSync(join(out, 'sst2', 'manifest.json'), 'utf8')).task, 'text-classification');
    // Conversion is deterministic: the image's converter writes byte for byte what the repository's does.
    for (const file of ['model.onnx', 'model.int8.onnx'])
      assert.equal(sha256(join(out, 'sst2', file)), sha256(join(modelsDir, 'sst2', file)), file);
  },
);

test(
  'serve: models from a read-only volume, HEALTHCHECK reports healthy, /qa answers, /readyz and /metrics',
  { timeout: 120_000 },
  async (t) => {
    if (!available(t)) return;
    port = await freePort();
    const started = Date.now();
    const keyFile = join(root, 'api-keys');
    writeFileSync(keyFile, `${apiKey}\n`, { mode: 0o644 });
    await runServer(containerName, imageTag, port, [`${modelsDir}:/models:ro`, `${keyFile}:/run/secrets/api-keys:ro`], {
      API_KEY_FILE: '/run/secrets/api-keys',
    });
    await waitHealthy(containerName);
    log(`container healthy ${seconds(started)} after docker run`);

    assert.deepEqual(await (await fetch(`${base()}/readyz`)).json(), { status: 'ready' });
    assert.equal((await fetch(`${base()}/healthz`)).status, 200);

    // API keys: inference without the key (or with a wrong one) is 401 with WWW-Authenticate; with it, 200.
    assert.match(await logsOf(containerName), /API keys required \(1 accepted\)/);
    for (const headers of [json, { ...json, authorization: 'Bearer not-the-key' }]) {
      const refused = await fetch(`${base()}/qa`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ question: 'Where?', context }),
      });
      assert.equal(refused.status, 401);
      assert.equal(refused.headers.get('www-authenticate'), 'Bearer realm="sparse-bert-serve"');
    }
    assert.equal((await fetch(`${base()}/models`)).status, 401);
    // The API description and its docs page are served from the image, without a key.
    const openapi = (await (await fetch(`${base()}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    assert.ok(openapi.paths['/qa'] && openapi.paths['/v2/models/{name}/infer']);
    const docsPage = await fetch(`${base()}/docs/`);
    assert.equal(docsPage.status, 200);
    assert.match(await docsPage.text(), /swagger-ui/);
    assert.equal((await fetch(`${base()}/docs/static/swagger-ui-bundle.js`)).status, 200);

    const models = (await (await fetch(`${base()}/models`, { headers: authorized })).json()) as Array<{
      name: string;
      task: string;
      default: boolean;
      backend: string;
      kernel_path: string;
    }>;
    // The image ships the sparse engine: int8 models run on it (this machine has a VNNI path), fp32 on onnxruntime.
    for (const model of models)
      assert.equal(model.backend, model.name.endsWith('-int8') ? 'engine' : 'onnxruntime', `${model.name} backend`);
    assert.ok(
      models.filter((m) => m.backend === 'engine').every((m) => ['avx512vnni', 'avxvnni'].includes(m.kernel_path)),
    );
    assert.deepEqual(models.map((m) => m.name).sort(), [
      'conll-fp32',
      'conll-int8',
      'qa-fp32',
      'qa-int8',
      'sst2-fp32',
      'sst2-int8',
    ]);
    qaModel = models.find((m) => m.task === 'question-answering' && m.default)!.name;
    assert.equal(qaModel, 'qa-int8');

    const responses = await Promise.all(['Where is the museum?', 'Which city?', 'Where?'].map(qa));
    for (const response of responses) {
      assert.equal(response.status, 200);
      const answer = (await response.json()) as { answer: string; score: number; start: number; end: number };
      assert.equal(answer.answer, context.slice(answer.start, answer.end));
      assert.equal(answer.answer, 'Zurich');
      assert.ok(answer.score > 0 && answer.score <= 1);
    }

    const metricsResponse = await fetch(`${base()}/metrics`);
    assert.match(metricsResponse.headers.get('content-type') ?? '', /^text\/plain/);
    const metrics = metricValues(await metricsResponse.text());
    assert.equal(metrics.get(`sbs_http_requests_total{route="/qa",model="${qaModel}",status="200"}`), 3);
    assert.ok(metrics.get(`sbs_batch_size_count{model="${qaModel}"}`)! >= 1);
    assert.equal(metrics.get(`sbs_queue_depth{model="${qaModel}"}`), 0);
  },
);

test(
  'a real Prometheus scrapes the container: request counter by route and batch sizes by model',
  { timeout: 120_000 },
  async (t) => {
    if (!available(t)) return;
    const started = Date.now();
    prometheus = await startPrometheus(root, [`127.0.0.1:${port}`], log);
    await prometheus.waitFor('up{job="sparse-bert-serve"} == 1');
    const requests = await prometheus.waitFor('sbs_http_requests_total{route="/qa"}');
    // The three answered requests, and the two refused without a valid API key (no model chosen for those).
    assert.deepEqual(
      requests
        .map((series) => [series.metric.model ?? '', series.metric.status, series.value[1]])
        .sort((a, b) => a[1].localeCompare(b[1])),
      [
        [qaModel, '200', '3'],
        ['', '401', '2'],
      ],
    );
    const batches = await prometheus.waitFor(`sbs_batch_size_count{model="${qaModel}"}`);
    assert.ok(Number(batches[0].value[1]) >= 1);
    // The Horizontal Pod Autoscaler's input (deploy/kubernetes): queue depth per model.
    const depth = await prometheus.waitFor(`max by (model) (sbs_queue_depth{model="${qaModel}"})`);
    assert.equal(depth[0].value[1], '0');
    log(`prometheus (pid ${prometheus.pid}, ${prometheus.base}) scraped the container within ${seconds(started)}`);
  },
);

test(
  'docker stop (SIGTERM) with 10 requests queued: every one is answered 200 and the container exits 0',
  { timeout: 120_000 },
  async (t) => {
    if (!available(t)) return;
    let settled = 0;
    const requests = Array.from({ length: 10 }, (_, i) =>
      qa(`Where is museum ${i}?`).then(async (response) => {
        settled++;
        return {
          status: response.status,
          body: (await response.json()) as { answer: string; start: number; end: number },
        };
      }),
    );
    // Wait until all ten wait in the queue (the batcher holds them up to MAX_BATCH_DELAY_MS for more work).
    const deadline = Date.now() + 10_000;
    while (
      metricValues(await (await fetch(`${base()}/metrics`)).text()).get(`sbs_queue_depth{model="${qaModel}"}`) !== 10
    ) {
      assert.ok(Date.now() < deadline, 'the ten requests never were queued together');
      await sleep(20);
    }
    const pendingAtSignal = 10 - settled;
    const started = Date.now();
    const stop = docker(['stop', '--time', '30', containerName]);
    const results = await Promise.all(requests);
    await stop;
    log(`docker stop returned after ${seconds(started)} with ${pendingAtSignal} requests in flight at the signal`);
    assert.ok(pendingAtSignal > 0, 'requests were still in flight when SIGTERM was sent');
    assert.deepEqual(
      results.map((r) => r.status),
      new Array(10).fill(200),
    );
    for (const { body } of results) assert.equal(body.answer, context.slice(body.start, body.end));
    const state = await containerState(containerName);
    assert.equal(state.Status, 'exited');
    assert.equal(state.ExitCode, 0, await logsOf(containerName));
    assert.equal(state.OOMKilled, false);
    assert.match(await logsOf(containerName), /drained; exiting/);
  },
);

test(
  'MODELS_SRC bakes converted models into the image; it serves them without a volume',
  { timeout: 300_000 },
  async (t) => {
    if (!available(t)) return;
    // A copy of the build context (what .dockerignore lets through) plus a folder of converted models.
    const contextDir = join(root, 'context');
    const skip = new Set([
      'node_modules',
      'dist',
      'models',
      'reports',
      '.scratch',
      '.git',
      '.cache',
      'checkpoints',
      'test',
      'deploy',
      '.ci',
    ]);
    for (const entry of readdirSync(repoRoot)) {
      if (!skip.has(entry))
        cpSync(join(repoRoot, entry), join(contextDir, entry), { recursive: true, preserveTimestamps: true });
    }
    cpSync(join(modelsDir, 'qa'), join(contextDir, 'image-models', 'qa'), { recursive: true });
    const started = Date.now();
    await buildProjectImage(engine!, contextDir, bakedTag, cacheRepo, { MODELS_SRC: 'image-models' });
    log(`image with baked models built in ${seconds(started)}`);

    const bakedPort = await freePort();
    const name = `${containerName}-baked`;
    await runServer(name, bakedTag, bakedPort, []);
    await waitHealthy(name);
    const models = (await (await fetch(`http://127.0.0.1:${bakedPort}/models`)).json()) as Array<{ name: string }>;
    assert.deepEqual(models.map((m) => m.name).sort(), ['qa-fp32', 'qa-int8']);
    const response = await fetch(`http://127.0.0.1:${bakedPort}/qa`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ question: 'Where?', context }),
    });
    assert.equal(((await response.json()) as { answer: string }).answer, 'Zurich');
    await docker(['stop', '--time', '30', name]);
    assert.equal((await containerState(name)).ExitCode, 0);
  },
);
