import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { parseServerConfig, serveUsage } from '../src/config.js';
import { ApiKeys } from '../src/http/auth.js';
import { buildServer } from '../src/http/server.js';
import { ServerState } from '../src/http/server-state.js';
import { ServerMetrics } from '../src/metrics.js';
import { ModelRegistry } from '../src/models/registry.js';
import { freePort, startCli, waitUntilReady } from './helpers/cli-process.js';
import { prepareModels } from './helpers/server-fixture.js';
import { workspace } from './helpers/workspace.js';

/*
 * API keys (--api-key / API_KEY / API_KEY_FILE, Bearer, 401 + WWW-Authenticate, open probes, --metrics-auth) and
 * the self-describing API: /openapi.json validates and lists every route, /docs renders in headless chromium.
 */

const root = workspace('auth-openapi');
let modelsDir: string;
const keys = ['key-one-0123456789abcdef', 'key-two-fedcba9876543210'];

interface Built {
  app: FastifyInstance;
  routes: RouteOptions[];
  close(): Promise<void>;
}

/** The server as `serve` builds it, with every route it registers recorded. */
async function build(args: string[]): Promise<Built> {
  const config = parseServerConfig(['--models-dir', modelsDir, '--log-level', 'silent', ...args], {});
  const metrics = new ServerMetrics();
  const registry = await ModelRegistry.load(config, metrics, () => {});
  const state = new ServerState();
  const app = buildServer({ config, registry, metrics, state, version: 'test' });
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (route) => void routes.push(route));
  await app.ready();
  await registry.warmUp();
  state.warmedUp = true;
  return {
    app,
    routes,
    close: async () => {
      await app.close();
      await registry.release();
    },
  };
}

let secured: Built;
let open: Built;

before(async () => {
  modelsDir = await prepareModels(root);
  secured = await build(['--api-key', keys.join(',')]);
  open = await build([]);
});
after(async () => {
  await secured?.close();
  await open?.close();
});

const qa = { question: 'Where is the museum?', context: 'The museum is in Zurich.' };

test('config: --api-key, API_KEY and API_KEY_FILE (one per line or comma-separated) together; listed in --help', () => {
  const file = join(root, 'keys');
  writeFileSync(file, 'file-key-1\nfile-key-2, file-key-3\n\n');
  assert.deepEqual(parseServerConfig(['--api-key', 'a,b'], {}).auth.apiKeys, ['a', 'b']);
  assert.deepEqual(parseServerConfig([], { API_KEY: 'c' }).auth.apiKeys, ['c']);
  assert.deepEqual(parseServerConfig([], { API_KEY: 'c', API_KEY_FILE: file }).auth.apiKeys, [
    'c',
    'file-key-1',
    'file-key-2',
    'file-key-3',
  ]);
  assert.deepEqual(parseServerConfig([], {}).auth, { apiKeys: [], metricsAuth: false });
  assert.equal(parseServerConfig(['--metrics-auth'], {}).auth.metricsAuth, true);
  assert.equal(parseServerConfig([], { METRICS_AUTH: '1' }).auth.metricsAuth, true);
  writeFileSync(join(root, 'empty-keys'), '\n \n');
  assert.throws(() => parseServerConfig([], { API_KEY_FILE: join(root, 'empty-keys') }), /holds no key/);
  assert.throws(() => parseServerConfig([], { API_KEY_FILE: join(root, 'missing') }), /cannot read/);
  assert.throws(() => parseServerConfig(['--api-key', 'has space'], {}), /printable ASCII/);
  for (const flag of ['--api-key', '--api-key-file', '--metrics-auth', 'API_KEY_FILE', 'METRICS_AUTH'])
    assert.ok(serveUsage.includes(flag), flag);
});

test('a key compares as a digest: any length, any header shape, never throws', () => {
  const check = new ApiKeys(keys, false);
  assert.equal(check.accepts(`Bearer ${keys[0]}`), true);
  assert.equal(check.accepts(`bearer  ${keys[1]}`), true);
  for (const header of [
    undefined,
    '',
    'Bearer',
    'Bearer ',
    `Basic ${keys[0]}`,
    `Bearer ${keys[0]}x`,
    'Bearer x'.repeat(1000),
  ])
    assert.equal(check.accepts(header), false, String(header));
});

test('inference needs a valid key: 401 with WWW-Authenticate, the same answer whatever was wrong', async () => {
  const refusals = [
    {},
    { authorization: 'Bearer wrong' },
    { authorization: `Basic ${keys[0]}` },
    { authorization: `Bearer ${keys[0]}-` },
    { authorization: keys[0] },
  ];
  const bodies = new Set<string>();
  for (const headers of refusals) {
    const response = await secured.app.inject({ method: 'POST', url: '/qa', payload: qa, headers });
    assert.equal(response.statusCode, 401, JSON.stringify(headers));
    assert.equal(response.headers['www-authenticate'], 'Bearer realm="sparse-bert-serve"');
    bodies.add(response.body);
  }
  assert.equal(bodies.size, 1, [...bodies].join('\n'));
  // Either key works: rotation.
  for (const key of keys) {
    const response = await secured.app.inject({
      method: 'POST',
      url: '/qa',
      payload: qa,
      headers: { authorization: `Bearer ${key}` },
    });
    assert.equal(response.statusCode, 200);
    assert.equal(response.json().answer, 'Zurich');
  }
  const v2 = await secured.app.inject({ url: '/v2/models/qa-int8' });
  assert.equal(v2.statusCode, 401);
  assert.ok(v2.json().error);
});

test('probes, /openapi.json and /docs stay open; /models, /v2 metadata and unknown routes need the key', async () => {
  for (const url of [
    '/healthz',
    '/readyz',
    '/v2/health/live',
    '/v2/health/ready',
    '/metrics',
    '/openapi.json',
    '/docs/',
  ])
    assert.equal((await secured.app.inject({ url })).statusCode, 200, url);
  for (const url of ['/models', '/v2', '/v2/models/qa-int8', '/no-such-route'])
    assert.equal((await secured.app.inject({ url })).statusCode, 401, url);
});

test('--metrics-auth: /metrics needs the key too', async () => {
  const built = await build(['--api-key', keys[0], '--metrics-auth']);
  try {
    assert.equal((await built.app.inject({ url: '/metrics' })).statusCode, 401);
    const scraped = await built.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${keys[0]}` } });
    assert.equal(scraped.statusCode, 200);
    assert.match(scraped.body, /# TYPE /);
    assert.equal((await built.app.inject({ url: '/healthz' })).statusCode, 200);
  } finally {
    await built.close();
  }
});

test('without keys nothing changes: every route answers without Authorization', async () => {
  assert.equal((await open.app.inject({ method: 'POST', url: '/qa', payload: qa })).statusCode, 200);
  assert.equal((await open.app.inject({ url: '/models' })).statusCode, 200);
});

test('a real server with API_KEY_FILE: 401 then 200, and a 401 to a large upload still reaches fetch', async () => {
  const file = join(root, 'server-keys');
  writeFileSync(file, `${keys[1]}\n`);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = startCli(['serve', '--models-dir', modelsDir, '--port', String(port)], { API_KEY_FILE: file });
  try {
    await waitUntilReady(base, server);
    const post = (headers: Record<string, string>, body = JSON.stringify(qa)) =>
      fetch(`${base}/qa`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
    const refused = await post({});
    assert.equal(refused.status, 401);
    assert.equal(refused.headers.get('www-authenticate'), 'Bearer realm="sparse-bert-serve"');
    const answered = await post({ authorization: `Bearer ${keys[1]}` });
    assert.equal(answered.status, 200);
    assert.equal((await answered.json()).answer, 'Zurich');
    const big = JSON.stringify({ ...qa, context: 'word '.repeat(150_000) });
    for (let i = 0; i < 5; i++) assert.equal((await post({}, big)).status, 401);
    assert.match(server.output(), /API keys required \(1 accepted\)/);
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
});

test('/openapi.json is a valid OpenAPI document listing every route with its schemas', async () => {
  const response = await secured.app.inject({ url: '/openapi.json' });
  assert.equal(response.statusCode, 200);
  const document = response.json();
  const result = await new Validator().validate(document);
  assert.ok(result.valid, JSON.stringify(result.errors, null, 2));
  assert.equal(document.openapi, '3.1.0');
  const listed = new Set(
    Object.entries(document.paths as Record<string, Record<string, unknown>>).flatMap(([path, operations]) =>
      Object.keys(operations).map((method) => `${method.toUpperCase()} ${path}`),
    ),
  );
  const routes = secured.routes
    .flatMap((route) => [route.method].flat().map((method) => ({ method, url: route.url })))
    .filter(({ method, url }) => method !== 'HEAD' && !url.startsWith('/docs'))
    .map(({ method, url }) => `${method} ${url.replace(/:(\w+)/g, '{$1}')}`);
  assert.ok(routes.length >= 15, routes.join(', '));
  for (const route of [...routes, 'GET /openapi.json'])
    assert.ok(listed.has(route), `${route} is missing from /openapi.json`);
  // Request bodies come from the routes' own schemas; the key requirement is declared, and the probes are open.
  assert.ok(document.paths['/qa'].post.requestBody.content['application/json'].schema);
  assert.equal(document.components.securitySchemes.apiKey.scheme, 'bearer');
  assert.deepEqual(document.security, [{ apiKey: [] }]);
  assert.deepEqual(document.paths['/healthz'].get.security, []);
  assert.equal(document.paths['/qa'].post.security, undefined);
});

test('/docs renders in headless chromium and shows the routes, with nothing fetched from outside', async (t) => {
  const chromium = await promisify(execFile)('sh', ['-c', 'command -v chromium || command -v chromium-browser']).then(
    ({ stdout }) => stdout.trim(),
    () => '',
  );
  if (!chromium) {
    t.skip('chromium is not installed (apt-get install chromium; .ci/run installs it)');
    return;
  }
  await secured.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = secured.app.server.address() as { port: number };
  const { stdout } = await promisify(execFile)(
    chromium,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      `--user-data-dir=${join(root, 'chromium-profile')}`,
      '--virtual-time-budget=20000',
      '--dump-dom',
      `http://127.0.0.1:${port}/docs`,
    ],
    { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
  );
  assert.match(stdout, /class="swagger-ui/);
  assert.match(stdout, /sparse-bert-serve/);
  // Each operation is an opblock naming its path.
  const shown = new Set([...stdout.matchAll(/data-path="([^"]+)"/g)].map((m) => m[1]));
  for (const path of [
    '/qa',
    '/classify',
    '/ner',
    '/models/{model}/qa',
    '/v2/models/{name}/infer',
    '/healthz',
    '/metrics',
  ])
    assert.ok(shown.has(path), `${path} not shown; shown: ${[...shown].join(', ')}`);
  // The page loads its scripts and styles from the server itself (the package's copy of Swagger UI) only.
  const assets = [...stdout.matchAll(/<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
  assert.ok(assets.length > 0);
  assert.deepEqual(
    assets.filter((url) => /^(https?:)?\/\//.test(url) && !url.startsWith(`http://127.0.0.1:${port}/`)),
    [],
  );
  const page = await fetch(`http://127.0.0.1:${port}/docs/`);
  const csp = page.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'self'/);
  assert.doesNotMatch(csp, /upgrade-insecure-requests|https:/);
});
