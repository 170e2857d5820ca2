// Errors in OpenAI's shape: {"error": {"message", "type", "param", "code"}} with the HTTP status beside
// it. Anything a handler throws that is not an ApiError becomes a 500 server_error.

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'server_error'
  | 'timeout_error';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  body(): { error: { message: string; type: ErrorType; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400 for a request field; `param` names it as OpenAI does. */
export function badParam(param: string, message: string, code: string | null = null): ApiError {
  return new ApiError(400, message, 'invalid_request_error', param, code);
}

/** The generation was cancelled because its client went away (nothing is sent back). */
export class ClientGone extends Error {
  constructor() {
    super('client disconnected');
  }
}

/** Whatever was thrown, as an ApiError (unknown errors become a 500 without internals in the message). */
export function asApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  return new ApiError(500, 'The server had an error while processing your request.', 'server_error', null, 'internal_error');
}
