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
