import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { tinyCheckpoint, workspace } from './helpers/workspace.js';

const root = workspace('cli');
const cli = join(import.meta.dirname, '..', 'src', 'cli.ts');

/** Runs the CLI the way `npm run sbs -- ...` does. */
async function sbs(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', cli, ...args], {
      env: { ...process.env, HF_ENDPOINT: 'http://127.0.0.1:9' },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

test('generate then convert from the command line writes the artifacts and a summary', async () => {
  const checkpoint = join(root, 'ckpt-cli');
  const generated = await sbs(
    'generate',
    '--out',
    checkpoint,
    '--family',
    'distilbert',
    '--task',
    'ner',
    '--format',
    'pytorch',
    '--sparsity',
    '0.9',
  );
  assert.equal(generated.code, 0, generated.stderr);
  assert.ok(existsSync(join(checkpoint, 'pytorch_model.bin')));
  const converted = await sbs('convert', checkpoint, '--models-dir', join(root, 'models'));
  assert.equal(converted.code, 0, converted.stderr);
  assert.match(converted.stdout, /encoder sparsity 90\.0%, encoder compression 40\.\dx/);
  const manifest = JSON.parse(readFileSync(join(root, 'models', 'ckpt-cli', 'manifest.json'), 'utf8'));
  assert.equal(manifest.architecture, 'DistilBertForTokenClassification');
});

interface BadCase {
  name: string;
  /** Damages a fresh tiny checkpoint; returns extra CLI arguments. */
  damage: (dir: string) => string[];
  format?: 'safetensors' | 'pytorch';
  /** Every fragment must appear in the one-line error. */
  expect: string[];
}

const header = (dir: string) => join(dir, 'model.safetensors');
const badCases: BadCase[] = [
  {
    name: 'missing config.json',
    damage: (dir) => (rmSync(join(dir, 'config.json')), []),
    expect: ['config.json', 'not found'],
  },
  {
    name: 'unsupported architecture',
    damage: (dir) => (editConfig(dir, (c) => (c.architectures = ['BertForPreTraining'])), []),
    expect: ['config.json', 'unsupported architecture "BertForPreTraining"', 'BertForQuestionAnswering'],
  },
  {
    name: 'config/weight shape mismatch',
    damage: (dir) => (editConfig(dir, (c) => (c.intermediate_size = 96)), []),
    expect: ['model.safetensors', 'shape [64,32]', '[96,32]'],
  },
  {
    name: 'corrupt safetensors header',
    damage: (dir) => {
      const bytes = readFileSync(header(dir));
      bytes.write('#not json#', 8);
      writeFileSync(header(dir), bytes);
      return [];
    },
    expect: ['model.safetensors', 'corrupt safetensors header'],
  },
  {
    name: 'truncated safetensors',
    damage: (dir) => (truncateSync(header(dir), 4000), []),
    expect: ['model.safetensors', 'truncated'],
  },
  {
    name: 'truncated pytorch_model.bin',
    format: 'pytorch',
    damage: (dir) => (
      truncateSync(join(dir, 'pytorch_model.bin'), Math.floor(readFileSync(join(dir, 'pytorch_model.bin')).length / 2)),
      []
    ),
    expect: ['pytorch_model.bin', 'truncated or corrupt'],
  },
  { name: 'no weights', damage: (dir) => (rmSync(header(dir)), []), expect: ['no weights found', 'model.safetensors'] },
  {
    name: 'unknown recipe key',
    damage: (dir) => {
      const recipe = join(dir, '..', `${Math.random()}-recipe.json`);
      writeFileSync(
        recipe,
        JSON.stringify({
          pruning_fn: 'unstructured_magnitude',
          pruning_fn_default_kwargs: { target_sparsity: 0.9 },
          not_to_prun: ['qa_outputs'],
        }),
      );
      return ['--prune', recipe];
    },
    expect: ['recipe.json', 'unknown recipe key "not_to_prun"'],
  },
  {
    name: 'verification out of tolerance',
    damage: () => ['--int8-min-cosine', '1.5'],
    expect: ['verification failed', 'int8 cosine', 'nothing written'],
  },
];

function editConfig(dir: string, edit: (config: Record<string, unknown>) => void): void {
  const path = join(dir, 'config.json');
  const config = JSON.parse(readFileSync(path, 'utf8'));
  edit(config);
  writeFileSync(path, JSON.stringify(config));
}

for (const bad of badCases) {
  test(`bad input, ${bad.name}: one-line error naming the file, exit 1, nothing written`, async () => {
    const slug = bad.name.replace(/\W+/g, '-');
    const checkpoint = tinyCheckpoint(root, `bad-${slug}`, 'bert', 'question-answering', { format: bad.format });
    const extra = bad.damage(checkpoint);
    const modelsDir = join(root, `models-${slug}`);
    const result = await sbs('convert', checkpoint, '--models-dir', modelsDir, ...extra);
    assert.equal(result.code, 1, result.stderr);
    const errorLines = result.stderr.split('\n').filter((line) => line.startsWith('error:'));
    assert.equal(errorLines.length, 1, result.stderr);
    for (const fragment of bad.expect)
      assert.ok(errorLines[0].includes(fragment), `"${fragment}" missing from: ${errorLines[0]}`);
    assert.ok(
      !existsSync(modelsDir) || readdirSync(modelsDir).length === 0,
      `left behind: ${existsSync(modelsDir) && readdirSync(modelsDir)}`,
    );
  });
}

test('an existing artifact folder is not replaced without --force', async () => {
  const checkpoint = tinyCheckpoint(root, 'ckpt-twice', 'bert', 'text-classification');
  const modelsDir = join(root, 'models-twice');
  assert.equal((await sbs('convert', checkpoint, '--models-dir', modelsDir)).code, 0);
  const manifestBefore = readFileSync(join(modelsDir, 'ckpt-twice', 'manifest.json'), 'utf8');
  const again = await sbs('convert', checkpoint, '--models-dir', modelsDir);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /already exists; pass --force/);
  assert.equal(readFileSync(join(modelsDir, 'ckpt-twice', 'manifest.json'), 'utf8'), manifestBefore);
  assert.equal((await sbs('convert', checkpoint, '--models-dir', modelsDir, '--force')).code, 0);
  assert.deepEqual(readdirSync(modelsDir), ['ckpt-twice']);
});

test('usage mistakes exit 2 with the command usage', async () => {
  const result = await sbs('convert', '--sparsity', '0.9', 'somewhere');
  assert.equal(result.code, 2);
  assert.match(result.stderr, /--sparsity needs --prune/);
  assert.match(result.stderr, /sbs convert <checkpoint-dir \| hub-model-id>/);
});
