/*
 * `sbs eval` end to end on tiny generated models (test/helpers/server-fixture.ts): the planted QA model answers
 * "Zurich" wherever the context holds it, so SQuAD EM/F1 are known exactly; the random classifier and NER model give
 * chance-level figures, checked for consistency with the predictions files. Then bad input (every failure names the
 * file and line, nothing is written), and the real data in ../shared/data when it is there.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { convert } from '../conversion/convert.js';
import { dimensionPresets, generateCheckpoint } from '../conversion/generate/random-checkpoint.js';
import { EvalError } from '../eval/errors.js';
import type { EvalReport } from '../eval/evaluate.js';
import { entityScores } from '../eval/metrics/seqeval.js';
import { UsageError } from '../src/commands/flags.js';
import { cliPath, startCli } from './helpers/cli-process.js';
import { filler, readJson, runEval, squadFixture } from './helpers/eval-fixtures.js';
import { prepareModels } from './helpers/server-fixture.js';
import { convertOptions, workspace } from './helpers/workspace.js';

const root = workspace('eval');
const sharedData = join(import.meta.dirname, '..', '..', 'shared', 'data');
let models: string;
let genericModel: string;

before(async () => {
  models = await prepareModels(root);
  // A classifier whose checkpoint names its labels generically (LABEL_0, LABEL_1): mapped to SST-2 by index.
  const checkpoint = generateCheckpoint({
    outDir: join(root, 'ckpt-generic'),
    family: 'bert',
    task: 'text-classification',
    dims: dimensionPresets.tiny,
    format: 'safetensors',
    seed: 11,
    labels: ['LABEL_0', 'LABEL_1'],
  });
  genericModel = join(models, 'generic');
  await convert(convertOptions(checkpoint, genericModel));
});

function fixture(name: string, content: string): string {
  const path = join(root, name);
  writeFileSync(path, content);
  return path;
}

test('SQuAD: both precisions through the server code, exact EM/F1, fidelity, windows batched, files written', async () => {
  const data = fixture('squad.json', JSON.stringify(squadFixture));
  const out = join(root, 'out-squad');
  const { stdout, stderr } = await runEval([
    join(models, 'qa'),
    '--data',
    data,
    '--out',
    out,
    '--max-seq-len',
    '64',
    '--doc-stride',
    '16',
  ]);
  const report = readJson<EvalReport>(join(out, 'squad.json'));
  assert.equal(report.complete, true);
  assert.deepEqual(
    report.results.map((r) => r.model),
    ['qa-int8', 'qa-fp32'],
  );
  for (const result of report.results) {
    // q1 exact; q3 "Zurich" vs "the river": 0; q2 "Zurich" vs "the city of Zurich": EM 0, F1 0.5; q4 (last window) exact.
    assert.equal(result.metrics.exactMatch, 50, result.model);
    assert.equal(result.metrics.f1, 62.5, result.model);
    assert.ok(result.rows > 4, `the long context made several windows (${result.rows} rows)`);
    assert.ok(result.batches < result.rows, `rows were batched (${result.rows} rows in ${result.batches} batches)`);
  }
  const [int8, fp32] = report.results;
  assert.equal(int8.baseline, 'qa-fp32');
  assert.deepEqual(int8.difference, { exactMatch: { absolute: 0, relative: 0 }, f1: { absolute: 0, relative: 0 } });
  assert.equal(fp32.fidelity, undefined);
  assert.equal(int8.fidelity?.reference, 'qa-fp32');
  assert.equal(int8.fidelity?.identicalShare, 100);
  assert.ok(int8.fidelity!.logitsCompared >= 2 * int8.rows * 10, 'start and end logits of every window position');
  assert.ok(
    int8.fidelity!.meanAbsLogitDelta > 0 && int8.fidelity!.meanAbsLogitDelta < 1,
    String(int8.fidelity!.meanAbsLogitDelta),
  );
  assert.deepEqual(report.datasets[0].selection, 'all 4');
  // The official predictions format, {id: answer}, per model.
  assert.deepEqual(readJson(join(out, 'predictions', 'SQuAD-v1.1.qa-int8.predictions.json')), {
    q1: 'Zurich',
    q3: 'Zurich',
    q2: 'Zurich',
    q4: 'Zurich',
  });
  const markdown = readFileSync(join(out, 'squad.md'), 'utf8');
  assert.equal(stdout, markdown);
  assert.match(
    markdown,
    /\| qa-int8 \| int8 \| \d+\.\d% \| 50\.00 \| 62\.50 \| \+0\.00 \(\+0\.0%\) \| \+0\.00 \(\+0\.0%\) \| 100\.0% \(4\/4\) \|/,
  );
  assert.match(markdown, /\| qa-fp32 \| fp32 \| \d+\.\d% \| 50\.00 \| 62\.50 \| baseline \| baseline \| — \|/);
  // Progress on stderr: rate, and the final line with the elapsed time.
  assert.match(stderr, /qa-int8 on SQuAD v1\.1: 4\/4 \(100\.0%\), [\d.]+ items\/s, 0:\d\d elapsed/);
});

test('SST-2 TSV: accuracy agrees with the predictions file; named and generic (LABEL_i) labels; seeded sample', async () => {
  const rows = Array.from({ length: 40 }, (_, i) => `${filler(3 + (i % 7))} number ${i}\t${i % 3 === 0 ? 0 : 1}`);
  const data = fixture('sst2-dev.tsv', `sentence\tlabel\n${rows.join('\n')}\n`);
  const out = join(root, 'out-sst2');
  const { stderr } = await runEval([join(models, 'sst2'), genericModel, '--data', data, '--out', out, '--quiet']);
  assert.equal(stderr, '', '--quiet: no progress');
  const report = readJson<EvalReport>(join(out, 'glue.json'));
  assert.deepEqual(
    report.results.map((r) => [r.model, r.baseline]),
    [
      ['sst2-int8', 'sst2-fp32'],
      ['sst2-fp32', undefined],
      ['generic-int8', 'generic-fp32'],
      ['generic-fp32', undefined],
    ],
  );
  for (const result of report.results) {
    const lines = readFileSync(join(out, 'predictions', `SST-2.${result.model}.predictions.tsv`), 'utf8')
      .trim()
      .split('\n')
      .slice(1);
    assert.equal(lines.length, 40);
    const correct = lines.filter((line) => {
      const [, gold, , predicted] = line.split('\t');
      return gold === predicted;
    }).length;
    assert.equal(result.metrics.accuracy, (100 * correct) / 40, result.model);
    assert.equal(result.metrics.f1, undefined, 'SST-2 reports accuracy only');
    if (result.model.startsWith('generic'))
      assert.ok(lines.every((line) => /\tLABEL_[01]\t(negative|positive)$/.test(line)));
  }
  const int8 = report.results[0];
  assert.ok(
    int8.fidelity!.identicalShare >= 90,
    `int8 labels mostly identical to fp32 (${int8.fidelity!.identicalShare}%)`,
  );
  assert.equal(int8.fidelity!.logitsCompared, 40 * 2);
  assert.ok(int8.meanBatchRows > 1, 'concurrent items were batched');

  // --sample: a seeded subset, the same for the same seed.
  const sampled = async (seed: string) => {
    const dir = join(root, `out-sample-${seed}`);
    await runEval([
      join(models, 'sst2'),
      '--data',
      data,
      '--precisions',
      'int8',
      '--sample',
      '10',
      '--seed',
      seed,
      '--out',
      dir,
      '--quiet',
    ]);
    return readFileSync(join(dir, 'predictions', 'SST-2.sst2-int8.predictions.tsv'), 'utf8');
  };
  const first = await sampled('7');
  assert.equal(first.trim().split('\n').length, 11);
  assert.equal(await sampled('7'), first);
  assert.notEqual(await sampled('8'), first);
});

test('CoNLL-2003: entities mapped to words, seqeval scores agree with the predictions file, per-type F1', async () => {
  const sentences = [
    [
      ['John', 'B-PER'],
      ['lives', 'O'],
      ['in', 'O'],
      ['Paris', 'B-LOC'],
      ['.', 'O'],
    ],
    [
      ['The', 'O'],
      ['European', 'B-ORG'],
      ['Union', 'I-ORG'],
      ['and', 'O'],
      ['London', 'I-LOC'],
    ],
    [
      ['New', 'B-LOC'],
      ['York', 'I-LOC'],
      ['music', 'B-MISC'],
      ['all-rounder', 'O'],
      ['David', 'B-PER'],
      ['Bank', 'I-PER'],
    ],
  ];
  const text = sentences.map((s) => s.map(([w, t]) => `${w} NNP B-NP ${t}`).join('\n')).join('\n\n');
  const data = fixture('conll.txt', `-DOCSTART- -X- -X- O\n\n${text}\n`);
  const out = join(root, 'out-conll');
  await runEval([join(models, 'conll'), '--data', data, '--out', out, '--quiet', '--aggregation', 'simple']);
  const report = readJson<EvalReport>(join(out, 'conll.json'));
  assert.equal((report.settings as { aggregation: string }).aggregation, 'simple');
  for (const result of report.results) {
    const blocks = readFileSync(join(out, 'predictions', `CoNLL-2003.${result.model}.predictions.conll.txt`), 'utf8')
      .trim()
      .split('\n\n')
      .map((block) => block.split('\n').map((line) => line.split(' ')));
    assert.deepEqual(
      blocks.map((b) => b.map(([w, gold]) => [w, gold])),
      sentences,
    );
    const scores = entityScores(
      blocks.map((b) => b.map((cells) => cells[1])),
      blocks.map((b) => b.map((cells) => cells[2])),
    );
    assert.equal(result.metrics.f1, 100 * scores.micro.f1);
    assert.equal(result.metrics.precision, 100 * scores.micro.precision);
    for (const type of ['LOC', 'MISC', 'ORG', 'PER']) assert.ok(result.perType?.[type], `per-type ${type}`);
    assert.equal(result.perType!.LOC.support, 3);
  }
  const int8 = report.results[0];
  assert.equal(typeof int8.fidelity?.entityAgreementF1, 'number');
  assert.equal(int8.fidelity!.logitsCompared % 9, 0, 'every token x 9 labels');
  assert.match(
    readFileSync(join(out, 'conll.md'), 'utf8'),
    /Per entity type F1 \(support: LOC 3, MISC 1, ORG 1, PER 2\)/,
  );
});

/** Runs eval expecting an EvalError whose message names `file` and matches `pattern`; nothing is written. */
async function failsWith(args: string[], file: string, pattern: RegExp): Promise<void> {
  const out = join(root, `out-bad-${Math.random().toString(36).slice(2)}`);
  await assert.rejects(runEval([...args, '--out', out, '--quiet']), (error: unknown) => {
    assert.ok(error instanceof EvalError, `expected EvalError, got ${String(error)}`);
    assert.ok(error.message.startsWith(file), `names ${file}: ${error.message}`);
    assert.match(error.message, pattern);
    return true;
  });
  assert.ok(!existsSync(out) || readdirSync(out).length === 0, 'no result written');
}

test('bad input: labels the model does not know, truncated or empty files, wrong task, refused items', async () => {
  const sst2 = join(models, 'sst2');
  const mnli = fixture(
    'mnli_dev_matched.tsv',
    'index\tpromptID\tpairID\tgenre\tsentence1\tsentence2\tlabel1\tgold_label\n' +
      '0\t1\t2\tx\ta\tb\tneutral\tneutral\n',
  );
  await failsWith(
    [sst2, '--data', mnli],
    mnli,
    /\(line 2\): label 1 \(MNLI class "neutral"\) is not one of the labels of model sst2 \[NEGATIVE, POSITIVE\] \(matched by name\)/,
  );
  const bad = fixture('bad-label.tsv', 'sentence\tlabel\ngood\t1\nodd\t5\n');
  await failsWith([sst2, '--data', bad], bad, /\(line 3\): label "5" is not a SST-2 class/);
  const cut = fixture('cut.tsv', 'sentence\tlabel\ngood\t1\nno label here\n');
  await failsWith([sst2, '--data', cut], cut, /\(line 3\): 1 tab-separated cells/);
  const empty = fixture('empty.tsv', '');
  await failsWith([sst2, '--data', empty], empty, /is empty/);
  const truncated = fixture('truncated.json', JSON.stringify(squadFixture).slice(0, 200));
  await failsWith([join(models, 'qa'), '--data', truncated], truncated, /not valid JSON \(the file looks truncated\)/);
  // A QA model on a GLUE file, an NER model whose labels miss a type of the data.
  await failsWith([join(models, 'qa'), '--data', bad], bad, /is not SQuAD JSON/);
  await failsWith(
    [sst2, '--task', 'squad', '--data', bad],
    sst2,
    /is a text-classification model; --task squad needs a SQuAD v1.1 model/,
  );
  const unknownType = fixture('unknown-type.txt', 'John NNP B-NP B-PER\n\nAcme NNP B-NP B-COMPANY\n');
  await failsWith(
    [join(models, 'conll'), '--data', unknownType],
    unknownType,
    /\(line 3\): entity type "COMPANY" is not one the model conll predicts/,
  );
  // A sentence longer than the model takes: the server would answer 422; evaluation stops at that line.
  const long = fixture('long.tsv', `sentence\tlabel\nshort\t1\n${filler(600)}\t0\n`);
  await failsWith(
    [sst2, '--data', long],
    long,
    /\(line 3\): the model refuses this item: text is too long: 602 tokens, the limit is 512/,
  );
  await failsWith([root, '--data', bad], root, /no manifest\.json/);
});

test('usage mistakes: no model, no data, bad numbers and names', async () => {
  const data = fixture('ok.tsv', 'sentence\tlabel\ngood\t1\n');
  const sst2 = join(models, 'sst2');
  await assert.rejects(runEval(['--data', data]), UsageError);
  await assert.rejects(runEval([sst2]), /--data <file> is required/);
  await assert.rejects(runEval([sst2, '--data', data, '--limit', '0']), /--limit must be an integer >= 1/);
  await assert.rejects(runEval([sst2, '--data', data, '--limit', '2', '--sample', '2']), /exclude each other/);
  await assert.rejects(runEval([sst2, '--data', data, '--precisions', 'int4']), /--precisions/);
  await assert.rejects(runEval([sst2, '--data', data, '--task', 'summarize']), /--task must be/);
  await assert.rejects(
    runEval([sst2, '--data', data, '--baseline', 'nope', '--quiet']),
    /"nope" is not one of the evaluated models/,
  );
});

test('real data from ../shared/data (--limit 20): SQuAD dev, SST-2 dev TSV and train parquet, CoNLL-2003 valid', async (t) => {
  const files = {
    squad: join(sharedData, 'squad-v1.1', 'dev-v1.1.json'),
    sst2: join(sharedData, 'glue-sst2', 'dev.tsv'),
    parquet: join(sharedData, 'glue-sst2', 'train.parquet'),
    conll: join(sharedData, 'conll2003', 'valid.txt'),
  };
  const missing = Object.values(files).filter((path) => !existsSync(path));
  if (missing.length)
    return t.skip(`not present: ${missing.join(', ')} (../shared/data is not part of the repository)`);
  const out = join(root, 'out-real');
  await runEval([join(models, 'qa'), '--data', files.squad, '--limit', '20', '--out', out, '--quiet']);
  await runEval([
    join(models, 'sst2'),
    '--data',
    files.sst2,
    '--data',
    files.parquet,
    '--limit',
    '20',
    '--out',
    out,
    '--quiet',
  ]);
  await runEval([join(models, 'conll'), '--data', files.conll, '--limit', '20', '--out', out, '--quiet']);
  const squad = readJson<EvalReport>(join(out, 'squad.json'));
  assert.deepEqual(
    squad.datasets.map((d) => [d.totalItems, d.selection]),
    [[10570, 'first 20 of 10570']],
  );
  const glue = readJson<EvalReport>(join(out, 'glue.json'));
  assert.deepEqual(
    glue.datasets.map((d) => [d.name, d.totalItems, d.evaluatedItems]),
    [
      ['SST-2 (dev.tsv)', 872, 20],
      ['SST-2 (train.parquet)', 67349, 20],
    ],
  );
  assert.equal(glue.results.length, 4);
  const conll = readJson<EvalReport>(join(out, 'conll.json'));
  assert.deepEqual(
    conll.datasets.map((d) => [d.totalItems, d.evaluatedItems]),
    [[3250, 20]],
  );
  for (const report of [squad, glue, conll]) {
    for (const result of report.results) {
      for (const value of Object.values(result.metrics))
        assert.ok(value >= 0 && value <= 100, `${result.model}: ${value}`);
    }
  }
});

test('the CLI: "sbs eval" exits 1 with the file and line on bad data (once src/cli.ts registers the command)', async (t) => {
  if (!readFileSync(cliPath, 'utf8').includes('eval-command')) return t.skip('src/cli.ts does not register "eval" yet');
  const bad = fixture('cli-bad.tsv', 'sentence\tlabel\ngood\t1\nodd\t5\n');
  const cli = startCli(['eval', join(models, 'sst2'), '--data', bad, '--quiet']);
  assert.equal(await cli.exited, 1, cli.output());
  assert.match(cli.output(), /error: .*cli-bad\.tsv \(line 3\): label "5" is not a SST-2 class/);
});
