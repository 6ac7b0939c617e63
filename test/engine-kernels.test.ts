/**
 * The engine's int8 kernels against their references: engine/test/*.cc (the kernel tester) is compiled with g++ together
 * with every engine/src/kernels/*.cc into a temp folder and run; it checks each ISA this CPU supports bit-exactly
 * (tile GEMMs against a plain GEMM, epilogue and quantizer against the scalar path) and exits non-zero on the first
 * mismatch. A second build runs it under AddressSanitizer + UndefinedBehaviorSanitizer.
 * Needs g++: CI installs it; without it this test fails, it does not skip.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { workspace } from './helpers/workspace.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const engineSrc = join(repo, 'engine', 'src');
const testerDir = join(repo, 'engine', 'test');
// kernel-tester.cc (main) and its check families, check-*.cc.
const testerSources = () =>
  readdirSync(testerDir)
    .filter((file) => file.endsWith('.cc'))
    .sort()
    .map((file) => join(testerDir, file));
const root = workspace('engine-kernels');
const compiler = process.env.CXX || 'g++';

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(
  command: string,
  args: string[],
  timeoutMs: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Finished> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => (clearTimeout(timer), fail(error)));
    child.on('close', (code, signal) => (clearTimeout(timer), done({ code, signal, stdout, stderr })));
  });
}

function requireCompiler(): void {
  const probe = spawnSync(compiler, ['--version'], { encoding: 'utf8' });
  assert.ok(
    probe.status === 0,
    `${compiler} is needed to build the kernel tester but could not be run (${probe.error?.message ?? probe.stderr}): install g++ (Debian: apt-get install g++)`,
  );
}

const kernelSources = () =>
  readdirSync(join(engineSrc, 'kernels'))
    .filter((file) => file.endsWith('.cc'))
    .sort()
    .map((file) => join(engineSrc, 'kernels', file));

async function buildAndRun(name: string, flags: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  requireCompiler();
  const binary = join(root, name);
  const build = await run(
    compiler,
    ['-std=c++17', ...flags, `-I${engineSrc}`, `-I${testerDir}`, ...kernelSources(), ...testerSources(), '-o', binary],
    120_000,
  );
  assert.equal(build.code, 0, `building the kernel tester (${flags.join(' ')}) failed:\n${build.stderr}`);
  const result = await run(binary, [], 120_000, env);
  const output = result.stdout + result.stderr;
  assert.equal(result.code, 0, `kernel tester (${flags.join(' ')}) failed (signal ${result.signal}):\n${output}`);
  assert.match(output, /kernel-tester: all \d+ checks passed/);
  return output;
}

/** The ISAs the tester says it ran; scalar always runs, the others as the CPU allows. */
function isasRun(output: string): string[] {
  return [...output.matchAll(/^isa (\S+)\s+run$/gm)].map((match) => match[1]);
}

test('kernel tester: every supported ISA bit-exact with the references (-O2)', { timeout: 240_000 }, async (t) => {
  const output = await buildAndRun('kernel-tester', ['-O2']);
  const ran = isasRun(output);
  assert.ok(ran.includes('scalar'), `the scalar kernels did not run:\n${output}`);
  for (const isa of ['avx2', 'avxvnni', 'avx512vnni'])
    assert.match(output, new RegExp(`^isa ${isa}\\s+(run|skipped \\(not supported by this CPU\\))$`, 'm'));
  t.diagnostic(`kernel tester ran: ${ran.join(', ')}`);
});

test('kernel tester under AddressSanitizer + UndefinedBehaviorSanitizer', { timeout: 240_000 }, async () => {
  const output = await buildAndRun(
    'kernel-tester-asan',
    ['-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-O1', '-g'],
    {
      ...process.env,
      ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
    },
  );
  assert.ok(isasRun(output).includes('scalar'), output);
  assert.doesNotMatch(output, /runtime error|AddressSanitizer/);
});
