/**
 * The whole native engine once under AddressSanitizer + UndefinedBehaviorSanitizer: the addon compiled with g++
 * (-fsanitize=address,undefined, no recovery) into a temp folder, then a child Node with the sanitizer runtimes
 * preloaded runs every kernel path, both dense and sparse kernels, ragged batches, bad batches and bad weights
 * (test/helpers/engine-sanitizer-run.ts) on tiny models converted here. Any sanitizer report fails the test.
 * Needs g++ with libasan and libubsan: CI installs them; without them this test fails, it does not skip.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Family, Task } from '../conversion/checkpoint/model-config.js';
import { convert } from '../conversion/convert.js';
import { generateCheckpoint, type Dimensions } from '../conversion/generate/random-checkpoint.js';
import { tinyModel } from './helpers/engine-fixtures.js';
import { convertOptions, workspace } from './helpers/workspace.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const engineSrc = join(repo, 'engine', 'src');
const childScript = join(repo, 'test', 'helpers', 'engine-sanitizer-run.ts');
const root = workspace('engine-sanitizers');
const compiler = process.env.CXX || 'g++';
const jobs = 2;

const cases: [string, Family, Task, number][] = [
  ['bert-qa', 'bert', 'question-answering', 0.9],
  ['distil-ner', 'distilbert', 'token-classification', 0.9],
  ['bert-cls', 'bert', 'text-classification', 0.85],
];

/**
 * Beyond the tiny preset: dims off every SIMD width (48 hidden, 3 heads of 16, 80 intermediate) and the small preset
 * (128/512), so kernel tails and several K blocks run under the sanitizers too.
 */
const oddCases: [string, Family, Task, number, Dimensions][] = [
  [
    'bert-qa-odd',
    'bert',
    'question-answering',
    0.9,
    { hiddenSize: 48, numLayers: 1, numHeads: 3, intermediateSize: 80, maxPositions: 160 },
  ],
  [
    'bert-qa-small',
    'bert',
    'question-answering',
    0.9,
    { hiddenSize: 128, numLayers: 2, numHeads: 2, intermediateSize: 512, maxPositions: 512 },
  ],
];

async function oddModel(name: string, family: Family, task: Task, sparsity: number, dims: Dimensions): Promise<string> {
  const checkpoint = generateCheckpoint({
    outDir: join(root, `ckpt-${name}`),
    family,
    task,
    dims,
    format: 'safetensors',
    seed: 5,
    sparsity,
  });
  const dir = join(root, 'models', name);
  await convert(convertOptions(checkpoint, dir));
  return dir;
}

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<Finished> {
  const started = performance.now();
  return new Promise((done, fail) => {
    const child = spawn(command, args, {
      cwd: repo,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', (error) => (clearTimeout(timer), fail(error)));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr, seconds: (performance.now() - started) / 1000 });
    });
  });
}

/** A sanitizer runtime next to the compiler, or a clear failure: `g++ -print-file-name` echoes the bare name when absent. */
function runtimeLibrary(name: string): string {
  const found = spawnSync(compiler, [`-print-file-name=${name}`], { encoding: 'utf8' });
  const path = (found.stdout ?? '').trim();
  assert.ok(
    found.status === 0 && isAbsolute(path) && existsSync(path),
    `${compiler} has no ${name} (${path || found.error?.message}): install g++ with its sanitizer runtimes (Debian: g++ brings libasan8, libubsan1)`,
  );
  return path;
}

const sources = () =>
  ['.', 'ops', 'kernels'].flatMap((sub) =>
    readdirSync(join(engineSrc, sub))
      .filter((file) => file.endsWith('.cc'))
      .sort()
      .map((file) => join(engineSrc, sub, file)),
  );

/** Every engine source compiled with the sanitizers, at most `jobs` at a time, then linked into sbs_engine.node. */
async function buildSanitizedAddon(outDir: string): Promise<string> {
  const addonApi = resolve(
    repo,
    (createRequire(join(repo, 'package.json'))('node-addon-api') as { include_dir: string }).include_dir,
  );
  const nodeHeaders = resolve(process.execPath, '../../include/node');
  assert.ok(existsSync(join(nodeHeaders, 'node_api.h')), `no Node headers at ${nodeHeaders}`);
  assert.ok(existsSync(join(addonApi, 'napi.h')), `no node-addon-api headers at ${addonApi}`);
  const sanitize = [
    '-fsanitize=address,undefined',
    '-fno-sanitize-recover=undefined',
    '-fno-omit-frame-pointer',
    '-pthread',
  ];
  const flags = [
    '-std=c++17',
    '-O1',
    '-g',
    '-fPIC',
    ...sanitize,
    '-fexceptions',
    '-DNAPI_VERSION=8',
    '-DNODE_ADDON_API_CPP_EXCEPTIONS',
    '-DNODE_ADDON_API_CPP_EXCEPTIONS_ALL',
    '-I',
    engineSrc,
    '-I',
    addonApi,
    '-I',
    nodeHeaders,
  ];
  mkdirSync(outDir, { recursive: true });
  const queue = sources().map((source) => ({
    source,
    object: join(outDir, `${basename(dirname(source))}-${basename(source, '.cc')}.o`),
  }));
  assert.ok(queue.length > 10, `only ${queue.length} engine sources found under ${engineSrc}`);
  const objects = queue.map(({ object }) => object);
  const failures: string[] = [];
  const worker = async () => {
    for (let item = queue.shift(); item; item = queue.shift()) {
      const result = await run(compiler, [...flags, '-c', item.source, '-o', item.object], { timeoutMs: 240_000 });
      if (result.code !== 0)
        failures.push(`${item.source} (exit ${result.code ?? result.signal}):\n${result.stderr.slice(0, 4000)}`);
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  assert.equal(failures.length, 0, `sanitized compile failed:\n${failures.join('\n')}`);
  const addon = join(outDir, 'sbs_engine.node');
  const link = await run(compiler, ['-shared', ...sanitize, '-o', addon, ...objects], { timeoutMs: 120_000 });
  assert.equal(link.code, 0, `sanitized link failed:\n${link.stderr.slice(0, 4000)}`);
  assert.ok(readFileSync(addon).includes('__asan_init'), `${addon} is not instrumented by AddressSanitizer`);
  return addon;
}

/** A heap overflow and a signed overflow in a plain N-API addon: proof that the child setup catches such bugs. */
const canarySource = `#include <node_api.h>
#include <climits>
#include <cstdlib>
static napi_value Overflow(napi_env env, napi_callback_info) {
  volatile int n = 8;
  int* data = static_cast<int*>(std::malloc(sizeof(int) * n));
  for (int i = 0; i <= n; i++) data[i] = i;
  napi_value out;
  napi_create_int32(env, data[0], &out);
  std::free(data);
  return out;
}
static napi_value SignedOverflow(napi_env env, napi_callback_info) {
  volatile int big = INT_MAX;
  int sum = big + 1;
  napi_value out;
  napi_create_int32(env, sum, &out);
  return out;
}
static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "overflow", NAPI_AUTO_LENGTH, Overflow, nullptr, &fn);
  napi_set_named_property(env, exports, "overflow", fn);
  napi_create_function(env, "signedOverflow", NAPI_AUTO_LENGTH, SignedOverflow, nullptr, &fn);
  napi_set_named_property(env, exports, "signedOverflow", fn);
  return exports;
}
NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
`;

async function buildCanary(outDir: string): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  const source = join(outDir, 'canary.cc');
  const addon = join(outDir, 'canary.node');
  writeFileSync(source, canarySource);
  const nodeHeaders = resolve(process.execPath, '../../include/node');
  const result = await run(
    compiler,
    [
      '-std=c++17',
      '-O1',
      '-g',
      '-fPIC',
      '-shared',
      '-fsanitize=address,undefined',
      '-fno-sanitize-recover=undefined',
      '-fno-omit-frame-pointer',
      '-pthread',
      '-I',
      nodeHeaders,
      source,
      '-o',
      addon,
    ],
    { timeoutMs: 60_000 },
  );
  assert.equal(result.code, 0, `canary compile failed:\n${result.stderr.slice(0, 4000)}`);
  return addon;
}

let asan: string;
let ubsan: string;
let addonPath: string;
let canaryPath: string;
const sanitizedEnv = (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({
  ...process.env,
  LD_PRELOAD: `${asan}:${ubsan}`,
  ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=0:halt_on_error=1',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  ...extra,
});
const sanitizerLine =
  /ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer/;
const modelDirs: { name: string; dir: string }[] = [];

before(async () => {
  const version = spawnSync(compiler, ['--version'], { encoding: 'utf8' });
  assert.ok(
    version.status === 0,
    `no C++ compiler "${compiler}" (${version.error?.message ?? version.stderr}): the sanitizer test needs g++`,
  );
  asan = runtimeLibrary('libasan.so');
  ubsan = runtimeLibrary('libubsan.so');
  // Conversion verifies on onnxruntime, so it runs here, never in the sanitized child; it overlaps the compile.
  const converting = (async () => {
    for (const [name, family, task, sparsity] of cases)
      modelDirs.push({ name, dir: (await tinyModel(root, name, family, task, sparsity)).dir });
    for (const [name, family, task, sparsity, dims] of oddCases)
      modelDirs.push({ name, dir: await oddModel(name, family, task, sparsity, dims) });
  })();
  const started = performance.now();
  [addonPath] = await Promise.all([buildSanitizedAddon(join(root, 'asan-build')), converting]);
  canaryPath = await buildCanary(join(root, 'canary'));
  console.log(`# sanitized addon and models ready in ${((performance.now() - started) / 1000).toFixed(0)} s`);
});

test(
  'the whole engine runs clean under AddressSanitizer and UndefinedBehaviorSanitizer',
  { timeout: 900_000 },
  async () => {
    const result = await run(process.execPath, ['--import', 'tsx', childScript], {
      timeoutMs: 600_000,
      env: sanitizedEnv({ SBS_ENGINE_ADDON: addonPath, SBS_SANITIZER_MODELS: JSON.stringify(modelDirs) }),
    });
    for (const line of result.stdout.split('\n')) if (line.startsWith('[sanitized]')) console.log(`# ${line}`);
    console.log(`# sanitized run: ${result.seconds.toFixed(0)} s, exit ${result.code ?? result.signal}`);
    const reports = result.stderr.split('\n').filter((line) => sanitizerLine.test(line));
    const tail = (text: string) => text.split('\n').slice(-80).join('\n');
    const details = `\n--- stdout (tail) ---\n${tail(result.stdout)}\n--- stderr (tail) ---\n${tail(result.stderr)}`;
    assert.deepEqual(reports, [], `sanitizer reports:${details}`);
    assert.equal(result.code, 0, `the sanitized child exited ${result.code ?? result.signal}${details}`);
    assert.match(result.stdout, /^SANITIZED RUN OK$/m, `no 'SANITIZED RUN OK' line${details}`);
    // Every kernel path the CPU has ran on every model, both kernel choices.
    for (const { name } of modelDirs) {
      assert.match(result.stdout, new RegExp(`${name}: scalar, dense: ragged batches finite`));
      assert.match(result.stdout, new RegExp(`${name}: bad weights refused`));
    }
  },
);

test('the sanitized child setup does catch bugs in addon code (a canary addon)', async () => {
  const expectations: [string, RegExp][] = [
    ['overflow', /ERROR: AddressSanitizer: heap-buffer-overflow[\s\S]*canary\.cc:7/],
    ['signedOverflow', /canary\.cc:\d+:\d+: runtime error: signed integer overflow/],
  ];
  for (const [name, report] of expectations) {
    const script = `require(${JSON.stringify(canaryPath)}).${name}(); console.log('NOT CAUGHT');`;
    const result = await run(process.execPath, ['-e', script], { timeoutMs: 60_000, env: sanitizedEnv({}) });
    assert.notEqual(result.code, 0, `${name}: the canary bug went unnoticed:\n${result.stdout}\n${result.stderr}`);
    assert.doesNotMatch(result.stdout, /NOT CAUGHT/);
    assert.match(result.stderr, report, `${name}: no sanitizer report:\n${result.stderr.slice(0, 4000)}`);
    assert.ok(
      result.stderr.split('\n').some((line) => sanitizerLine.test(line)),
      `${name}: the report is not matched by the check`,
    );
  }
});
