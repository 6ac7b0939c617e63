import { SeededRandom } from '../conversion/generate/random-checkpoint.js';

export interface Selection {
  /** The first N items, in file order. */
  limit?: number;
  /** A seeded random subset of N items (kept in file order), instead of the first N. */
  sample?: number;
  seed: number;
}

/**
 * Which items to evaluate. `--limit N` takes the first N (deterministic, what published "first N" figures mean);
 * `--sample N` draws N without replacement with a partial Fisher-Yates shuffle driven by the project's seeded
 * generator (mulberry32), so the same seed always picks the same items, and keeps them in file order.
 */
export function selectItems<T>(items: readonly T[], selection: Selection): T[] {
  if (selection.sample !== undefined) {
    if (selection.sample >= items.length) return [...items];
    const random = new SeededRandom(selection.seed);
    const order = items.map((_, i) => i);
    for (let i = 0; i < selection.sample; i++) {
      const j = i + Math.floor(random.uniform() * (order.length - i));
      [order[i], order[j]] = [order[j], order[i]];
    }
    return order
      .slice(0, selection.sample)
      .sort((a, b) => a - b)
      .map((i) => items[i]);
  }
  return selection.limit !== undefined ? items.slice(0, selection.limit) : [...items];
}
