/**
 * GLUE classification metrics as the GLUE benchmark (and the Hugging Face `glue` metric) reports them:
 * accuracy for every classification task, plus F1 of the positive class (class index 1: `duplicate`, `equivalent`)
 * for QQP and MRPC — scikit-learn's `f1_score(y_true, y_pred)` with `pos_label=1`, 0 when undefined. MNLI matched and
 * mismatched are separate files and so separate evaluations. Predictions and gold labels are class indices of the
 * dataset's own label list; a prediction the dataset has no class for is -1 (always wrong).
 */

export interface GlueScores {
  /** Percent. */
  accuracy: number;
  /** Percent, F1 of class 1 — only for the tasks GLUE reports it for. */
  f1?: number;
  examples: number;
}

export function accuracy(gold: readonly number[], predicted: readonly number[]): number {
  checkLengths(gold, predicted);
  let correct = 0;
  gold.forEach((label, i) => (correct += label === predicted[i] ? 1 : 0));
  return correct / gold.length;
}

/** Binary F1 of `positive` (scikit-learn `f1_score`, `zero_division=0`). */
export function binaryF1(gold: readonly number[], predicted: readonly number[], positive = 1): number {
  checkLengths(gold, predicted);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  gold.forEach((label, i) => {
    const p = predicted[i] === positive;
    const g = label === positive;
    if (p && g) tp++;
    else if (p) fp++;
    else if (g) fn++;
  });
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

export function glueScores(gold: readonly number[], predicted: readonly number[], withF1: boolean): GlueScores {
  const scores: GlueScores = { accuracy: 100 * accuracy(gold, predicted), examples: gold.length };
  if (withF1) scores.f1 = 100 * binaryF1(gold, predicted);
  return scores;
}

function checkLengths(gold: readonly number[], predicted: readonly number[]): void {
  if (gold.length !== predicted.length)
    throw new RangeError(`${gold.length} gold labels but ${predicted.length} predictions`);
  if (gold.length === 0) throw new RangeError('no examples to score');
}
