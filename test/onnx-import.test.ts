import assert from 'node:assert/strict';
import { readFileSync, rmSync, truncateSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { resolveLayout } from '../conversion/checkpoint/layout.js';
import { loadCheckpoint } from '../conversion/checkpoint/load-checkpoint.js';
import type { Family, ModelSpec, Task } from '../conversion/checkpoint/model-config.js';
import { moduleOfNode, readOnnxExportWeights } from '../conversion/checkpoint/onnx-import.js';
import { readSafetensors } from '../conversion/checkpoint/safetensors.js';
import { halfToFloat, type WeightMap } from '../conversion/checkpoint/tensor.js';
import { ConversionError } from '../conversion/errors.js';
import { buildBertGraph } from '../conversion/graph/bert-graph.js';
import { fp32Emitter } from '../conversion/graph/linear-emitters.js';
import { decodeModel, encodeModel, onnx, type ModelProto } from '../conversion/graph/onnx-builder.js';
import { bytesOf, toHalfBits, toTorchExport, writeExport } from './helpers/torch-export.js';
import { convertOptions, tinyCheckpoint, workspace } from './helpers/workspace.js';
import { convert } from '../conversion/convert.js';

const root = workspace('onnx-import');

interface Fixture {
  dir: string;
  spec: ModelSpec;
  /** The checkpoint's own tensors, the ground truth. */
  expected: WeightMap;
  /** The project's fp32 graph (builder naming), encoded: the reference for run-time comparisons. */
  original: Uint8Array;
  /** A fresh decoded copy of that graph to rewrite. */
  graph(): ModelProto;
}

let fixtureCount = 0;
function fixture(family: Family, task: Task): Fixture {
  const dir = tinyCheckpoint(root, `ckpt-${family}-${task}-${fixtureCount++}`, family, task, { seed: 11 });
  const checkpoint = loadCheckpoint(dir);
  const original = encodeModel(buildBertGraph(checkpoint.spec, checkpoint.model, fp32Emitter, '0'));
  return {
    dir,
    spec: checkpoint.spec,
    expected: readSafetensors(join(dir, 'model.safetensors')),
    original,
    graph: () => decodeModel(original),
  };
}

function assertSameWeights(actual: WeightMap, expected: WeightMap, widen?: (x: number) => number): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [name, want] of expected) {
    const got = actual.get(name)!;
    assert.deepEqual(got.shape, want.shape, `shape of ${name}`);
    const wanted = widen ? want.data.map(widen) : want.data;
    assert.ok(Buffer.from(bytesOf(got.data)).equals(Buffer.from(bytesOf(wanted))), `values of ${name}`);
  }
}

async function logits(model: string | Uint8Array, spec: ModelSpec): Promise<Float32Array[]> {
  const session =
    typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
  const [batch, sequence] = [2, 7];
  const tensor = (fill: (i: number) => number) =>
    new ort.Tensor(
      'int64',
      BigInt64Array.from({ length: batch * sequence }, (_, i) => BigInt(fill(i))),
      [batch, sequence],
    );
  const feeds: Record<string, ort.Tensor> = {
    input_ids: tensor((i) => 5 + ((i * 7) % 60)),
    attention_mask: tensor((i) => (i % sequence < 5 ? 1 : 0)),
  };
  if (spec.family === 'bert') feeds.token_type_ids = tensor((i) => (i % sequence > 3 ? 1 : 0));
  const outputs = await session.run(feeds);
  await session.release();
  return session.outputNames.map((name) => outputs[name].data as Float32Array);
}

/** The rewritten export must still be a valid graph computing what the original did. */
async function assertRunsLikeOriginal(path: string, fx: Fixture): Promise<void> {
  const [want, got] = [await logits(fx.original, fx.spec), await logits(path, fx.spec)];
  assert.equal(got.length, want.length);
  got.forEach((values, k) =>
    values.forEach((v, i) => assert.ok(Math.abs(v - want[k][i]) < 1e-5, `output ${k}[${i}]: ${v} vs ${want[k][i]}`)),
  );
}

function assertConversionError(run: () => unknown, file: string, problem: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ConversionError, `expected a ConversionError, got ${error}`);
    assert.equal(error.file, file);
    assert.match(error.problem, problem);
    assert.ok(!error.message.includes('\n'), 'one line');
    return true;
  });
}

test('module scope of node names', () => {
  assert.equal(
    moduleOfNode('/bert/encoder/layer.0/attention/self/query/MatMul'),
    'bert.encoder.layer.0.attention.self.query',
  );
  assert.equal(
    moduleOfNode('/distilbert/transformer/layer.1/ffn/lin2/MatMul_1'),
    'distilbert.transformer.layer.1.ffn.lin2',
  );
  assert.equal(moduleOfNode('/classifier/Gemm'), 'classifier');
  assert.equal(moduleOfNode('MatMul_123'), undefined);
  assert.equal(moduleOfNode('/MatMul'), undefined);
  assert.equal(moduleOfNode(''), undefined);
});

for (const [family, task] of [
  ['bert', 'question-answering'],
  ['distilbert', 'token-classification'],
  ['distilbert', 'text-classification'],
] as [Family, Task][]) {
  test(`reads a torch.onnx-style ${family} ${task} export back to the checkpoint's tensors exactly`, async () => {
    const fx = fixture(family, task);
    const model = toTorchExport(fx.graph(), fx.spec);
    const matmulWeights = model.graph!.initializer!.filter((t) => t.name!.startsWith('onnx::MatMul_'));
    assert.equal(matmulWeights.length, fx.spec.numLayers * 6 + (task === 'text-classification' ? 2 : 1));
    const firstLinear =
      family === 'bert'
        ? '/bert/encoder/layer.0/attention/self/query/MatMul'
        : '/distilbert/transformer/layer.0/attention/q_lin/MatMul';
    assert.ok(model.graph!.node!.some((n) => n.name === firstLinear && n.input![1].startsWith('onnx::MatMul_')));
    const path = writeExport(join(fx.dir, 'onnx'), model);
    const weights = readOnnxExportWeights(path);
    assertSameWeights(weights, fx.expected);
    for (const tensor of weights.values()) assert.equal(tensor.sourceDtype, 'float32');
    resolveLayout(fx.spec, weights, path);
    await assertRunsLikeOriginal(path, fx);
  });
}

test('reads an export whose tensors live in external data (model.onnx_data)', async () => {
  const fx = fixture('bert', 'text-classification');
  const dir = join(fx.dir, 'onnx-external');
  const path = writeExport(dir, toTorchExport(fx.graph(), fx.spec), 'model.onnx_data');
  const stored = decodeModel(readFileSync(path)).graph!.initializer!;
  assert.ok(stored.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL).length > 10);
  assert.ok(stored.some((t) => t.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL && t.name!.endsWith('.bias')));
  assertSameWeights(readOnnxExportWeights(path), fx.expected);
  await assertRunsLikeOriginal(path, fx);

  const sideFile = join(dir, 'model.onnx_data');
  truncateSync(sideFile, 5000);
  assertConversionError(() => readOnnxExportWeights(path), sideFile, /truncated/);
  rmSync(sideFile);
  assertConversionError(() => readOnnxExportWeights(path), sideFile, /external data file not found/);
});

test('reads Gemm-exported Linears (transB=1 under the HF name or an opaque one, transB=0)', async () => {
  const bert = fixture('bert', 'text-classification');
  const bertModel = toTorchExport(bert.graph(), bert.spec, {
    gemm: { 'bert.pooler.dense': { transB: 1, keepName: true }, classifier: { transB: 1, keepName: false } },
  });
  const gemms = bertModel.graph!.node!.filter((n) => n.opType === 'Gemm');
  assert.deepEqual(
    gemms.map((n) => [n.name, n.input![1]]),
    [
      ['/bert/pooler/dense/Gemm', 'bert.pooler.dense.weight'],
      ['/classifier/Gemm', 'onnx::Gemm_1213'],
    ],
  );
  const bertPath = writeExport(join(bert.dir, 'onnx-gemm'), bertModel);
  assertSameWeights(readOnnxExportWeights(bertPath), bert.expected);
  await assertRunsLikeOriginal(bertPath, bert);

  const distil = fixture('distilbert', 'text-classification');
  const distilModel = toTorchExport(distil.graph(), distil.spec, {
    gemm: { pre_classifier: { transB: 0, keepName: false }, classifier: { transB: 1, keepName: false } },
  });
  const distilPath = writeExport(join(distil.dir, 'onnx-gemm'), distilModel);
  assertSameWeights(readOnnxExportWeights(distilPath), distil.expected);
  await assertRunsLikeOriginal(distilPath, distil);
});

test('reads weights held in Constant nodes and in float_data', async () => {
  const fx = fixture('bert', 'token-classification');
  const model = toTorchExport(fx.graph(), fx.spec, { weightsInConstantNodes: true, biasesInTypedFields: true });
  assert.equal(model.graph!.initializer!.length, 0);
  const path = writeExport(join(fx.dir, 'onnx-constants'), model);
  assertSameWeights(readOnnxExportWeights(path), fx.expected);
  await assertRunsLikeOriginal(path, fx);
});

test('widens an fp16 export (raw_data and int32_data) to fp32', () => {
  const fx = fixture('distilbert', 'question-answering');
  const model = toTorchExport(fx.graph(), fx.spec, { fp16: true, biasesInTypedFields: true });
  const path = writeExport(join(fx.dir, 'onnx-fp16'), model);
  const weights = readOnnxExportWeights(path);
  assertSameWeights(weights, fx.expected, (x) => halfToFloat(toHalfBits(x)));
  for (const tensor of weights.values()) assert.equal(tensor.sourceDtype, 'float16');
});

test('an export whose MatMul nodes carry no module path is refused with a clear error', () => {
  const fx = fixture('bert', 'question-answering');
  const path = writeExport(join(fx.dir, 'onnx-legacy'), toTorchExport(fx.graph(), fx.spec, { nodeNames: 'legacy' }));
  assertConversionError(
    () => readOnnxExportWeights(path),
    path,
    /^cannot map MatMul weights to modules: node names carry no module path .*re-export with torch >= 1\.13 \/ optimum$/,
  );
});

test('module-less MatMul nodes are fine when their weights keep parameter names (read transposed)', () => {
  const fx = fixture('distilbert', 'question-answering');
  const model = toTorchExport(fx.graph(), fx.spec, { nodeNames: 'legacy', matmulWeightNames: 'parameter' });
  const lin1 = model.graph!.initializer!.find((t) => t.name === 'distilbert.transformer.layer.0.ffn.lin1.weight')!;
  assert.deepEqual(lin1.dims!.map(Number), [fx.spec.hiddenSize, fx.spec.intermediateSize]);
  const path = writeExport(join(fx.dir, 'onnx-legacy-named'), model);
  assertSameWeights(readOnnxExportWeights(path), fx.expected);
});

test('garbage, truncated and missing files are refused naming the file', () => {
  const dir = join(root, 'bad');
  mkdirSync(dir, { recursive: true });
  const garbage = join(dir, 'garbage.onnx');
  writeFileSync(garbage, 'this is certainly not a protobuf-encoded ONNX model\n');
  assertConversionError(() => readOnnxExportWeights(garbage), garbage, /^not a readable ONNX model: /);

  const empty = join(dir, 'empty.onnx');
  writeFileSync(empty, new Uint8Array([8, 7]));
  assertConversionError(() => readOnnxExportWeights(empty), empty, /^not a readable ONNX model: /);

  const fx = fixture('bert', 'question-answering');
  const bytes = encodeModel(toTorchExport(fx.graph(), fx.spec));
  const truncated = join(dir, 'truncated.onnx');
  writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  assertConversionError(() => readOnnxExportWeights(truncated), truncated, /^not a readable ONNX model: /);

  const missing = join(dir, 'missing.onnx');
  assertConversionError(() => readOnnxExportWeights(missing), missing, /file not found/);
});

test('convert takes a folder holding an fp32 ONNX export instead of weights, and verifies it like any checkpoint', async () => {
  const fx = fixture('bert', 'question-answering');
  const exportDir = join(root, 'optimum-export');
  mkdirSync(exportDir, { recursive: true });
  for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json'])
    writeFileSync(join(exportDir, file), readFileSync(join(fx.dir, file)));
  writeExport(join(exportDir, 'onnx'), toTorchExport(fx.graph(), fx.spec));
  const manifest = await convert(convertOptions(exportDir, join(root, 'models', 'from-onnx')));
  assert.equal(manifest.source.weightFormat, 'onnx');
  assert.deepEqual(manifest.source.weightFiles, ['onnx/model.onnx']);
  assert.ok(manifest.verification.passed);
});
