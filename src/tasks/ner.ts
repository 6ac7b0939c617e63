/**
 * Token classification (NER) post-processing, following Hugging Face's `TokenClassificationPipeline`
 * (transformers/pipelines/token_classification.py: `postprocess`, `gather_pre_entities`, `aggregate`,
 * `aggregate_word`, `aggregate_words`, `group_sub_entities`, `group_entities`, `get_tag`).
 *
 * Rules reproduced here:
 *
 * 1. Scores (`postprocess`): a numerically stable softmax over the labels of every token,
 *    `exp(l - max(l)) / sum(exp(l - max(l)))`.
 * 2. Pre-entities (`gather_pre_entities`): one per real token (special tokens are already removed by the caller),
 *    with `word` = the vocabulary piece (`convert_ids_to_tokens`, e.g. `"##burg"`), its character offsets, its
 *    index in the model input (position 0 is `[CLS]`, so the i-th real token has `index = i + 1`) and `is_subword`.
 *    HF decides `is_subword` from the piece (`len(piece) != len(text[start:end])`, i.e. a `##` prefix); the caller
 *    hands it in (the server derives it from the fast tokenizer's word ids). HF also replaces the piece of an
 *    unknown token by the original text slice; that is the caller's business here (it chooses `token`).
 * 3. `aggregate`:
 *    - `none` / `simple`: every token gets `entity = labels[argmax(scores)]` and `score = max(scores)` (argmax ties
 *      go to the lowest label index, as `numpy.argmax`). `none` returns those token entities as they are.
 *    - `first` / `average` / `max` (`aggregate_words`): tokens are cut into words: a token starts a new word
 *      unless it is a subword (`isSubword`); the very first token always starts a word, even when flagged subword.
 *      Grouping uses `isSubword` only, exactly like HF; `wordIndex` is not consulted. Each word
 *      (`aggregate_word`) takes
 *        - `first`: the scores of its first token -> label = argmax, score = that max;
 *        - `max`: the scores of its token with the highest max score (first such token on ties, as Python `max`)
 *          -> label = argmax, score = that max;
 *        - `average`: the per-label mean (`nanmean`) of its tokens' score vectors -> label = argmax, score = the
 *          mean probability of that label;
 *      and spans from the first token's start to the last token's end.
 *    - `simple` / `first` / `average` / `max` then group the (token or word) entities (`group_entities`).
 * 4. `get_tag`: `B-X` -> (B, X); `I-X` -> (I, X); any other label (`PER`, `O`, `S-LOC`, ...) -> (I, whole label),
 *    i.e. a label without a B-/I- prefix behaves as the continuation of its own type.
 * 5. `group_entities`: walk the entities left to right; an entity joins the current group iff its tag type equals
 *    the type of the group's LAST entity and its own tag is not B; otherwise the group is closed and a new one
 *    starts. So `B-PER I-PER` is one group, `I-PER I-PER` is one group, `B-PER B-PER` is two groups, a type change is
 *    a new group, and `O O` is one group of type `O`.
 * 6. `group_sub_entities`: `entity_group` = the FIRST entity's label with everything up to and including its first
 *    `-` removed (`label.split("-", 1)[-1]`: `B-PER` -> `PER`, `PER` -> `PER`, `S-LOC` -> `LOC`), `score` = the mean
 *    (`nanmean`) of the member scores, `start` = first member's start, `end` = last member's end.
 *    `word`: HF builds it with `tokenizer.convert_tokens_to_string(pieces)`, which lowercases (uncased models),
 *    normalizes whitespace and drops accents; we use `text.slice(start, end)` of the original text instead, so that
 *    `word` is always exactly the text at the reported offsets, which is what users want.
 * 7. `ignore_labels` (default `["O"]`) is applied last, to the final entities: an entity is dropped when its
 *    `entity` (strategy `none`) or `entity_group` (other strategies) is in the list. With `none` the full label is
 *    compared (`B-PER` is not dropped by `PER`); with grouping, the prefix-stripped type is compared.
 *
 * Offsets are whatever the caller supplies (JavaScript string indices into `text`). Scores are computed in float64
 * (HF computes in float32 numpy), so they can differ from HF's in the last float32 digits.
 */

export type AggregationStrategy = 'none' | 'simple' | 'first' | 'average' | 'max';

export interface TokenPrediction {
  /** logits for each label, for one real (non-special) token */
  logits: ArrayLike<number>;
  tokenId: number;
  token: string; // the vocabulary piece, e.g. "##ing"
  start: number;
  end: number; // char offsets into the original text
  isSubword: boolean; // continuation piece of a word (HF decides via "##" prefix / offsets)
  wordIndex: number;
}

export interface Entity {
  entity_group?: string;
  entity?: string;
  score: number;
  word: string;
  start: number;
  end: number;
  index?: number;
}

export const AGGREGATION_STRATEGIES: readonly AggregationStrategy[] = ['none', 'simple', 'first', 'average', 'max'];

/** Token or word level entity before grouping (HF's intermediate dicts). */
interface LabeledSpan {
  entity: string;
  score: number;
  start: number;
  end: number;
}

/** Stable softmax in float64. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  const n = logits.length;
  const out = new Float64Array(n);
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    out[i] = Math.exp(logits[i] - max);
    sum += out[i];
  }
  for (let i = 0; i < n; i++) out[i] /= sum;
  return out;
}

/** `numpy.argmax`: index of the first maximum; NaN counts as the maximum (first NaN wins). */
function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i])) return i;
    if (values[i] > values[best]) best = i;
  }
  return best;
}

/** `numpy.nanmean` of a list of numbers (NaN entries ignored; NaN when all are NaN). */
function nanmean(values: number[]): number {
  let sum = 0;
  let count = 0;
  for (const v of values) {
    if (Number.isNaN(v)) continue;
    sum += v;
    count++;
  }
  return count === 0 ? NaN : sum / count;
}

/** HF `get_tag`: `[bi, type]`; labels without a `B-`/`I-` prefix are `I` of the whole label. */
export function getTag(label: string): ['B' | 'I', string] {
  if (label.startsWith('B-')) return ['B', label.slice(2)];
  if (label.startsWith('I-')) return ['I', label.slice(2)];
  return ['I', label];
}

/** HF `entity_group`: `label.split("-", 1)[-1]`. */
function entityGroupName(label: string): string {
  const dash = label.indexOf('-');
  return dash < 0 ? label : label.slice(dash + 1);
}

/** HF `aggregate_word` for one word's tokens (non-empty) and their softmax scores. */
function aggregateWord(
  tokens: TokenPrediction[],
  scores: Float64Array[],
  labels: string[],
  strategy: 'first' | 'average' | 'max',
): LabeledSpan {
  let wordScores: ArrayLike<number>;
  if (strategy === 'first') {
    wordScores = scores[0];
  } else if (strategy === 'max') {
    // Python max(..., key=scores.max()): first token with the highest max score.
    let best = 0;
    let bestMax = scores[0][argmax(scores[0])];
    for (let t = 1; t < scores.length; t++) {
      const m = scores[t][argmax(scores[t])];
      if (m > bestMax) {
        best = t;
        bestMax = m;
      }
    }
    wordScores = scores[best];
  } else {
    const mean = new Float64Array(labels.length);
    for (let l = 0; l < labels.length; l++) mean[l] = nanmean(scores.map((s) => s[l]));
    wordScores = mean;
  }
  const idx = argmax(wordScores);
  return { entity: labels[idx], score: wordScores[idx], start: tokens[0].start, end: tokens[tokens.length - 1].end };
}

/** HF `group_entities` + `group_sub_entities`, with `word` taken from the original text. */
function groupEntities(text: string, entities: LabeledSpan[]): Entity[] {
  const groups: Entity[] = [];
  let current: LabeledSpan[] = [];
  const close = (): void => {
    const first = current[0];
    const last = current[current.length - 1];
    groups.push({
      entity_group: entityGroupName(first.entity),
      score: nanmean(current.map((e) => e.score)),
      word: text.slice(first.start, last.end),
      start: first.start,
      end: last.end,
    });
  };
  for (const entity of entities) {
    if (current.length === 0) {
      current.push(entity);
      continue;
    }
    const [bi, tag] = getTag(entity.entity);
    const [, lastTag] = getTag(current[current.length - 1].entity);
    if (tag === lastTag && bi !== 'B') {
      current.push(entity);
    } else {
      close();
      current = [entity];
    }
  }
  if (current.length > 0) close();
  return groups;
}

/**
 * Turns per-token logits into entities exactly like HF `TokenClassificationPipeline.postprocess` (see the rules at
 * the top of this file). `tokens` are the real tokens in order, without special tokens; `labels[i]` is the name of
 * logit `i` (`id2label`).
 */
export function aggregateEntities(
  text: string,
  tokens: TokenPrediction[],
  labels: string[],
  strategy: AggregationStrategy,
  ignoreLabels: string[] = ['O'],
): Entity[] {
  if (!AGGREGATION_STRATEGIES.includes(strategy)) throw new Error(`unknown aggregation strategy: ${String(strategy)}`);
  const scores = tokens.map((token, i) => {
    if (token.logits.length !== labels.length) {
      throw new Error(`token ${i} has ${token.logits.length} logits but the model has ${labels.length} labels`);
    }
    return softmax(token.logits);
  });
  const ignored = new Set(ignoreLabels);

  if (strategy === 'none') {
    const entities: Entity[] = [];
    tokens.forEach((token, i) => {
      const idx = argmax(scores[i]);
      const entity = labels[idx];
      if (ignored.has(entity)) return;
      // Key order as HF: entity, score, index, word, start, end. index + 1: position 0 is [CLS].
      entities.push({
        entity,
        score: scores[i][idx],
        index: i + 1,
        word: token.token,
        start: token.start,
        end: token.end,
      });
    });
    return entities;
  }

  let spans: LabeledSpan[];
  if (strategy === 'simple') {
    spans = tokens.map((token, i) => {
      const idx = argmax(scores[i]);
      return { entity: labels[idx], score: scores[i][idx], start: token.start, end: token.end };
    });
  } else {
    // HF aggregate_words: a new word starts at every non-subword token (and at the first token).
    spans = [];
    let wordStart = 0;
    for (let i = 1; i <= tokens.length; i++) {
      if (i === tokens.length || !tokens[i].isSubword) {
        if (i > wordStart) {
          spans.push(aggregateWord(tokens.slice(wordStart, i), scores.slice(wordStart, i), labels, strategy));
        }
        wordStart = i;
      }
    }
  }
  return groupEntities(text, spans).filter((e) => !ignored.has(e.entity_group as string));
}
