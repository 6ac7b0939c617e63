/**
 * Seeded fuzzing of a real server process on loopback: 1000 generated malformed or adversarial requests across every
 * route (test/helpers/fuzz-cases.ts) and 5 stalled ones. No answer may be a 5xx, every request must get an answer
 * (or, when stalled, have its connection closed within the receive timeouts), the server must stay alive and keep
 * answering correctly, and its memory must stay bounded: RSS at the end at most 192 MB above RSS after warm-up, and
 * peak RSS (VmHWM) at most 320 MB above it (one request of defect 1 alone added 700 MB).
 *
 * FUZZ_SEED=<n> replays another seed; FUZZ_COUNT=<n> changes the number of requests.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { sampleProcess } from '../loadtest/proc-stats.js';
import { startServe, type CliProcess } from './helpers/cli-process.js';
import { fuzzCases, stalledCases, type FuzzCase } from './helpers/fuzz-cases.js';
import { prepareModels } from './helpers/server-fixture.js';
import { workspace } from './helpers/workspace.js';

const seed = Number(process.env.FUZZ_SEED ?? 20_240_610);
const count = Number(process.env.FUZZ_COUNT ?? 1000);
const apiKey = 'fuzz-key-7f3a9c';
const bodyLimitBytes = 1_048_576;
const endRssBoundMb = 192;
const peakRssBoundMb = 320;
const concurrency = 6;

const root = workspace('fuzz');
let server: CliProcess;
let port: number;

before(async () => {
  const modelsDir = await prepareModels(root);
  ({ port, process: server } = await startServe(modelsDir, [
    '--log-level',
    'warn',
    '--api-key',
    apiKey,
    '--headers-timeout-ms',
    '1000',
    '--body-timeout-ms',
    '2000',
  ]));
});
after(async () => {
  server?.child.kill('SIGTERM');
  await server?.exited;
});

interface Outcome {
  status: number | null;
  /** How the connection ended when no status line came back. */
  ending?: string;
  ms: number;
}

/** Writes the case's bytes (or its first `stallAfter`) on a fresh connection; the first status line read back. */
function send(c: FuzzCase, timeoutMs: number): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    let head = '';
    let settled = false;
    const socket = connect(port, '127.0.0.1');
    const finish = (ending?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      // The final answer: interim 1xx lines (100 Continue to an Expect header) are skipped.
      const match = /(?:^|\r\n)HTTP\/1\.[01] ([2-5]\d\d)/.exec(head);
      resolve({
        status: match ? Number(match[1]) : null,
        ending: match ? undefined : ending,
        ms: Date.now() - started,
      });
    };
    const timer = setTimeout(() => finish('no answer within the client timeout'), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      if (head.length < 16_384) head += chunk.toString('latin1');
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // A reset after the answer arrived still counts as answered.
      if (/(?:^|\r\n)HTTP\/1\.[01] [2-5]\d\d/.test(head)) finish();
      else if (error.code !== 'EPIPE') finish(error.code ?? error.message);
    });
    socket.on('close', () => finish('closed without an answer'));
    socket.on('connect', () => {
      socket.write(c.stallAfter === undefined ? c.bytes : c.bytes.subarray(0, c.stallAfter));
    });
  });
}

const rssMb = () => sampleProcess(server.child.pid!);

test(`fuzz: ${count} seeded adversarial requests + stalled bodies: no 5xx, all answered, alive, RSS bounded`, async () => {
  const models = (await (
    await fetch(`http://127.0.0.1:${port}/models`, { headers: { authorization: `Bearer ${apiKey}` } })
  ).json()) as {
    name: string;
    task: string;
  }[];
  const names = (task: string) => models.filter((m) => m.task === task).map((m) => m.name);
  const cases = fuzzCases(seed, count, {
    apiKey,
    bodyLimitBytes,
    models: {
      qa: names('question-answering'),
      classify: names('text-classification'),
      ner: names('token-classification'),
    },
  });
  const start = rssMb();
  assert.ok(start, 'the server process can be measured');

  // The stalled connections run alongside the rest, as slow clients would.
  const stalled = Promise.all(stalledCases(apiKey).map(async (c) => ({ c, outcome: await send(c, 8_000) })));
  const outcomes: { c: FuzzCase; outcome: Outcome }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++];
      outcomes.push({ c, outcome: await send(c, 15_000) });
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const stalledOutcomes = await stalled;
  const elapsed = Date.now() - started;
  const end = rssMb();

  const byStatus = new Map<string, number>();
  for (const { outcome } of outcomes) {
    const key = String(outcome.status ?? outcome.ending);
    byStatus.set(key, (byStatus.get(key) ?? 0) + 1);
  }
  const byKind = new Map<string, number>();
  for (const { c } of outcomes) byKind.set(c.kind, (byKind.get(c.kind) ?? 0) + 1);
  const summary =
    `seed ${seed}: ${outcomes.length} requests in ${(elapsed / 1000).toFixed(1)} s; statuses ${JSON.stringify(Object.fromEntries([...byStatus].sort()))}; ` +
    `kinds ${JSON.stringify(Object.fromEntries(byKind))}; RSS ${start.rssMb.toFixed(0)} -> ${end?.rssMb.toFixed(0)} MB, ` +
    `peak ${end?.peakRssMb.toFixed(0)} MB`;
  console.log(summary);

  const serverErrors = outcomes.filter(({ outcome }) => outcome.status !== null && outcome.status >= 500);
  assert.deepEqual(
    serverErrors.map(({ c, outcome }) => `${outcome.status} ${c.kind}: ${c.describe}`),
    [],
    `5xx answers (${summary})`,
  );
  // CONNECT asks for a tunnel: Node closes such a connection when nothing handles tunnels, as here, unanswered.
  const unanswered = outcomes.filter(
    ({ c, outcome }) => outcome.status === null && !c.bytes.subarray(0, 8).equals(Buffer.from('CONNECT ')),
  );
  assert.deepEqual(
    unanswered.map(({ c, outcome }) => `${outcome.ending} after ${outcome.ms} ms, ${c.kind}: ${c.describe}`),
    [],
    `requests without an answer (${summary})`,
  );
  for (const { c, outcome } of stalledOutcomes) {
    // Closed by the server within the receive timeouts (1 s head, 2 s body, checked every second): 408 or a close.
    assert.ok(outcome.status === null || outcome.status === 408, `${c.kind}: ${JSON.stringify(outcome)}`);
    assert.ok(
      outcome.ending !== 'no answer within the client timeout' && outcome.ms < 5_000,
      `${c.kind}: ${JSON.stringify(outcome)}`,
    );
  }

  // Alive and still right.
  assert.equal(server.child.exitCode, null, server.output());
  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  assert.equal(health.status, 200);
  const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
  assert.equal(ready.status, 200);
  const answer = await fetch(`http://127.0.0.1:${port}/qa`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` },
    body: JSON.stringify({ question: 'Which city?', context: 'The museum is in zurich, by the river.' }),
  });
  assert.equal(answer.status, 200);
  assert.equal(((await answer.json()) as { answer: string }).answer, 'zurich');

  assert.ok(end, 'the server process can be measured at the end');
  assert.ok(end.rssMb - start.rssMb <= endRssBoundMb, `RSS grew by more than ${endRssBoundMb} MB: ${summary}`);
  assert.ok(end.peakRssMb - start.rssMb <= peakRssBoundMb, `peak RSS over start + ${peakRssBoundMb} MB: ${summary}`);
  assert.doesNotMatch(server.output(), /request failed|uncaught|unhandled/i, 'no internal error was logged');
});
