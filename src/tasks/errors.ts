/** A client mistake detected after schema validation; `status` is the HTTP code the server answers with. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: 'too_long' | 'invalid' | 'unknown_model' = 'invalid',
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

export function inputTooLong(field: string, tokens: number, limit: number, unit = 'tokens'): RequestError {
  return new RequestError(422, `${field} is too long: ${tokens} ${unit}, the limit is ${limit}`, 'too_long');
}

/**
 * A refused text is tokenized up to this many times the limit so that the 422 can give its exact size; beyond
 * that it says "more than". Bounds the work a refused request costs to a constant times the largest accepted one.
 */
export const REFUSED_TOKENS_FACTOR = 8;
