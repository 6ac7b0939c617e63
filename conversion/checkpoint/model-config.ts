import { ConversionError } from '../errors.js';

export type Family = 'bert' | 'distilbert';
export type Task = 'question-answering' | 'text-classification' | 'token-classification';

/** The architecture facts the graph builder, the reference forward pass and the server need, whatever the family. */
export interface ModelSpec {
  family: Family;
  task: Task;
  architecture: string;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  vocabSize: number;
  maxPositions: number;
  /** 0 for DistilBERT, which has no token type embeddings. */
  typeVocabSize: number;
  layerNormEps: number;
  hiddenAct: 'gelu' | 'relu';
  numLabels: number;
  /** Index = class id. */
  labels: string[];
}

const architectures: Record<string, { family: Family; task: Task }> = {
  BertForQuestionAnswering: { family: 'bert', task: 'question-answering' },
  BertForSequenceClassification: { family: 'bert', task: 'text-classification' },
  BertForTokenClassification: { family: 'bert', task: 'token-classification' },
  DistilBertForQuestionAnswering: { family: 'distilbert', task: 'question-answering' },
  DistilBertForSequenceClassification: { family: 'distilbert', task: 'text-classification' },
  DistilBertForTokenClassification: { family: 'distilbert', task: 'token-classification' },
};

export const supportedArchitectures = Object.keys(architectures);

type RawConfig = Record<string, unknown>;

function positiveInt(raw: RawConfig, key: string, file: string, fallback?: number): number {
  const value = raw[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new ConversionError(file, `"${key}" must be a positive integer, got ${JSON.stringify(raw[key])}`);
  }
  return value;
}

function readLabels(raw: RawConfig, task: Task, file: string): string[] {
  if (task === 'question-answering') return [];
  const id2label = raw.id2label as Record<string, string> | undefined;
  const numLabels = (raw.num_labels as number | undefined) ?? (id2label ? Object.keys(id2label).length : 2);
  const labels: string[] = [];
  for (let id = 0; id < numLabels; id++) {
    const label = id2label?.[String(id)];
    labels.push(typeof label === 'string' ? label : `LABEL_${id}`);
  }
  if (labels.length === 0) throw new ConversionError(file, 'a classification model needs at least one label');
  return labels;
}

function readActivation(value: unknown, file: string): 'gelu' | 'relu' {
  if (value === undefined || value === 'gelu') return 'gelu';
  if (value === 'relu') return 'relu';
  throw new ConversionError(file, `unsupported activation ${JSON.stringify(value)} (supported: gelu, relu)`);
}

export function parseModelConfig(raw: RawConfig, file: string): ModelSpec {
  const names = raw.architectures;
  if (!Array.isArray(names) || typeof names[0] !== 'string') {
    throw new ConversionError(file, `"architectures" is missing; expected one of ${supportedArchitectures.join(', ')}`);
  }
  const architecture = names[0];
  const known = architectures[architecture];
  if (!known) {
    throw new ConversionError(
      file,
      `unsupported architecture "${architecture}"; supported: ${supportedArchitectures.join(', ')}`,
    );
  }
  const { family, task } = known;
  const labels = readLabels(raw, task, file);
  const common = { family, task, architecture, labels, numLabels: task === 'question-answering' ? 2 : labels.length };
  let spec: ModelSpec;
  if (family === 'bert') {
    spec = {
      ...common,
      hiddenSize: positiveInt(raw, 'hidden_size', file),
      numLayers: positiveInt(raw, 'num_hidden_layers', file),
      numHeads: positiveInt(raw, 'num_attention_heads', file),
      intermediateSize: positiveInt(raw, 'intermediate_size', file),
      vocabSize: positiveInt(raw, 'vocab_size', file),
      maxPositions: positiveInt(raw, 'max_position_embeddings', file, 512),
      typeVocabSize: positiveInt(raw, 'type_vocab_size', file, 2),
      layerNormEps: (raw.layer_norm_eps as number | undefined) ?? 1e-12,
      hiddenAct: readActivation(raw.hidden_act, file),
    };
  } else {
    spec = {
      ...common,
      hiddenSize: positiveInt(raw, 'dim', file),
      numLayers: positiveInt(raw, 'n_layers', file),
      numHeads: positiveInt(raw, 'n_heads', file),
      intermediateSize: positiveInt(raw, 'hidden_dim', file),
      vocabSize: positiveInt(raw, 'vocab_size', file),
      maxPositions: positiveInt(raw, 'max_position_embeddings', file, 512),
      typeVocabSize: 0,
      layerNormEps: 1e-12,
      hiddenAct: readActivation(raw.activation, file),
    };
  }
  if (raw.position_embedding_type !== undefined && raw.position_embedding_type !== 'absolute') {
    throw new ConversionError(
      file,
      `unsupported position_embedding_type ${JSON.stringify(raw.position_embedding_type)}`,
    );
  }
  if (spec.hiddenSize % spec.numHeads !== 0) {
    throw new ConversionError(file, `hidden size ${spec.hiddenSize} is not divisible by ${spec.numHeads} heads`);
  }
  return spec;
}
