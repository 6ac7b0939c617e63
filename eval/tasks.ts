/**
 * One adapter per evaluation task: how an item is run (always through the server's own task code —
 * `answerQuestion`, `classify`, `recognizeEntities` — never a re-implementation of windows, spans, labels or entity
 * aggregation), what counts as "the same prediction" for fidelity, and how predictions are scored.
 */
import type { Manifest } from '../conversion/manifest.js';
import type { ServedModel } from '../src/models/registry.js';
import { classify } from '../src/tasks/classify-task.js';
import { RequestError } from '../src/tasks/errors.js';
import type { AggregationStrategy, Entity } from '../src/tasks/ner.js';
import { recognizeEntities } from '../src/tasks/ner-task.js';
import { answerQuestion, defaultQaOptions } from '../src/tasks/qa-task.js';
import type { ConllDataset, ConllSentence } from './datasets/conll.js';
import type { GlueDataset, GlueItem } from './datasets/glue.js';
import type { SquadDataset, SquadItem } from './datasets/squad.js';
import { EvalError } from './errors.js';
import { entityTypes, mapLabels } from './labels.js';
import { glueScores } from './metrics/glue.js';
import { entityScores, type PrfScores } from './metrics/seqeval.js';
import { squadScores } from './metrics/squad.js';
import { entitiesToWordTags } from './ner-words.js';

export type EvalTask = 'squad' | 'glue' | 'conll';

export const manifestTaskToEval: Record<Manifest['task'], EvalTask> = {
  'question-answering': 'squad',
  'text-classification': 'glue',
  'token-classification': 'conll',
};

export interface MetricSpec {
  key: string;
  label: string;
}

export interface Scored {
  /** Percent values, keyed as in `metricSpecs`. */
  metrics: Record<string, number>;
  /** CoNLL: per entity type, percent. */
  perType?: Record<string, PrfScores>;
}

export interface TaskAdapter<Prediction> {
  readonly task: EvalTask;
  readonly size: number;
  readonly metricSpecs: MetricSpec[];
  /** EvalError when the data uses a label the model does not know; names the first line that does. */
  check(manifest: Manifest, folder: string): void;
  run(model: ServedModel, index: number): Promise<Prediction>;
  /** Two predictions with the same key are "identical" for the fidelity figures. */
  key(prediction: Prediction): string;
  score(manifest: Manifest, predictions: Prediction[]): Scored;
  /** Extra fidelity figures comparing a model's predictions with its dense reference's (percent). */
  agreement?(test: Prediction[], reference: Prediction[]): Record<string, number>;
  /** What the predictions file holds (SQuAD: the official `{id: answer}` form; CoNLL: conlleval `word gold pred`). */
  exportPredictions(manifest: Manifest, predictions: Prediction[]): { extension: string; content: string };
}

/** A request the server would refuse (input too long...) stops the evaluation with the item's place. */
async function located<T>(file: string, where: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof RequestError)
      throw new EvalError(file, `the model refuses this item: ${error.message}`, where);
    throw error;
  }
}

export interface QaEvalOptions {
  maxSeqLen: number;
  docStride: number;
  maxAnswerLen: number;
  maxQuestionLen: number;
}

/** SQuAD v1.1: the server's `answerQuestion` (top 1, no impossible answer), EM / F1 with the official semantics. */
export function squadAdapter(dataset: SquadDataset, items: SquadItem[], qa: QaEvalOptions): TaskAdapter<QaPrediction> {
  return {
    task: 'squad',
    size: items.length,
    metricSpecs: [
      { key: 'exactMatch', label: 'EM' },
      { key: 'f1', label: 'F1' },
    ],
    check: () => {},
    run: (model, index) =>
      located(dataset.file, items[index].where, async () => {
        const item = items[index];
        const [best] = await answerQuestion(
          model,
          { question: item.question, context: item.context },
          { ...defaultQaOptions, ...qa, topK: 1, handleImpossibleAnswer: false, maxWindows: Number.MAX_SAFE_INTEGER },
        );
        return best ? { answer: best.answer, start: best.start, end: best.end } : { answer: '', start: 0, end: 0 };
      }),
    key: (p) => `${p.start}:${p.end}`,
    score: (_, predictions) => {
      const scores = squadScores(
        items.map((item, i) => ({ prediction: predictions[i].answer, answers: item.answers })),
      );
      return { metrics: { exactMatch: scores.exactMatch, f1: scores.f1 } };
    },
    exportPredictions: (_, predictions) => ({
      extension: 'json',
      content:
        JSON.stringify(Object.fromEntries(items.map((item, i) => [item.id, predictions[i].answer])), null, 1) + '\n',
    }),
  };
}

export interface QaPrediction {
  answer: string;
  start: number;
  end: number;
}

/** GLUE: the server's `classify` (all label scores), top label mapped to a dataset class (see labels.ts). */
export function glueAdapter(dataset: GlueDataset, items: GlueItem[]): TaskAdapter<string> {
  const { task } = dataset;
  const check = (manifest: Manifest, folder: string) => {
    if (manifest.labels.length < 2) {
      throw new EvalError(
        folder,
        `the model has ${manifest.labels.length} label(s); GLUE classification needs 2 or more (regression heads are not supported)`,
      );
    }
    const mapping = mapLabels(manifest.labels, task.classes);
    const unknown = items.find((item) => mapping.classToModel[item.label] < 0);
    if (unknown) {
      const cls = task.classes[unknown.label];
      throw new EvalError(
        dataset.file,
        `label ${unknown.label} (${task.name} class "${cls}") is not one of the labels of model ${folder} ` +
          `[${manifest.labels.join(', ')}] (matched ${mapping.rule === 'index' ? 'by index' : 'by name'})`,
        unknown.where,
      );
    }
  };
  const classOf = (manifest: Manifest, label: string) => {
    const mapping = mapLabels(manifest.labels, task.classes);
    return mapping.modelToClass[manifest.labels.indexOf(label)] ?? -1;
  };
  return {
    task: 'glue',
    size: items.length,
    metricSpecs: [{ key: 'accuracy', label: 'accuracy' }, ...(task.reportF1 ? [{ key: 'f1', label: 'F1' }] : [])],
    check,
    run: (model, index) =>
      located(dataset.file, items[index].where, async () => {
        const item = items[index];
        const scores = await classify(
          model,
          { text: item.text, textPair: item.textPair },
          model.manifest.labels.length,
        );
        return scores[0].label;
      }),
    key: (label) => label,
    score: (manifest, predictions) => {
      const scores = glueScores(
        items.map((item) => item.label),
        predictions.map((label) => classOf(manifest, label)),
        task.reportF1,
      );
      return { metrics: { accuracy: scores.accuracy, ...(scores.f1 !== undefined ? { f1: scores.f1 } : {}) } };
    },
    exportPredictions: (manifest, predictions) => ({
      extension: 'tsv',
      content:
        'where\tgold\tpredicted_label\tpredicted_class\n' +
        items
          .map((item, i) => {
            const c = classOf(manifest, predictions[i]);
            return `${item.where}\t${task.classes[item.label]}\t${predictions[i]}\t${c >= 0 ? task.classes[c] : '-'}`;
          })
          .join('\n') +
        '\n',
    }),
  };
}

export interface NerPrediction {
  entities: Pick<Entity, 'entity_group' | 'start' | 'end'>[];
  tags: string[];
}

/** CoNLL-2003: the server's `recognizeEntities` on the words joined by spaces, entities → word tags, seqeval. */
export function conllAdapter(
  dataset: ConllDataset,
  sentences: ConllSentence[],
  aggregation: AggregationStrategy,
): TaskAdapter<NerPrediction> {
  const perTypePercent = (perType: Record<string, PrfScores>) =>
    Object.fromEntries(
      Object.entries(perType).map(([type, s]) => [
        type,
        { ...s, precision: 100 * s.precision, recall: 100 * s.recall, f1: 100 * s.f1 },
      ]),
    );
  return {
    task: 'conll',
    size: sentences.length,
    metricSpecs: [
      { key: 'precision', label: 'P' },
      { key: 'recall', label: 'R' },
      { key: 'f1', label: 'F1' },
    ],
    check: (manifest, folder) => {
      const known = entityTypes(manifest.labels);
      for (const [type, line] of dataset.types) {
        if (!known.has(type)) {
          throw new EvalError(
            dataset.file,
            `entity type "${type}" is not one the model ${folder} predicts (its labels: ${manifest.labels.join(', ')})`,
            `line ${line}`,
          );
        }
      }
    },
    run: (model, index) =>
      located(dataset.file, `line ${sentences[index].lines[0]}`, async () => {
        const { words } = sentences[index];
        const entities = await recognizeEntities(model, words.join(' '), { aggregationStrategy: aggregation });
        const kept = entities.map((e) => ({ entity_group: e.entity_group ?? e.entity, start: e.start, end: e.end }));
        return { entities: kept, tags: entitiesToWordTags(words, kept) };
      }),
    key: (p) => p.entities.map((e) => `${e.entity_group}@${e.start}:${e.end}`).join(' '),
    score: (_, predictions) => {
      const scores = entityScores(
        sentences.map((s) => s.tags),
        predictions.map((p) => p.tags),
      );
      return {
        metrics: {
          precision: 100 * scores.micro.precision,
          recall: 100 * scores.micro.recall,
          f1: 100 * scores.micro.f1,
        },
        perType: perTypePercent(scores.perType),
      };
    },
    agreement: (test, reference) => ({
      // Entity-level F1 of the model's word tags taken against its dense reference's tags as if they were gold.
      entityAgreementF1:
        100 *
        entityScores(
          reference.map((p) => p.tags),
          test.map((p) => p.tags),
        ).micro.f1,
    }),
    exportPredictions: (_, predictions) => ({
      extension: 'conll.txt',
      content: sentences
        .map((s, i) => s.words.map((word, w) => `${word} ${s.tags[w]} ${predictions[i].tags[w]}`).join('\n') + '\n')
        .join('\n'),
    }),
  };
}
