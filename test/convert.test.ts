import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { encoderLinears } from '../conversion/checkpoint/layout.js';
import { loadCheckpoint } from '../conversion/checkpoint/load-checkpoint.js';
import type { Family, Task } from '../conversion/checkpoint/model-config.js';
import { convert } from '../conversion/convert.js';
import { decodeModel } from '../conversion/graph/onnx-builder.js';
import type { Manifest } from '../conversion/manifest.js';
import { startHub } from './helpers/fake-hub.js';
import { int8Initializers } from './helpers/onnx-weights.js';
import { convertOptions, tinyCheckpoint, workspace } from './helpers/workspace.js';

const root = workspace('convert');

async function runModel(
  path: string,
  manifest: Manifest,
  batch: number,
  sequence: number,
): Promise<ort.InferenceSession.OnnxValueMapType> {
  const session = await ort.InferenceSession.create(path);
  const tensor = (fill: (i: number) => number) =>
    new ort.Tensor(
      'int64',
      BigInt64Array.from({ length: batch * sequence }, (_, i) => BigInt(fill(i))),
      [batch, sequence],
    );
  const all: Record<string, ort.Tensor> = {
    input_ids: tensor((i) => 5 + (i % 50)),
    attention_mask: tensor(() => 1),
    token_type_ids: tensor(() => 0),
  };
  const outputs = await session.run(Object.fromEntries(manifest.signature.inputs.map((name) => [name, all[name]])));
  await session.release();
  return outputs;
}

const cases: { family: Family; task: Task; format: 'safetensors' | 'pytorch' }[] = [
  { family: 'bert', task: 'question-answering', format: 'pytorch' },
  { family: 'bert', task: 'text-classification', format: 'safetensors' },
  { family: 'bert', task: 'token-classification', format: 'pytorch' },
  { family: 'distilbert', task: 'question-answering', format: 'safetensors' },
  { family: 'distilbert', task: 'text-classification', format: 'pytorch' },
  { family: 'distilbert', task: 'token-classification', format: 'safetensors' },
];

for (const { family, task, format } of cases) {
  test(`converts ${family} ${task} from ${format}: verified, hashed, runnable with dynamic batch and sequence`, async () => {
    const name = `${family}-${task}-${format}`;
    const checkpoint = tinyCheckpoint(root, `ckpt-${name}`, family, task, { format });
    const outputDir = join(root, 'models', name);
    const manifest = await convert(convertOptions(checkpoint, outputDir));

    assert.equal(manifest.task, task);
    assert.equal(manifest.family, family);
    assert.equal(manifest.source.weightFormat, format);
    assert.ok(manifest.verification.passed);
    assert.ok(manifest.verification.denseVsReference.maxAbsDiff <= 1e-4);
    assert.ok(manifest.verification.int8VsDense.minCosine >= 0.99);
    if (task === 'token-classification')
      assert.deepEqual(manifest.labels, [
        'O',
        'B-MISC',
        'I-MISC',
        'B-PER',
        'I-PER',
        'B-ORG',
        'I-ORG',
        'B-LOC',
        'I-LOC',
      ]);
    if (task === 'text-classification') assert.deepEqual(manifest.labels, ['NEGATIVE', 'POSITIVE']);
    assert.equal(manifest.signature.inputs.includes('token_type_ids'), family === 'bert');

    const onDisk = readdirSync(outputDir).sort();
    assert.deepEqual(onDisk, [
      'config.json',
      'manifest.json',
      'model.int8.onnx',
      'model.onnx',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    for (const [file, entry] of Object.entries(manifest.files)) {
      const bytes = readFileSync(join(outputDir, file));
      assert.equal(entry.sha256, createHash('sha256').update(bytes).digest('hex'), `sha256 of ${file}`);
      assert.equal(entry.bytes, bytes.length);
    }
    assert.deepEqual(
      JSON.parse(readFileSync(join(outputDir, 'manifest.json'), 'utf8')),
      JSON.parse(JSON.stringify(manifest)),
    );

    for (const file of ['model.onnx', 'model.int8.onnx']) {
      const outputs = await runModel(join(outputDir, file), manifest, 3, 11);
      for (const output of manifest.signature.outputs) {
        const expected =
          task === 'text-classification' ? [3, 2] : task === 'token-classification' ? [3, 11, 9] : [3, 11];
        assert.deepEqual(outputs[output].dims, expected, `${file} ${output}`);
      }
    }
  });
}

test('a sparse checkpoint keeps every zero through int8, is packed, and reports the paper-style compression', async () => {
  const checkpoint = tinyCheckpoint(root, 'ckpt-sparse', 'bert', 'question-answering', { sparsity: 0.9 });
  const outputDir = join(root, 'models', 'sparse');
  const manifest = await convert(convertOptions(checkpoint, outputDir));

  assert.ok(
    Math.abs(manifest.sparsity.checkpoint.encoderLinearSparsity - 0.9) < 0.002,
    `${manifest.sparsity.checkpoint.encoderLinearSparsity}`,
  );
  assert.equal(manifest.sparsity.pruning, null);
  for (const layer of manifest.sparsity.final.layers) {
    if (layer.module === 'qa_outputs') assert.equal(layer.sparsity, 0);
    else assert.ok(Math.abs(layer.sparsity - 0.9) < 0.002, `${layer.module} ${layer.sparsity}`);
  }
  // 32 bits per dense weight over 8 bits per surviving one: 4 / 0.1 = 40x, as the paper counts it.
  assert.ok(
    Math.abs(manifest.compression.encoderCompressionRatio - 40) < 1,
    `${manifest.compression.encoderCompressionRatio}`,
  );
  assert.equal(manifest.artifacts['model.int8.onnx'].sparseStorage, true);

  const source = loadCheckpoint(checkpoint);
  const stored = int8Initializers(join(outputDir, 'model.int8.onnx'));
  for (const linear of encoderLinears(source.model)) {
    const quantized = stored.get(`${linear.module}.weight_quantized`);
    assert.ok(quantized?.sparse, `${linear.module} stored as sparse_initializer`);
    const [outFeatures, inFeatures] = linear.weight.shape;
    for (let o = 0; o < outFeatures; o++) {
      for (let i = 0; i < inFeatures; i++) {
        if (linear.weight.data[o * inFeatures + i] === 0)
          assert.equal(quantized.values[i * outFeatures + o], 0, `${linear.module}[${o},${i}]`);
      }
    }
  }
  const heads = [...stored.keys()].filter((name) => name.startsWith('qa_outputs'));
  assert.deepEqual(heads, [], 'the QA head stays fp32');
});

function writeRecipe(name: string, recipe: object): string {
  const path = join(root, name);
  writeFileSync(path, JSON.stringify(recipe));
  return path;
}

test('--prune applies an Intel recipe one-shot to 90%, skips not_to_prune modules, and warns', async () => {
  const checkpoint = tinyCheckpoint(root, 'ckpt-dense-cls', 'bert', 'text-classification');
  const recipe = writeRecipe('prune90.json', {
    pruning_fn: 'unstructured_magnitude',
    pruning_fn_default_kwargs: { initial_sparsity: 0, target_sparsity: 0.9 },
    not_to_prune: ['pooler', 'classifier'],
    prune_layer_types: { Linear: { name: 'weight' } },
    scheduler: 'iterative',
    policy_end_step: 50000,
  });
  const lines: string[] = [];
  const manifest = await convert(
    convertOptions(checkpoint, join(root, 'models', 'pruned'), {
      pruneRecipePath: recipe,
      log: (line) => lines.push(line),
    }),
  );
  assert.ok(lines.some((line) => line.includes('WARNING') && line.includes('without retraining')));
  assert.equal(manifest.sparsity.checkpoint.encoderLinearSparsity, 0);
  assert.ok(Math.abs(manifest.sparsity.final.encoderLinearSparsity - 0.9) < 0.001);
  for (const layer of manifest.sparsity.final.layers) {
    const expected = /pooler|classifier/.test(layer.module) ? 0 : 0.9;
    assert.ok(Math.abs(layer.sparsity - expected) < 0.001, `${layer.module} ${layer.sparsity}`);
  }
  assert.equal(manifest.sparsity.pruning?.pruningFn, 'unstructured_magnitude');
  assert.ok(manifest.sparsity.pruning?.warning.includes('without retraining'));
});

test("recipe block_dims [1, 4] (Intel's 1x4) zeroes whole blocks of 4 consecutive output channels at one input", async () => {
  const checkpoint = tinyCheckpoint(root, 'ckpt-dense-qa', 'distilbert', 'question-answering');
  const recipe = writeRecipe('block.json', {
    pruning_fn: 'block_structured_magnitude',
    pruning_fn_default_kwargs: { target_sparsity: 0.8, block_dims: [1, 4] },
    not_to_prune: ['qa_outputs'],
  });
  const outputDir = join(root, 'models', 'block');
  const manifest = await convert(convertOptions(checkpoint, outputDir, { pruneRecipePath: recipe }));
  // The package's count: floor(0.8 x blocks) per weight (random weights: no ties at the threshold).
  const expectedZeros = encoderLinears(loadCheckpoint(checkpoint).model).reduce(
    (sum, l) => sum + 4 * Math.floor((0.8 * l.weight.data.length) / 4),
    0,
  );
  const encoderWeights = manifest.parameters.encoderLinearWeights;
  assert.equal(Math.round(manifest.sparsity.final.encoderLinearSparsity * encoderWeights), expectedZeros);
  // The manifest names the axis; blockDims stays the recipe's [in, out].
  assert.deepEqual(manifest.sparsity.pruning?.blockDims, [1, 4]);
  assert.deepEqual(manifest.sparsity.pruning?.block, {
    outputs: 4,
    inputs: 1,
    notation: '1x4 (recipe block_dims [in, out])',
    description: '4 consecutive output channels at one input',
  });
  // The fp32 baseline holds the pruned weights transposed to [in, out]: a block of 4 torch rows (outputs) at one
  // column (input) is 4 consecutive values of one row there.
  const graph = decodeModel(readFileSync(join(outputDir, 'model.onnx'))).graph!;
  const weight = graph.initializer!.find((t) => t.name === 'distilbert.transformer.layer.0.ffn.lin1.weight')!;
  const [inFeatures, outFeatures] = weight.dims!.map(Number);
  const raw = weight.rawData!;
  const values = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  let zeroBlocks = 0;
  for (let i = 0; i < inFeatures; i++) {
    for (let o0 = 0; o0 < outFeatures; o0 += 4) {
      const zeros = [0, 1, 2, 3].filter((k) => values[i * outFeatures + o0 + k] === 0).length;
      assert.ok(zeros === 0 || zeros === 4, `block at in ${i}, out ${o0}..${o0 + 3} is partly zero`);
      if (zeros === 4) zeroBlocks++;
    }
  }
  assert.equal(zeroBlocks, Math.floor(0.8 * (outFeatures / 4) * inFeatures));
});

test('a Hub model id is downloaded through the endpoint with the token, then converted', async () => {
  const checkpoint = tinyCheckpoint(root, 'ckpt-hub', 'bert', 'question-answering', {
    format: 'pytorch',
    sparsity: 0.85,
  });
  const files = Object.fromEntries(readdirSync(checkpoint).map((file) => [file, readFileSync(join(checkpoint, file))]));
  const hub = await startHub({
    'Intel/tiny-bert-sparse-85': { files, token: 'hf_secret', redirected: ['pytorch_model.bin'] },
  });
  try {
    const lines: string[] = [];
    const outputDir = join(root, 'models', 'from-hub');
    const manifest = await convert(
      convertOptions('Intel/tiny-bert-sparse-85', outputDir, {
        hub: { endpoint: hub.endpoint, token: 'hf_secret', revision: 'main', cacheDir: join(root, 'hub-cache') },
        log: (line) => lines.push(line),
      }),
    );
    assert.equal(manifest.source.kind, 'hub');
    assert.equal(manifest.source.location, 'Intel/tiny-bert-sparse-85');
    assert.ok(Math.abs(manifest.sparsity.checkpoint.encoderLinearSparsity - 0.85) < 0.002);
    assert.ok(
      lines.some((line) => line.includes('pytorch_model.bin')),
      'download progress is reported',
    );
    assert.ok(
      hub.requests.every((request) => request.authorization === 'Bearer hf_secret' || request.path.startsWith('/cdn')),
    );
  } finally {
    await hub.close();
  }
});
