/** `npm run soak`: its bounds and loopback rule, and a short real soak on tiny models (the shortest allowed, 10 s). */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseSoakArgs, type SoakResult } from '../loadtest/soak.js';
import { prepareModels } from './helpers/server-fixture.js';
import { workspace } from './helpers/workspace.js';

const repo = join(import.meta.dirname, '..');
const root = workspace('soak');

test('soak arguments: duration and connections are bounded, --url must be loopback', () => {
  const defaults = parseSoakArgs([], {});
  assert.equal(defaults.durationSeconds, 120);
  assert.equal(defaults.connections, 16);
  for (const [args, message] of [
    [['--duration', '3601'], /--duration must be an integer from 10 to 3600/],
    [['--duration', '5'], /--duration must be an integer from 10 to 3600/],
    [['--connections', '257'], /--connections must be an integer from 1 to 256/],
    [['--connections', '0'], /--connections must be an integer from 1 to 256/],
    [['--url', 'http://10.0.0.8:8080'], /only servers on this machine/],
    [['--url', 'http://127.0.0.1:8080', '--models-dir', 'x'], /either --url/],
    [['--task', 'translate'], /--task must be qa, classify or ner/],
  ] as const)
    assert.throws(() => parseSoakArgs([...args], {}), message);
});

test('a 10 s soak at 4 connections on tiny models: no errors, figures and RSS reported', async () => {
  const modelsDir = await prepareModels(root);
  const out = join(root, 'report');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'loadtest/soak.ts',
      '--models-dir',
      modelsDir,
      '--task',
      'classify',
      '--duration',
      '10',
      '--connections',
      '4',
      '--out',
      out,
    ],
    { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  assert.equal(code, 0, output);
  assert.match(output, /errors other than deliberate 429s: 0/);
  assert.match(output, /latency p50 \d+ ms, p99 \d+ ms/);
  assert.match(output, /server RSS: start [\d.]+ MB, after 1 min n\/a, end [\d.]+ MB, peak [\d.]+ MB/);
  const result = JSON.parse(readFileSync(join(out, 'soak.json'), 'utf8')) as SoakResult;
  assert.equal(result.settings.model, 'sst2-int8');
  assert.ok(result.ok2xx > 0 && result.unexpectedErrors === 0);
  assert.ok(result.rss.startMb! > 0 && result.rss.endMb! > 0);
});
