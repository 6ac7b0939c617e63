import assert from 'node:assert/strict';
import { readFileSync, rmSync, truncateSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { resolveLayout } from '../conversion/checkpoint/layout.js';
import { loadCheckpoint } from '../conversion/checkpoint/load-checkpoint.js';
import type { Family, ModelSpec, Task } from '../conversion/checkpoint/model-config.js';
import { moduleOfNode, readOnnxExportWeights } from '../conversion/checkpoint/onnx-import.js';
import { readSafetensors } from '../conversion/checkpoint/safetensors.js';
import { decodeFloatTensor, halfToFloat, type WeightMap } from '../conversion/checkpoint/tensor.js';
import { ConversionError } from '../conversion/errors.js';
import { buildBertGraph } from '../conversion/graph/bert-graph.js';
import { fp32Emitter } from '../conversion/graph/linear-emitters.js';
import { decodeModel, encodeModel, onnx, type ModelProto, type TensorProto } from '../conversion/graph/onnx-builder.js';
import { transpose } from '../conversion/quantize/int8.js';
import { convertOptions, tinyCheckpoint, workspace } from './helpers/workspace.js';
import { convert } from '../conversion/convert.js';

const root = workspace('onnx-import');
const DataType = onnx.TensorProto.DataType;
const AttributeType = onnx.AttributeProto.AttributeType;

interface ExportOptions {
  /** 'legacy' names MatMul nodes like torch < 1.13 did (`MatMul_123`), with no module scope. */
  nodeNames?: 'scoped' | 'legacy';
  /** 'parameter' keeps the [in, out] MatMul weights under their `<module>.weight` names instead of `onnx::MatMul_<n>`. */
  matmulWeightNames?: 'opaque' | 'parameter';
  /** Linear modules (on 2-D inputs) exported as one Gemm, as torch does for the pooler/classifier. */
  gemm?: Record<string, { transB: 0 | 1; keepName: boolean }>;
  /** Every weight tensor held in a Constant node's `value` attribute instead of an initializer. */
  weightsInConstantNodes?: boolean;
  /** Biases in the typed fields (float_data / int32_data) instead of raw_data. */
  biasesInTypedFields?: boolean;
  /** Float tensors stored as fp16. */
  fp16?: boolean;
}

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

function floatsOf(tensor: TensorProto): Float32Array {
  const count = (tensor.dims ?? []).map(Number).reduce((a, b) => a * b, 1);
  return decodeFloatTensor(tensor.rawData!, 'float32', count);
}

function bytesOf(data: Float32Array | Uint16Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Truncating fp32 → fp16 bit pattern; the test compares against the same bits widened, so rounding is immaterial. */
function toHalfBits(value: number): number {
  const bits = new Uint32Array(Float32Array.of(value).buffer)[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  if (exponent <= 0) return sign;
  if (exponent >= 31) return sign | 0x7c00;
  return sign | (exponent << 10) | ((bits & 0x7fffff) >>> 13);
}

/** `bert.encoder.layer.0.attention.self.query` → `/bert/encoder/layer.0/attention/self/query`, torch's scope naming. */
function torchScope(module: string): string {
  const parts: string[] = [];
  for (const part of module.split('.')) {
    if (/^\d+$/.test(part) && parts.length > 0) parts[parts.length - 1] += `.${part}`;
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

/** The Hugging Face parameter name of one of the graph builder's non-Linear initializers. */
function hfName(name: string, spec: ModelSpec): string {
  if (name.startsWith('embeddings.')) return `${spec.family}.${name}`;
  const norm = /^layer\.(\d+)\.(attention_norm|output_norm)\.(weight|bias)$/.exec(name);
  if (!norm) return name;
  const [, i, which, kind] = norm;
  if (spec.family === 'bert') {
    return `bert.encoder.layer.${i}.${which === 'attention_norm' ? 'attention.output' : 'output'}.LayerNorm.${kind}`;
  }
  return `distilbert.transformer.layer.${i}.${which === 'attention_norm' ? 'sa_layer_norm' : 'output_layer_norm'}.${kind}`;
}

/**
 * Rewrites the project's fp32 graph into what torch.onnx.export / optimum write: parameters under their HF names,
 * Linear weights constant-folded to [in, out] as `onnx::MatMul_<n>` read by `/module/path/MatMul` nodes, scalar
 * constants as Constant nodes.
 */
function toTorchExport(model: ModelProto, spec: ModelSpec, options: ExportOptions = {}): ModelProto {
  const graph = model.graph!;
  const nodes = graph.node!;
  const initializers = new Map(graph.initializer!.map((t) => [t.name!, t]));
  const renames = new Map<string, string>();
  const dropped = new Set<onnxProto.onnx.INodeProto>();
  let counter = 1201;

  for (const node of nodes) {
    if (node.opType !== 'MatMul' || !initializers.has(node.input![1])) continue;
    const weightName = node.input![1];
    const weight = initializers.get(weightName)!;
    const module = weightName.slice(0, -'.weight'.length);
    const gemm = options.gemm?.[module];
    if (!gemm) {
      if (options.matmulWeightNames !== 'parameter') renames.set(weightName, `onnx::MatMul_${counter++}`);
      node.name = options.nodeNames === 'legacy' ? `MatMul_${counter++}` : `${torchScope(module)}/MatMul`;
      continue;
    }
    const add = nodes.find((n) => n.opType === 'Add' && n.input![0] === node.output![0])!;
    dropped.add(add);
    node.opType = 'Gemm';
    node.name = `${torchScope(module)}/Gemm`;
    node.input = [node.input![0], weightName, add.input![1]];
    node.output = add.output;
    node.attribute = [
      { name: 'alpha', type: AttributeType.FLOAT, f: 1 },
      { name: 'beta', type: AttributeType.FLOAT, f: 1 },
      { name: 'transB', type: AttributeType.INT, i: gemm.transB },
    ];
    if (gemm.transB === 1) {
      const [inFeatures, outFeatures] = weight.dims!.map(Number);
      weight.rawData = bytesOf(transpose(floatsOf(weight), inFeatures, outFeatures));
      weight.dims = [outFeatures, inFeatures];
    }
    if (!gemm.keepName) renames.set(weightName, `onnx::Gemm_${counter++}`);
  }
  graph.node = nodes.filter((n) => !dropped.has(n));

  const constantNodes: onnxProto.onnx.INodeProto[] = [];
  const toConstant = (tensor: TensorProto, output: string) =>
    constantNodes.push({
      opType: 'Constant',
      name: `/Constant_${constantNodes.length}`,
      output: [output],
      attribute: [{ name: 'value', type: AttributeType.TENSOR, t: { ...tensor, name: '' } }],
    });
  const kept: TensorProto[] = [];
  for (const tensor of graph.initializer!) {
    const name = tensor.name!;
    if (name.startsWith('const_')) {
      const output = `/Constant_${constantNodes.length}_output_0`;
      renames.set(name, output);
      toConstant(tensor, output);
      continue;
    }
    tensor.name = renames.get(name) ?? hfName(name, spec);
    if (tensor.name !== name) renames.set(name, tensor.name);
    if (options.biasesInTypedFields && tensor.name.endsWith('.bias')) {
      tensor.floatData = Array.from(floatsOf(tensor));
      delete tensor.rawData;
    }
    if (options.fp16) {
      tensor.dataType = DataType.FLOAT16;
      const bits = Uint16Array.from(tensor.floatData?.length ? tensor.floatData : floatsOf(tensor), toHalfBits);
      if (tensor.floatData?.length) {
        tensor.int32Data = Array.from(bits);
        tensor.floatData = [];
      } else tensor.rawData = bytesOf(bits);
    }
    if (options.weightsInConstantNodes) toConstant(tensor, tensor.name);
    else kept.push(tensor);
  }
  graph.initializer = kept;
  graph.node = [...constantNodes, ...graph.node];
  for (const node of graph.node) node.input = (node.input ?? []).map((input) => renames.get(input) ?? input);
  return model;
}

/** Writes model.onnx; with `external`, tensors of 1 KiB or more go to that side file as onnx's save_model does. */
function writeExport(dir: string, model: ModelProto, external?: string): string {
  mkdirSync(dir, { recursive: true });
  if (external) {
    const chunks: Uint8Array[] = [];
    let offset = 0;
    for (const tensor of model.graph!.initializer!) {
      const raw = tensor.rawData!;
      if (raw.length < 1024) continue;
      const padding = (4096 - (offset % 4096)) % 4096;
      chunks.push(new Uint8Array(padding), raw);
      offset += padding;
      tensor.externalData = [
        { key: 'location', value: external },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(raw.length) },
      ];
      tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      delete tensor.rawData;
      offset += raw.length;
    }
    writeFileSync(join(dir, external), Buffer.concat(chunks));
  }
  const path = join(dir, 'model.onnx');
  writeFileSync(path, encodeModel(model));
  return path;
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
