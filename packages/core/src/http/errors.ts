import { realmOf } from '../_internal/realm.js';
import { isKeywardError, KeywardError, type KeywardErrorCode } from '../errors.js';

/** The HTTP face of an error: status, stable code, message and headers (RFC 6750 / RFC 6749). */
export interface HttpProblem {
  status: number;
  /** Stable code, the `error` field of the JSON body. */
  error: string;
  message: string;
  headers: Record<string, string>;
}

/** The realm of the `WWW-Authenticate` challenge unless the authenticator's `realm` option says otherwise. */
export const DEFAULT_REALM = 'keyward';

/**
 * True for a realm that fits an RFC 9110 quoted-string as is: printable ASCII without `"` and `\`,
 * 1 to 128 characters. The authenticator's `realm` option is checked with it.
 */
export function isValidRealm(realm: unknown): realm is string {
  return typeof realm === 'string' && /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,128}$/.test(realm);
}

/** Codes that mean "the presented credential is bad": 401 `invalid_token` (RFC 6750 §3.1). */
export const INVALID_TOKEN: ReadonlySet<KeywardErrorCode> = new Set<KeywardErrorCode>([
  'token_malformed',
  'token_too_large',
  'token_invalid',
  'token_signature_invalid',
  'token_expired',
  'token_not_yet_valid',
  'token_revoked',
  'token_claim_invalid',
  'token_decrypt_failed',
  'key_revoked',
  'api_key_malformed',
  'api_key_invalid',
  'api_key_expired',
  'api_key_revoked',
]);

const STATUS: Partial<Record<KeywardErrorCode, number>> = {
  missing_credentials: 401,
  invalid_request: 400,
  body_too_large: 413,
  config_invalid: 400,
  insufficient_scope: 403,
  // Cookie mode, a cross-site state-changing request: no challenge, the credential is not the problem.
  csrf_rejected: 403,
  not_found: 404,
  key_not_found: 404,
  secret_not_found: 404,
  key_state_invalid: 409,
  rotation_limit: 409,
  // key import (the caller's bad input, never a 401)
  key_exists: 409,
  kidless_default_exists: 409,
  key_import_malformed: 400,
  key_import_private: 400,
  key_alg_mismatch: 400,
  key_too_weak: 400,
  key_public_only: 400,
  refresh_token_invalid: 400,
  refresh_token_reused: 400,
  store_unavailable: 503,
  // A record under a data key this server cannot use: the server's problem, not the caller's credential.
  data_key_unavailable: 503,
  // A trusted issuer's keys cannot be fetched and none are cached: the IdP's problem, not the caller's token.
  issuer_unavailable: 503,
  idp_refresh_failed: 502,
  lock_not_acquired: 503,
  store_conflict: 503,
  keyring_lost: 503,
  keyring_lineage_mismatch: 503,
  // A stored secret copied or moved in the store: an integrity problem of the server's data, not the caller's.
  secret_context_mismatch: 500,
};

function quote(value: string): string {
  return value.replace(/["\\]/g, '').replace(/[^\x20-\x7e]/g, '');
}

/**
 * Maps any error to the one HTTP answer all four framework packages send. Unknown errors become
 * a 500 `internal_error` with a generic message: no stack trace, no internals. The challenge's
 * realm is `keyward`, or the `realm` option of the authenticator that threw the error.
 *
 * @example
 * ```ts
 * const problem = toHttpProblem(err)
 * res.status(problem.status).set(problem.headers).json({ error: problem.error, message: problem.message })
 * ```
 */
export function toHttpProblem(err: unknown): HttpProblem {
  if (!isKeywardError(err)) {
    return { status: 500, error: 'internal_error', message: 'internal error', headers: {} };
  }
  const { code, message } = err;
  // The realm of the authenticator that threw (its `realm` option), else keyward's.
  const REALM = `Bearer realm="${realmOf(err) ?? DEFAULT_REALM}"`;
  if (INVALID_TOKEN.has(code)) {
    return {
      status: 401,
      error: code,
      message,
      headers: {
        'www-authenticate': `${REALM}, error="invalid_token", error_description="${quote(message)}"`,
      },
    };
  }
  if (code === 'missing_credentials' || code === 'invalid_credentials') {
    return { status: 401, error: code, message, headers: { 'www-authenticate': REALM } };
  }
  if (code === 'insufficient_scope') {
    const scope = String(err.details?.scope ?? '');
    return {
      status: 403,
      error: code,
      message,
      headers: { 'www-authenticate': `${REALM}, error="insufficient_scope", scope="${quote(scope)}"` },
    };
  }
  // invalid_argument: a core API refused a value the request carried (an owner too long…): the caller's bad input.
  if (code === 'invalid_request' || code === 'config_invalid' || code === 'invalid_argument') {
    return {
      status: 400,
      error: 'invalid_request',
      message,
      headers: {
        'www-authenticate': `${REALM}, error="invalid_request", error_description="${quote(message)}"`,
      },
    };
  }
  if (code === 'too_many_requests') {
    // RFC 6585 §4: 429 with how long to wait, in seconds.
    const retryAfter = Number(err.details?.retryAfterSec);
    return {
      status: 429,
      error: code,
      message,
      headers: { 'retry-after': String(Number.isSafeInteger(retryAfter) && retryAfter > 0 ? retryAfter : 1) },
    };
  }
  if (code === 'refresh_token_invalid' || code === 'refresh_token_reused') {
    // Token endpoint (RFC 6749 §5.2): 400 invalid_grant, never cached.
    return { status: 400, error: 'invalid_grant', message, headers: { 'cache-control': 'no-store' } };
  }
  const status = STATUS[code] ?? 500;
  if (status === 500 && code !== 'secret_context_mismatch')
    return { status, error: 'internal_error', message: 'internal error', headers: {} };
  return {
    status,
    error: code === 'key_not_found' || code === 'secret_not_found' ? 'not_found' : code,
    message,
    headers: {},
  };
}

/**
 * Why a framework's body parser refused a request body. `undecodable`: an unsupported
 * `Content-Encoding` (`br` where the parser has none, `zstd`…) or a compressed body that does not
 * decompress.
 */
export type BodyFailure = 'malformed' | 'too_large' | 'unsupported_type' | 'unreadable' | 'undecodable';

const UNDECODABLE = 'the request body could not be decoded (unsupported or broken Content-Encoding)';

const BODY_MESSAGES: Record<BodyFailure, string> = {
  malformed: 'the request body is not valid JSON',
  too_large: 'the request body is too large',
  unsupported_type: 'the request body must be JSON (Content-Type: application/json)',
  unreadable: 'the request body could not be read',
  undecodable: UNDECODABLE,
};

/** The same failures for the routes that take a form-encoded body (the OAuth endpoints). */
const FORM_BODY_MESSAGES: Record<BodyFailure, string> = {
  malformed: 'the request body is not a valid form',
  too_large: 'the request body is too large',
  unsupported_type: 'the request body must be form-encoded (Content-Type: application/x-www-form-urlencoded)',
  unreadable: 'the request body could not be read',
  undecodable: UNDECODABLE,
};

/** What a route's body is: JSON (most routes) or `application/x-www-form-urlencoded` (the OAuth endpoints). */
export type BodyFormat = 'json' | 'form';

const MEDIA_TYPES: Record<BodyFormat, RegExp> = {
  json: /^application\/json\s*(;|$)/i,
  form: /^application\/x-www-form-urlencoded\s*(;|$)/i,
};

/**
 * True when a `Content-Type` value names the media type of `format` (parameters such as
 * `charset` allowed). The one check every adapter and route uses.
 */
export function isBodyType(contentType: unknown, format: BodyFormat): boolean {
  return typeof contentType === 'string' && MEDIA_TYPES[format].test(contentType);
}

/**
 * The 400 `invalid_request` for a body the framework's parser refused (413 `body_too_large` for
 * `too_large`), with the same message in every framework package (never the parser's own text,
 * which may quote the body). `format` names what the route expects (`form` for the OAuth
 * endpoints; default `json`).
 *
 * @example
 * ```ts
 * if (err.type === 'entity.parse.failed') send(problemResponse(invalidBody('malformed')))
 * ```
 */
export function invalidBody(failure: BodyFailure, format: BodyFormat = 'json'): KeywardError {
  const message = (format === 'form' ? FORM_BODY_MESSAGES : BODY_MESSAGES)[failure];
  return failure === 'too_large' ? new KeywardError('body_too_large', message) : invalidRequest(message);
}

/** Shorthand for a 400 `invalid_request`. */
export function invalidRequest(message: string): KeywardError {
  return new KeywardError('invalid_request', message);
}

/** body-parser's (Express) and Fastify's parser error identifiers, mapped to body failures. */
const PARSER_FAILURES: Record<string, BodyFailure> = {
  // body-parser `type`
  'entity.parse.failed': 'malformed',
  'entity.too.large': 'too_large',
  'encoding.unsupported': 'undecodable',
  'charset.unsupported': 'unsupported_type',
  // Fastify `code`
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed',
  FST_ERR_CTP_BODY_TOO_LARGE: 'too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'malformed',
};

/**
 * Why a framework's body parser refused a request — body-parser (Express, NestJS on Express)
 * errors by `type`, its zlib failures (`Z_DATA_ERROR`, brotli's `ERR__ERROR_FORMAT_…`, with a 4xx status) as
 * `undecodable`, Fastify's (also NestJS on Fastify) by `code` — or `undefined` when `err` is not
 * a parser 4xx. Any other parser 4xx is `unreadable`.
 *
 * @example
 * ```ts
 * const failure = bodyFailureOf(err)
 * if (failure) return send(problemResponse(invalidBody(failure)))
 * ```
 */
export function bodyFailureOf(err: unknown): BodyFailure | undefined {
  const e = err as
    | { type?: unknown; code?: unknown; status?: unknown; statusCode?: unknown }
    | null
    | undefined;
  if (typeof e !== 'object' || e === null) return undefined;
  const status =
    typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 0;
  const clientError = status >= 400 && status < 500;
  // body-parser hands on zlib's own error (status 400, no `type`) for a body that does not
  // decompress: `Z_DATA_ERROR`, `Z_BUF_ERROR`… for gzip / deflate, `ERR__ERROR_FORMAT_…` for brotli.
  if (typeof e.type !== 'string' && typeof e.code === 'string' && /^(Z_|ERR__)/.test(e.code) && clientError)
    return 'undecodable';
  const id =
    typeof e.type === 'string'
      ? e.type
      : typeof e.code === 'string' && e.code.startsWith('FST_ERR_CTP_')
        ? e.code
        : undefined;
  if (id === undefined) return undefined;
  return PARSER_FAILURES[id] ?? (clientError ? 'unreadable' : undefined);
}

/** Longest path parameter keyward's routes take (secret names and owners are at most 256 characters). */
export const MAX_PATH_PARAM_LENGTH = 256;

const MALFORMED_PATH = 'the request path is malformed';
const PARAM_TOO_LONG = 'a path parameter is too long';

/**
 * The 400 `invalid_request` for a request the framework's router refused before any route ran,
 * or `undefined`: a `%`-malformed path (Express's and the router's `URIError` with status 400,
 * Fastify's `FST_ERR_BAD_URL`) or an over-long path parameter (Fastify's
 * `FST_ERR_MAX_PARAM_LENGTH`). The message never quotes the path.
 *
 * @example
 * ```ts
 * Fastify({ frameworkErrors: (err, _req, reply) => send(reply, problemResponse(routingFailureOf(err) ?? err)) })
 * ```
 */
export function routingFailureOf(err: unknown): KeywardError | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, status, statusCode } = err as { code?: unknown; status?: unknown; statusCode?: unknown };
  if (code === 'FST_ERR_MAX_PARAM_LENGTH') return invalidRequest(PARAM_TOO_LONG);
  if (code === 'FST_ERR_BAD_URL') return invalidRequest(MALFORMED_PATH);
  // Only a router's URIError carries a 4xx status: one the application's own code threw is its own.
  const s = typeof status === 'number' ? status : typeof statusCode === 'number' ? statusCode : 0;
  if (err instanceof URIError && s >= 400 && s < 500) return invalidRequest(MALFORMED_PATH);
  return undefined;
}

/**
 * The 400 `invalid_request` for a path parameter over {@link MAX_PATH_PARAM_LENGTH} (the message
 * never quotes it); `undefined` when every parameter is fine. `handleRoute` checks it first.
 */
export function invalidParams(params: Record<string, string | undefined>): KeywardError | undefined {
  for (const value of Object.values(params)) {
    if (value !== undefined && value.length > MAX_PATH_PARAM_LENGTH) return invalidRequest(PARAM_TOO_LONG);
  }
  return undefined;
}

/**
 * The contract's 404 for a path no route serves: `{error: 'not_found', message}`, never quoting
 * the path. The example apps answer unknown routes with it.
 *
 * @example
 * ```ts
 * app.use((_req, _res, next) => next(routeNotFound()))
 * ```
 */
export function routeNotFound(): KeywardError {
  return new KeywardError('not_found', 'no such route');
}

/** Optional hook called for every denied request (audit `access.denied`, metrics). */
export type DeniedHook = (code: string, status: number) => void;

/**
 * {@link toHttpProblem}, reporting a 401 or 403 to `onDenied`: what every adapter does when a
 * request is refused.
 *
 * @example
 * ```ts
 * const problem = reportProblem(err, onDenied)
 * res.status(problem.status).set(problem.headers)
 * ```
 */
export function reportProblem(err: unknown, onDenied?: DeniedHook): HttpProblem {
  const problem = toHttpProblem(err);
  if (problem.status === 401 || problem.status === 403) onDenied?.(problem.error, problem.status);
  return problem;
}

/**
 * The keyward error behind a thrown value: a `KeywardError` itself, a framework body-parser 4xx
 * as core's `invalid_request` / `body_too_large` (see {@link bodyFailureOf}), or a router's
 * refusal of a malformed path (see {@link routingFailureOf}); `undefined` for anything else,
 * which is the application's to handle.
 *
 * @example
 * ```ts
 * const known = asKeywardError(err)
 * if (known) return send(problemResponse(known))
 * ```
 */
export function asKeywardError(err: unknown): KeywardError | undefined {
  if (isKeywardError(err)) return err;
  const failure = bodyFailureOf(err);
  return failure ? invalidBody(failure) : routingFailureOf(err);
}
