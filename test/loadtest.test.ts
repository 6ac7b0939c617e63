import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { loadPayloads, generatedPayloads, glueRecords, conllRecords, squadRecords } from '../loadtest/payloads.js';
import { counterDeltaBy, histogramDelta, parsePrometheusText, sumOf } from '../loadtest/prometheus.js';
import { computeRatios } from '../loadtest/report.js';
import { latencyThroughputSvg } from '../loadtest/svg-chart.js';
import { freePort, loopbackProblem } from '../loadtest/target.js';
import { LoadtestError, type LoadLevel, type LoadtestResults, type RunResult } from '../loadtest/types.js';
import { startCli, waitUntilReady } from './helpers/cli-process.js';
import { errorLines, runLoadtest, scrape1, scrape2 } from './helpers/loadtest-fixtures.js';
import { prepareModels } from './helpers/server-fixture.js';
import { workspace } from './helpers/workspace.js';

const repo = join(import.meta.dirname, '..');
const root = workspace('loadtest');
const squadDev = join(repo, '..', 'shared', 'data', 'squad-v1.1', 'dev-v1.1.json');

/** Well-formed XML, roughly: tags nest and close, attributes are quoted, text has no stray < or &. */
function assertXmlish(xml: string): void {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  let last = 0;
  for (const match of body.matchAll(/<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g)) {
    const between = body.slice(last, match.index);
    assert.doesNotMatch(between, /<|&(?!(amp|lt|gt|quot|apos);)/, `stray markup before ${match[0]}`);
    last = match.index! + match[0].length;
    if (match[1]) assert.equal(stack.pop(), match[2], `</${match[2]}> closes the wrong element`);
    else if (!match[4]) stack.push(match[2]);
    if (!match[1] && stack.length === 0 && !match[4]) assert.fail('an element outside the root');
  }
  assert.equal(body.slice(last).trim(), '', 'text after the root element');
  assert.deepEqual(stack, [], 'unclosed elements');
  assert.match(body, /^<svg[\s>]/);
}

describe('Prometheus text parser', () => {
  test('reads names, labels (escapes, commas, spaces), values, timestamps, Nan and +Inf', () => {
    const samples = parsePrometheusText(scrape1);
    assert.equal(samples.length, 15);
    const weird = samples.find((s) => s.name === 'weird_total')!;
    assert.deepEqual(weird.labels, { path: 'a "quoted", comma} and \\ backslash\nnewline' });
    assert.equal(weird.value, 35);
    assert.ok(Number.isNaN(samples.find((s) => s.name === 'sbs_nodejs_eventloop_lag_seconds')!.value));
    assert.equal(samples.find((s) => s.labels.le === '+Inf')!.labels.model, 'm-int8');
    assert.equal(sumOf(samples, 'sbs_http_requests_total', { model: 'm-int8' }), 10);
    assert.equal(sumOf(samples, 'sbs_batch_size_count'), 11);
  });

  test('histogram and counter deltas between two scrapes, per model', () => {
    const before = parsePrometheusText(scrape1);
    const after = parsePrometheusText(scrape2);
    const delta = histogramDelta(before, after, 'sbs_batch_size', { model: 'm-int8' });
    assert.equal(delta.count, 200);
    assert.equal(delta.sum, 600);
    assert.equal(delta.mean, 3);
    // 10 in (0,1], 90 in (1,2], 99 in (2,4], 1 above 4: rank 100 ends the (1,2] bucket; rank 198 is in (2,4].
    assert.equal(delta.p50, 2);
    assert.ok(Math.abs(delta.p99! - (2 + (2 * (198 - 100)) / 99)) < 1e-9);
    const untouched = histogramDelta(before, after, 'sbs_batch_size', { model: 'm-fp32' });
    assert.deepEqual(untouched, { count: 0, sum: 0, mean: null, p50: null, p99: null });
    assert.deepEqual(counterDeltaBy(before, after, 'sbs_http_requests_total', { model: 'm-int8' }, 'status'), {
      200: 50,
    });
    assert.deepEqual(counterDeltaBy(before, after, 'sbs_rejections_total', { model: 'm-int8' }, 'reason'), {
      deadline: 2,
    });
    assert.equal(sumOf(after, 'sbs_process_cpu_seconds_total') - sumOf(before, 'sbs_process_cpu_seconds_total'), 7.5);
  });

  test('a malformed line is an error naming the line', () => {
    assert.throws(() => parsePrometheusText('ok_metric 1\nbad_metric{model="x} 2\n'), /metrics line 2: unterminated/);
    assert.throws(() => parsePrometheusText('# c\nname_only\n'), /metrics line 2/);
    assert.throws(() => parsePrometheusText('m{a="1"} one\n'), /"one" is not a number/);
  });
});

describe('payloads', () => {
  test('generated text has SQuAD-like lengths and a seeded order', () => {
    const a = generatedPayloads('qa', 200, 7);
    const bodies = a.bodies.map((body) => JSON.parse(body) as { question: string; context: string });
    const words = (text: string) => text.split(/\s+/).length;
    for (const { question, context } of bodies) {
      assert.ok(words(context) >= 120 && words(context) <= 150, `context of ${words(context)} words`);
      assert.ok(words(question) >= 9 && words(question) <= 13, `question of ${words(question)} words`);
      assert.match(question, /\?$/);
    }
    assert.deepEqual(generatedPayloads('qa', 200, 7).bodies, a.bodies);
    assert.notDeepEqual(generatedPayloads('qa', 200, 8).bodies, a.bodies);
    assert.ok(a.meanWords.context > 120 && a.meanWords.question < 13);
    for (const task of ['classify', 'ner'] as const) {
      const texts = generatedPayloads(task, 50, 1).bodies.map((body) => (JSON.parse(body) as { text: string }).text);
      assert.ok(texts.every((text) => words(text) >= 6 && words(text) <= 30));
    }
  });

  test('SQuAD, GLUE .tsv and CoNLL files; malformed ones are a one-line error naming the file', (t) => {
    const squad = join(root, 'squad.json');
    const qas = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ id: String(i), question: `q${i}?`, answers: [] }));
    writeFileSync(squad, JSON.stringify({ data: [{ paragraphs: [{ context: 'c one', qas: qas(3) }] }] }));
    assert.deepEqual(squadRecords(squad)[2], { question: 'q2?', context: 'c one' });
    const order = loadPayloads('qa', squad, 1).bodies;
    assert.equal(order.length, 3);
    assert.deepEqual(loadPayloads('qa', squad, 1).bodies, order);

    const pairs = join(root, 'rte.tsv');
    writeFileSync(pairs, 'index\tsentence1\tsentence2\tlabel\n0\tA man.\tA person.\tentailment\n1\t\tmissing\tx\n');
    assert.deepEqual(glueRecords(pairs), [{ text: 'A man.', text_pair: 'A person.' }]);
    const conll = join(root, 'conll.txt');
    writeFileSync(conll, '-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n');
    assert.deepEqual(conllRecords(conll), [{ text: 'EU rejects' }, { text: 'Peter' }]);

    const bad = join(root, 'bad.json');
    writeFileSync(bad, '{"data": [{"title": "no paragraphs"}]}');
    const cases: [() => unknown, RegExp][] = [
      [() => loadPayloads('qa', join(root, 'missing.json'), 1), /missing\.json: dataset file not found/],
      [() => loadPayloads('qa', bad, 1), /bad\.json: no SQuAD questions found/],
      [() => loadPayloads('qa', conll, 1), /conll\.txt: not a SQuAD JSON file/],
      [() => loadPayloads('classify', conll, 1), /not a GLUE \.tsv/],
      [() => loadPayloads('ner', squad, 1), /squad\.json: line 1 is not CoNLL/],
    ];
    for (const [run, message] of cases) {
      assert.throws(
        run,
        (error: Error) =>
          error instanceof LoadtestError && message.test(error.message) && !error.message.includes('\n'),
      );
    }
    t.diagnostic('all malformed inputs gave one-line LoadtestErrors');
  });

  test(
    'the SQuAD v1.1 dev set from ../shared gives every question in a seeded order',
    { skip: existsSync(squadDev) ? false : `skipped: ${squadDev} is absent (the ../shared data folder is not here)` },
    () => {
      const payloads = loadPayloads('qa', squadDev, 1);
      assert.equal(payloads.bodies.length, 10570);
      const first = JSON.parse(payloads.bodies[0]) as { question: string; context: string };
      assert.ok(first.question.length > 0 && first.context.length > first.question.length);
      assert.deepEqual(loadPayloads('qa', squadDev, 1).bodies.slice(0, 50), payloads.bodies.slice(0, 50));
      assert.ok(payloads.meanWords.context > 100 && payloads.meanWords.question > 8);
    },
  );
});

test('only loopback targets are allowed', () => {
  for (const url of ['http://127.0.0.1:8080', 'http://localhost:1/', 'http://127.5.0.1', 'http://[::1]:80'])
    assert.equal(loopbackProblem(url), undefined, url);
  for (const url of ['http://10.0.0.1:8080', 'http://192.168.1.1', 'http://example.com', 'http://localhost.evil.io'])
    assert.match(loopbackProblem(url) ?? '', /only servers on this machine/, url);
  assert.match(loopbackProblem('ftp://127.0.0.1') ?? '', /must be http/);
});

test('ratios come only from runs without errors', () => {
  const level: LoadLevel = { kind: 'concurrency', value: 4, connections: 4 };
  const run = (variant: string, throughput: number, p50: number, p99: number, status: RunResult['status'] = 'ok') =>
    ({
      variant,
      level,
      status,
      problems: status === 'ok' ? [] : ['3 non-2xx responses (429: 3)'],
      throughput,
      latencyMs: { mean: p50, p50, p90: p99, p99, max: p99 },
    }) as RunResult;
  const ratios = computeRatios([run('d', 10, 100, 300), run('s', 30, 40, 270)], [level], ['d', 's'], 'd');
  assert.deepEqual(
    ratios.map((r) => [r.throughputRatio, r.p50Ratio, r.p99Ratio]),
    [[3, 0.4, 0.9]],
  );
  const withErrors = computeRatios([run('d', 10, 100, 300), run('s', 30, 40, 270, 'errors')], [level], ['d', 's'], 'd');
  assert.equal(withErrors[0].throughputRatio, null);
  assert.match(withErrors[0].note!, /s run is errors: 3 non-2xx/);
});

test('the chart is well-formed SVG with a series per model', () => {
  const svg = latencyThroughputSvg(
    [
      { name: 'a<&>"fp32', points: [{ label: 'c1', throughput: 5, p50: 180, p99: 260 }] },
      {
        name: 'b-int8',
        points: [
          { label: 'c1', throughput: 14, p50: 60, p99: 90 },
          { label: 'c4', throughput: 30, p50: 120, p99: 400 },
        ],
      },
    ],
    { title: 'T & t' },
  );
  assertXmlish(svg);
  assert.match(svg, /a&lt;&amp;&gt;&quot;fp32 p50/);
  assert.match(svg, /stroke-dasharray/);
});

describe('loadtest command (tiny converted models, through the CLI)', () => {
  let modelsDir: string;
  before(async () => {
    modelsDir = await prepareModels(root);
  });

  test('--quick end to end: every model x level measured, report consistent with its figures', async () => {
    const out = join(root, 'report-quick');
    const args = ['--quick', '--models-dir', modelsDir, '--concurrency', '1,4', '--rates', '20'];
    const { code, output } = await runLoadtest([...args, '--duration', '2', '--warmup', '1', '--out', out]);
    assert.equal(code, 0, output);
    assert.match(output, /\[1\/6\] concurrency 1, qa-fp32/);
    assert.match(output, /level +model +status +req\/s/);

    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as LoadtestResults;
    assert.equal(results.status, 'complete');
    assert.deepEqual(results.problems, []);
    assert.deepEqual(
      results.variants.map((v) => [v.name, v.role]),
      [
        ['qa-fp32', 'baseline'],
        ['qa-int8', 'compared'],
      ],
    );
    assert.deepEqual(
      results.levels.map((l) => `${l.kind}:${l.value}`),
      ['concurrency:1', 'concurrency:4', 'rate:20'],
    );
    const settings = results.settings as Record<string, unknown>;
    assert.equal(settings.task, 'qa');
    assert.equal(settings.durationSeconds, 2);
    assert.deepEqual(settings.concurrency, [1, 4]);
    const env = results.environment as Record<string, unknown>;
    for (const key of ['node', 'onnxruntimeNode', 'autocannon', 'cpu', 'cores'])
      assert.ok(env[key], `environment.${key}`);
    assert.match(String(env.onnxruntimeNode), /^\d+\.\d+/);
    assert.ok(results.target.startedByLoadtest && results.target.serverPid);

    assert.equal(results.runs.length, 6);
    for (const level of results.levels) {
      for (const variant of ['qa-fp32', 'qa-int8']) {
        const run = results.runs.find(
          (r) => r.variant === variant && r.level.kind === level.kind && r.level.value === level.value,
        );
        assert.ok(run, `${variant} at ${level.kind} ${level.value}`);
        assert.equal(run.status, 'ok', run.problems.join('; '));
        assert.ok(run.ok2xx > 0 && run.throughput > 0 && run.errors === 0 && run.non2xx === 0);
        assert.ok(run.latencyMs.p50 <= run.latencyMs.p99 && run.latencyMs.p99 <= run.latencyMs.max);
        assert.ok(run.durationSeconds <= 4, `bounded run: ${run.durationSeconds} s`);
        assert.ok(run.server && run.server.batchSize.count > 0 && run.server.batchSize.mean! >= 1);
        assert.ok(run.server.queueWait.count >= run.ok2xx, 'every answered row waited in the queue');
        assert.ok(run.server.inference.mean! > 0 && (run.server.requestsByStatus['200'] ?? 0) >= run.ok2xx);
        assert.ok(run.process && run.process.cpuSeconds > 0 && run.process.rssMbPeak > 50);
      }
    }
    // Models take turns: the level after fp32-first starts with int8.
    assert.deepEqual(
      results.runs.map((r) => r.variant),
      ['qa-fp32', 'qa-int8', 'qa-int8', 'qa-fp32', 'qa-fp32', 'qa-int8'],
    );

    const report = readFileSync(join(out, 'report.md'), 'utf8');
    assert.equal(results.ratios.length, 3);
    for (const ratio of results.ratios) {
      const find = (name: string) =>
        results.runs.find((r) => r.variant === name && r.level.value === ratio.level.value)!;
      const [int8, fp32] = [find('qa-int8'), find('qa-fp32')];
      assert.equal(ratio.throughputRatio, Math.round((int8.throughput / fp32.throughput) * 1000) / 1000);
      assert.equal(ratio.p50Ratio, Math.round((int8.latencyMs.p50 / fp32.latencyMs.p50) * 1000) / 1000);
      assert.equal(ratio.p99Ratio, Math.round((int8.latencyMs.p99 / fp32.latencyMs.p99) * 1000) / 1000);
      assert.ok(
        report.includes(
          `qa-int8 / qa-fp32: throughput ${ratio.throughputRatio!.toFixed(2)}x, p50 ${ratio.p50Ratio!.toFixed(2)}x, p99 ${ratio.p99Ratio!.toFixed(2)}x`,
        ),
      );
    }
    for (const heading of ['## concurrency 1', '## concurrency 4', '## rate 20 req/s (20 connections)'])
      assert.ok(report.includes(heading), heading);
    assert.match(report, /Status: \*\*complete\*\*/);
    assert.match(report, /!\[latency vs throughput\]\(latency-throughput\.svg\)/);

    const svg = readFileSync(join(out, 'latency-throughput.svg'), 'utf8');
    assertXmlish(svg);
    assert.ok(svg.includes('qa-fp32 p50') && svg.includes('qa-int8 p99'));
    assert.equal((svg.match(/<polyline/g) ?? []).length, 4);
    assert.ok(existsSync(join(out, 'server.log')));
  });

  test('bad inputs: one clear line and a non-zero exit', async () => {
    const port = await freePort();
    const bad = join(root, 'malformed.json');
    writeFileSync(bad, '{"version": "1.1", "data": "not a list"}');
    const cases: [string[], RegExp, number][] = [
      [['--dataset', join(root, 'nope.json')], /nope\.json: dataset file not found/, 1],
      [['--dataset', bad], /malformed\.json: no SQuAD questions found/, 1],
      [
        ['--models', 'qa-int8,qa-bf16'],
        /unknown model "qa-bf16": .* serves conll-fp32, conll-int8, qa-fp32, qa-int8/,
        1,
      ],
      [['--models', 'sst2-int8'], /model "sst2-int8" is a text-classification model, not question-answering/, 1],
    ];
    const runs = cases.map(([args, ,]) =>
      runLoadtest(['--quick', '--models-dir', modelsDir, '--out', join(root, 'bad-out'), ...args]),
    );
    runs.push(runLoadtest(['--quick', '--url', `http://127.0.0.1:${port}`]));
    runs.push(runLoadtest(['--quick', '--url', 'http://192.168.1.10:8080']));
    const results = await Promise.all(runs);
    const expected: [RegExp, number][] = [
      ...cases.map(([, message, code]) => [message, code] as [RegExp, number]),
      [new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}/readyz: ECONNREFUSED`), 1],
      [/only servers on this machine .* refusing host "192\.168\.1\.10"/, 2],
    ];
    results.forEach(({ code, output }, i) => {
      assert.equal(code, expected[i][1], output);
      const errors = errorLines(output);
      assert.equal(errors.length, 1, output);
      assert.match(errors[0], expected[i][0]);
    });
    assert.ok(!existsSync(join(root, 'bad-out')), 'input checked before a server starts or a report is written');
  });

  test('a server that dies mid-run (--url): clear message, exit 1, figures so far kept and marked incomplete', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const server = startCli([
      'serve',
      '--models-dir',
      modelsDir,
      '--models',
      'qa',
      '--port',
      String(port),
      '--log-level',
      'warn',
    ]);
    await waitUntilReady(base, server);
    const out = join(root, 'report-dies');
    let killed = false;
    const { code, output } = await runLoadtest(
      ['--url', base, '--concurrency', '2', '--duration', '8', '--warmup', '0', '--out', out],
      (text) => {
        if (!killed && text.includes('[1/2]')) {
          killed = true;
          setTimeout(() => server.child.kill('SIGKILL'), 1500);
        }
      },
    );
    await server.exited;
    assert.equal(code, 1, output);
    const errors = errorLines(output);
    assert.equal(errors.length, 1, output);
    assert.match(
      errors[0],
      new RegExp(`the server at ${base} stopped answering during concurrency 2, qa-fp32 .*marked incomplete`),
    );
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as LoadtestResults;
    assert.equal(results.status, 'incomplete');
    assert.equal(results.runs.length, 1);
    const [run] = results.runs;
    assert.equal(run.status, 'incomplete');
    assert.ok(run.ok2xx > 0 && run.errors > 0, 'the answers before the crash are kept, the errors counted');
    assert.equal(run.process, null, 'no /proc figures for --url');
    assert.equal(results.ratios[0].throughputRatio, null);
    assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /Status: \*\*INCOMPLETE\*\*/);
  });
});
