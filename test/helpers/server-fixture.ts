import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { readSafetensors, writeSafetensors } from '../../conversion/checkpoint/safetensors.js';
import { convert } from '../../conversion/convert.js';
import { parseServerConfig, type ServerConfig } from '../../src/config.js';
import { buildServer } from '../../src/http/server.js';
import { ServerState } from '../../src/http/server-state.js';
import { ServerMetrics } from '../../src/metrics.js';
import { ModelRegistry } from '../../src/models/registry.js';
import { BertTokenizer } from '../../src/tasks/tokenizer.js';
import { convertOptions, tinyCheckpoint } from './workspace.js';

/**
 * A tiny QA checkpoint whose answer is known: attention and FFN outputs are zeroed (so the final hidden state is
 * LayerNorm of the embeddings) and the needle word's embedding is a large vector that qa_outputs maps to the
 * highest start and end logits. Any context containing the needle answers with exactly that word.
 */
export function plantedQaCheckpoint(root: string, needle: string): string {
  const dir = tinyCheckpoint(root, `ckpt-planted-${needle}`, 'bert', 'question-answering', { sparsity: 0.9 });
  const path = join(dir, 'model.safetensors');
  const tensors = readSafetensors(path);
  const hidden = tensors.get('bert.embeddings.word_embeddings.weight')!.shape[1];
  const zero = (name: string) => tensors.get(name)!.data.fill(0);
  for (const name of tensors.keys()) {
    if (/attention\.output\.dense|output\.dense/.test(name)) zero(name);
    if (/LayerNorm\.weight$/.test(name)) tensors.get(name)!.data.fill(1);
    if (/LayerNorm\.bias$/.test(name)) zero(name);
  }
  const direction = Float32Array.from({ length: hidden }, (_, i) => (i % 2 ? 1 : -1));
  const needleId = BertTokenizer.fromFiles(dir).tokenize(needle).ids[0];
  tensors.get('bert.embeddings.word_embeddings.weight')!.data.set(
    direction.map((v) => v * 10),
    needleId * hidden,
  );
  const qa = tensors.get('qa_outputs.weight')!.data;
  qa.set(direction, 0);
  qa.set(direction, hidden);
  zero('qa_outputs.bias');
  writeSafetensors(
    path,
    new Map([...tensors].map(([name, tensor]) => [name, { shape: tensor.shape, data: tensor.data }])),
  );
  return dir;
}

/** Converts a planted QA model, a classifier and an NER model into `<root>/models`. */
export async function prepareModels(root: string): Promise<string> {
  const modelsDir = join(root, 'models');
  await convert(convertOptions(plantedQaCheckpoint(root, 'zurich'), join(modelsDir, 'qa')));
  await convert(
    convertOptions(
      tinyCheckpoint(root, 'ckpt-cls', 'bert', 'text-classification', { sparsity: 0.85 }),
      join(modelsDir, 'sst2'),
    ),
  );
  await convert(
    convertOptions(tinyCheckpoint(root, 'ckpt-ner', 'distilbert', 'token-classification'), join(modelsDir, 'conll')),
  );
  return modelsDir;
}

export interface TestServer {
  app: FastifyInstance;
  registry: ModelRegistry;
  state: ServerState;
  config: ServerConfig;
  /** Call from the test file's own after(): node:test runs an after() registered inside before() right away. */
  close(): Promise<void>;
}

export async function startTestServer(
  modelsDir: string,
  overrides: (config: ServerConfig) => void = () => {},
  warm = true,
): Promise<TestServer> {
  const config = parseServerConfig(['--models-dir', modelsDir, '--log-level', 'silent'], {});
  overrides(config);
  const metrics = new ServerMetrics();
  const registry = await ModelRegistry.load(config, metrics, () => {});
  const state = new ServerState();
  const app = buildServer({ config, registry, metrics, state, version: 'test' });
  await app.ready();
  if (warm) {
    await registry.warmUp();
    state.warmedUp = true;
  }
  const close = async () => {
    await app.close();
    await registry.release();
  };
  return { app, registry, state, config, close };
}

/** Parses the Prometheus text format into `name{labels} -> value`. */
export function metricValues(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}
