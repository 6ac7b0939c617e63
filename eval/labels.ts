/**
 * Dataset classes ↔ the model's labels (`manifest.labels`, the checkpoint's `id2label`).
 *
 * - Generic names (every label is `LABEL_<n>` or a bare number, what a checkpoint without `id2label` gets): output
 *   `n` is dataset class `n`. That is how `run_glue.py`-style fine-tuning assigns ids: the dataset's `ClassLabel`
 *   index (SST-2: 0 = negative, 1 = positive) is the label id. So `LABEL_0`/`LABEL_1` ↔ SST-2 `0`/`1`.
 * - Otherwise by name, case- and punctuation-insensitively, with the usual synonyms: SST-2 `0`/`1` ↔ `NEGATIVE` /
 *   `POSITIVE` (also `neg`/`pos`), MNLI `entailment` ↔ `ENTAILMENT`, QQP `duplicate` ↔ `is_duplicate`, ...
 *
 * A dataset class present in the file that no model label maps to is an error naming the first line that uses it
 * (the caller raises it). A model label that maps to no class is allowed: predicting it simply counts as wrong.
 */

const SYNONYMS: Record<string, string[]> = {
  negative: ['negative', 'neg'],
  positive: ['positive', 'pos'],
  entailment: ['entailment', 'entailed', 'entails'],
  not_entailment: ['notentailment', 'nonentailment', 'notentailed'],
  neutral: ['neutral'],
  contradiction: ['contradiction', 'contradicts'],
  duplicate: ['duplicate', 'isduplicate'],
  not_duplicate: ['notduplicate', 'nonduplicate'],
  equivalent: ['equivalent', 'paraphrase'],
  not_equivalent: ['notequivalent', 'notparaphrase'],
};

const squash = (name: string) => name.toLowerCase().replace(/[^\p{L}\p{N}]/gu, '');

export interface LabelMapping {
  rule: 'index' | 'name';
  /** Per dataset class, the model label index, or -1 when the model has none. */
  classToModel: number[];
  /** Per model label index, the dataset class, or -1. */
  modelToClass: number[];
}

export function mapLabels(modelLabels: readonly string[], classes: readonly string[]): LabelMapping {
  const generic = modelLabels.length > 0 && modelLabels.every((label) => /^(LABEL_)?\d+$/.test(label));
  const modelToClass = modelLabels.map((label) => {
    if (generic) {
      const n = Number(label.replace('LABEL_', ''));
      return n < classes.length ? n : -1;
    }
    const name = squash(label);
    return classes.findIndex((c) => (SYNONYMS[c] ?? [squash(c)]).includes(name) || squash(c) === name);
  });
  const classToModel = classes.map((_, c) => modelToClass.indexOf(c));
  return { rule: generic ? 'index' : 'name', classToModel, modelToClass };
}

/** Entity types a token-classification model can predict: its labels without B-/I-/E-/S- (HF `entity_group`). */
export function entityTypes(modelLabels: readonly string[]): Set<string> {
  return new Set(modelLabels.filter((label) => label !== 'O').map((label) => label.replace(/^[BIES]-/, '')));
}
