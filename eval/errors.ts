/**
 * A problem with what evaluation was given — a dataset file (malformed, truncated, empty, a label the model does not
 * know), a model that does not fit the task — reported as one line naming the file and, where it applies, the line
 * (or parquet row / JSON path). The CLI prints it and exits 1; nothing is written.
 */
export class EvalError extends Error {
  constructor(
    readonly file: string,
    problem: string,
    /** "line 12", "row 7", "data[3].paragraphs[0].qas[2]" ... */
    readonly location?: string,
  ) {
    super(`${file}${location ? ` (${location})` : ''}: ${problem}`);
    this.name = 'EvalError';
  }
}
