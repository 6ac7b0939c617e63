/** A problem with the user's input: printed as one line naming the file, exit code 1. */
export class ConversionError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'ConversionError';
  }
}
