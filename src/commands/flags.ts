/** A mistake on the command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export function numberFlag(
  value: string | undefined,
  flag: string,
  limits: { min?: number; maxExclusive?: number; integer?: boolean } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  const bad =
    value.trim() === '' ||
    !Number.isFinite(parsed) ||
    (limits.integer && !Number.isInteger(parsed)) ||
    (limits.min !== undefined && parsed < limits.min) ||
    (limits.maxExclusive !== undefined && parsed >= limits.maxExclusive);
  if (bad) {
    const range = [
      limits.min !== undefined ? `>= ${limits.min}` : '',
      limits.maxExclusive !== undefined ? `< ${limits.maxExclusive}` : '',
    ]
      .filter(Boolean)
      .join(' and ');
    throw new UsageError(
      `${flag} must be ${limits.integer ? 'an integer' : 'a number'}${range ? ` ${range}` : ''}, got "${value}"`,
      '',
    );
  }
  return parsed;
}

export function listFlag(value: string | undefined, flag: string, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  return value.split(',').map((part) => numberFlag(part, flag, { min: 1, integer: true })!);
}
