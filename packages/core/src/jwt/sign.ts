import { KeywardError } from '../errors.js';
import type { SigningKey } from '../keys/types.js';
import { isJsonObject } from './header.js';
import { isSigningAlgorithm, signSignature } from './signature.js';

/**
 * Options of {@link signJwt}.
 *
 * @example
 * ```ts
 * const options: SignJwtOptions = { typ: 'at+jwt' };
 * ```
 */
export interface SignJwtOptions {
  /** `typ` header, e.g. `'at+jwt'` for access tokens (RFC 9068). Default `'JWT'`. */
  typ?: string;
  /** Extra protected-header parameters. `alg`, `kid` and parameters keyward's verifier refuses are not allowed. */
  headers?: Record<string, unknown>;
}

/** Parameters keyward sets itself, or that its verifier rejects. */
const RESERVED_HEADERS = new Set(['alg', 'kid', 'typ', 'crit', 'b64', 'jwk', 'jku', 'x5u', 'x5c']);

/** Header segments are the same for every token of one key and `typ`: encode them once. */
const headerSegments = new WeakMap<SigningKey, Map<string, string>>();

function encodeHeader(key: SigningKey, typ: string, extra: Record<string, unknown> | undefined): string {
  if (extra === undefined) {
    let byTyp = headerSegments.get(key);
    if (byTyp === undefined) {
      byTyp = new Map();
      headerSegments.set(key, byTyp);
    }
    let segment = byTyp.get(typ);
    if (segment === undefined) {
      segment = Buffer.from(JSON.stringify({ alg: key.alg, kid: key.kid, typ })).toString('base64url');
      byTyp.set(typ, segment);
    }
    return segment;
  }
  for (const name of Object.keys(extra)) {
    if (RESERVED_HEADERS.has(name)) {
      throw new KeywardError('config_invalid', `signJwt: header "${name}" cannot be set through "headers"`, {
        details: { option: 'headers', header: name },
      });
    }
  }
  return Buffer.from(JSON.stringify({ ...extra, alg: key.alg, kid: key.kid, typ })).toString('base64url');
}

/**
 * Signs `payload` as a compact JWS with `key`, synchronously on `node:crypto`. The header is
 * `{ alg, kid, typ }` with `alg` and `kid` taken from the key, never from the caller. Claims are
 * signed as given: set `exp` (keyward's verifier requires it), `iat`, `iss`… yourself.
 *
 * @throws KeywardError `token_claim_invalid` when `payload` is not a JSON-serialisable object,
 *   `config_invalid` for a reserved extra header, `alg_unsupported` for an unknown algorithm or a
 *   key that does not fit it.
 * @example
 * ```ts
 * const nowSec = Math.floor(Date.now() / 1000);
 * const token = signJwt(keys.signingKey(), { sub: 'user_1', iat: nowSec, exp: nowSec + 900 }, { typ: 'at+jwt' });
 * ```
 */
export function signJwt(
  key: SigningKey,
  payload: Record<string, unknown>,
  options: SignJwtOptions = {},
): string {
  if (!isSigningAlgorithm(key.alg)) {
    throw new KeywardError('alg_unsupported', 'signJwt: unsupported algorithm', {
      details: { kid: key.kid },
    });
  }
  if (!isJsonObject(payload))
    throw new KeywardError('token_claim_invalid', 'signJwt: payload must be an object');
  let json: string;
  try {
    json = JSON.stringify(payload);
  } catch (cause) {
    throw new KeywardError('token_claim_invalid', 'signJwt: payload is not JSON-serialisable', { cause });
  }
  const signingInput = `${encodeHeader(key, options.typ ?? 'JWT', options.headers)}.${Buffer.from(json).toString('base64url')}`;
  let signature: string;
  try {
    signature = signSignature(key.alg, key.keyObject, signingInput);
  } catch (cause) {
    throw new KeywardError('alg_unsupported', `signJwt: key does not fit ${key.alg}`, {
      cause,
      details: { kid: key.kid },
    });
  }
  return `${signingInput}.${signature}`;
}
