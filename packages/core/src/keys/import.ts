import { createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { KeywardError } from '../errors.js';
import { normalizeSigningAlgorithm } from './algorithms.js';
import type { KeyMaterial } from './generate.js';
import type { SigningAlgorithm } from './types.js';

/** A JSON Web Key Set as given to {@link ImportKeyOptions.key}. */
export interface ImportJwks {
  keys: JWK[];
}

/**
 * Options of `kw.keys.import` (bring your own key).
 *
 * @example
 * ```ts
 * await kw.keys.import({ kid: 'legacy-hs256', alg: 'HS256', key: process.env.JWT_SECRET!, state: 'verify-only', defaultForKidless: true })
 * ```
 */
export interface ImportKeyOptions {
  /**
   * The key's id, kept as is (tokens of the previous library carry it). Optional when the JWK (or
   * each key of a JWKS) carries its own `kid`; for a JWKS, a key without one gets this kid when it is
   * the only key, else its RFC 7638 thumbprint. 1–128 printable ASCII characters, no spaces.
   */
  kid?: string;
  /**
   * JWS algorithm: EdDSA (`Ed25519`), ES256, RS256, PS256, HS256, HS384, HS512. Optional when every
   * JWK carries its own `alg`; when both are given they must agree (`key_alg_mismatch`).
   */
  alg?: SigningAlgorithm | 'Ed25519';
  /**
   * The key: a PEM string (SPKI public, PKCS#8 private, PKCS#1 RSA private or public, SEC1 EC
   * private, an X.509 certificate), a JWK (object or JSON text), a JWKS (object or JSON text; every
   * key is imported, all verify-only, and none may hold private members), or, for HS256/384/512, the
   * HMAC secret as a string (its UTF-8 bytes, as express-jwt, @fastify/jwt and @nestjs/jwt use it) or bytes.
   */
  key: string | Uint8Array | JWK | ImportJwks;
  /**
   * `'active'`: signs from now on (a private or secret key), becoming the active `sig` key the way a
   * rotation would; the previous active key turns verify-only. `'verify-only'`: verifies tokens until
   * `verifyUntil`, never signs (a verify-only asymmetric key is stored as its public part alone).
   */
  state: 'active' | 'verify-only';
  /** Verify-only: last instant (epoch ms or a `Date`) its tokens verify. Default: now + the policy's `retainFor`. */
  verifyUntil?: number | Date;
  /**
   * The key verifies tokens that carry no `kid` header at all (most express-jwt apps), until it
   * retires. At most one key that still verifies may have it (`kidless_default_exists`).
   */
  defaultForKidless?: boolean;
}

/** One key of an import, parsed and checked, ready to store. */
export interface PreparedImport {
  kid: string;
  alg: SigningAlgorithm;
  /** What is stored: the private / `oct` JWK, or the public JWK alone when `publicOnly`. */
  material: KeyMaterial;
  /** Public material only: it can never sign. */
  publicOnly: boolean;
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'] as const;
const HMAC_MIN_BYTES: Record<string, number> = { HS256: 32, HS384: 48, HS512: 64 };
const RSA_MIN_BITS = 2048;
const KID = /^[\x21-\x7e]{1,128}$/;

const malformed = (message: string) => new KeywardError('key_import_malformed', message);
const mismatch = (alg: string, message: string) =>
  new KeywardError('key_alg_mismatch', `${alg}: ${message}`, { details: { alg } });

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkKid(kid: unknown): string {
  if (typeof kid !== 'string' || !KID.test(kid))
    throw new KeywardError(
      'invalid_request',
      'kid must be 1–128 printable ASCII characters without spaces',
      typeof kid === 'string' ? { details: { length: kid.length } } : {},
    );
  return kid;
}

function isHmac(alg: SigningAlgorithm): boolean {
  return alg === 'HS256' || alg === 'HS384' || alg === 'HS512';
}

/** What a `key` option holds, before any algorithm check. */
type Parsed =
  | { kind: 'pem'; object: KeyObject; private: boolean }
  | { kind: 'jwk'; jwk: JWK }
  | { kind: 'jwks'; keys: JWK[] }
  | { kind: 'secret'; bytes: Buffer };

function parseKeyInput(key: ImportKeyOptions['key']): Parsed {
  if (key instanceof Uint8Array) return { kind: 'secret', bytes: Buffer.from(key) };
  if (isObject(key)) return classifyJson(key);
  if (typeof key !== 'string') throw malformed('key must be a PEM, a JWK, a JWKS or an HMAC secret');
  const text = key.trim();
  if (text.startsWith('-----BEGIN ')) return parsePem(text);
  if (text.startsWith('{')) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      value = undefined;
    }
    if (isObject(value) && (typeof value.kty === 'string' || Array.isArray(value.keys)))
      return classifyJson(value);
  }
  return { kind: 'secret', bytes: Buffer.from(key, 'utf8') };
}

function classifyJson(value: Record<string, unknown>): Parsed {
  if (Array.isArray(value.keys)) {
    if (value.keys.length === 0) throw malformed('the JWKS holds no key');
    if (!value.keys.every(isObject)) throw malformed('every key of the JWKS must be a JSON object');
    return { kind: 'jwks', keys: value.keys as JWK[] };
  }
  if (typeof value.kty !== 'string') throw malformed('the JWK has no "kty"');
  return { kind: 'jwk', jwk: value as JWK };
}

function parsePem(text: string): Parsed {
  const blocks = text.match(/-----BEGIN [A-Z0-9 ]+-----/g) ?? [];
  if (blocks.length !== 1) throw malformed(`expected exactly one PEM block, found ${blocks.length}`);
  const label = blocks[0]!.slice('-----BEGIN '.length, -'-----'.length);
  if (label === 'ENCRYPTED PRIVATE KEY')
    throw malformed(
      'the PEM private key is encrypted; decrypt it first (openssl pkcs8 -in key.pem -out plain.pem)',
    );
  const isPrivate = label.endsWith('PRIVATE KEY');
  try {
    const object = isPrivate
      ? createPrivateKey({ key: text, format: 'pem' })
      : createPublicKey({ key: text, format: 'pem' });
    return { kind: 'pem', object, private: isPrivate };
  } catch {
    // node:crypto's message names no material; it is dropped anyway, with the cause.
    throw malformed(`the PEM (${label}) is not a readable key`);
  }
}

/** Checks that `object` (private or public) fits `alg`; `key_alg_mismatch` / `key_too_weak` otherwise. */
function checkAsymmetric(alg: SigningAlgorithm, object: KeyObject): void {
  const type = object.asymmetricKeyType;
  const details = object.asymmetricKeyDetails ?? {};
  if (alg === 'EdDSA' || alg === 'Ed25519') {
    if (type !== 'ed25519') throw mismatch(alg, `needs an Ed25519 key, got ${type ?? 'a secret'}`);
  } else if (alg === 'ES256') {
    if (type !== 'ec' || details.namedCurve !== 'prime256v1')
      throw mismatch(
        alg,
        `needs a P-256 EC key, got ${type === 'ec' ? `curve ${details.namedCurve}` : type}`,
      );
  } else if (alg === 'RS256' || alg === 'PS256') {
    if (type !== 'rsa') throw mismatch(alg, `needs an RSA key, got ${type ?? 'a secret'}`);
    const bits = details.modulusLength ?? 0;
    if (bits < RSA_MIN_BITS)
      throw new KeywardError(
        'key_too_weak',
        `${alg}: the RSA key has ${bits} bits, at least ${RSA_MIN_BITS} needed`,
        {
          details: { alg, bits },
        },
      );
  } else {
    throw mismatch(alg, `needs an HMAC secret, got an ${type ?? 'asymmetric'} key`);
  }
}

function checkSecret(alg: SigningAlgorithm, bytes: Buffer): void {
  if (!isHmac(alg)) throw mismatch(alg, 'needs a private or public key, got a secret');
  if (bytes.length === 0) throw malformed('the HMAC secret is empty');
  const min = HMAC_MIN_BYTES[alg]!;
  if (bytes.length < min)
    throw new KeywardError(
      'key_too_weak',
      `${alg}: the secret has ${bytes.length} bytes, at least ${min} needed (RFC 7518 §3.2)`,
      { details: { alg, bytes: bytes.length, min } },
    );
}

const isEd = (alg: string) => alg === 'EdDSA' || alg === 'Ed25519';

/** The algorithm of one key: the option's, the JWK's own, and they must agree. */
function algFor(given: SigningAlgorithm | undefined, jwk: JWK | undefined): SigningAlgorithm {
  const own = typeof jwk?.alg === 'string' ? jwk.alg : undefined;
  if (own !== undefined && given !== undefined) {
    // `EdDSA` and `Ed25519` name the same keys, but the name is the `alg` tokens carry: kept as given.
    const same = own === given || (isEd(own) && isEd(given));
    if (!same) throw mismatch(given, `the JWK says "alg": "${own.slice(0, 20)}"`);
  }
  if (given !== undefined) return given;
  if (own === undefined)
    throw new KeywardError('invalid_request', 'alg is needed: the key does not name one');
  try {
    return normalizeSigningAlgorithm(own, 'alg');
  } catch {
    throw mismatch(own.slice(0, 20), 'the JWK names an algorithm keyward does not sign with');
  }
}

/** A JWK's KeyObject (private when it has `d`), checked against `alg`, and the material to store. */
function fromJwk(
  alg: SigningAlgorithm,
  jwk: JWK,
  keepPrivate: boolean,
): { material: KeyMaterial; publicOnly: boolean } {
  if (jwk.use !== undefined && jwk.use !== 'sig')
    throw mismatch(alg, `the JWK is for "use": "${String(jwk.use).slice(0, 10)}"`);
  if (jwk.kty === 'oct') {
    if (typeof jwk.k !== 'string') throw malformed('the oct JWK has no "k"');
    const bytes = Buffer.from(jwk.k, 'base64url');
    checkSecret(alg, bytes);
    return { material: { kty: 'oct', k: bytes.toString('base64url') }, publicOnly: false };
  }
  let object: KeyObject;
  const hasPrivate = jwk.d !== undefined;
  try {
    const { kid: _kid, alg: _alg, use: _use, key_ops: _ops, x5c: _x5c, ...members } = jwk;
    object = hasPrivate
      ? createPrivateKey({ key: members as JsonWebKey, format: 'jwk' })
      : createPublicKey({ key: members as JsonWebKey, format: 'jwk' });
  } catch {
    throw malformed(`the ${String(jwk.kty).slice(0, 10)} JWK is not a readable key`);
  }
  checkAsymmetric(alg, object);
  return toMaterial(object, hasPrivate && keepPrivate);
}

function toMaterial(object: KeyObject, keepPrivate: boolean): { material: KeyMaterial; publicOnly: boolean } {
  if (keepPrivate && object.type === 'private')
    return { material: object.export({ format: 'jwk' }) as KeyMaterial, publicOnly: false };
  const pub = object.type === 'private' ? createPublicKey(object) : object;
  return { material: pub.export({ format: 'jwk' }) as KeyMaterial, publicOnly: true };
}

/**
 * Parses and checks the key(s) of an import: format, algorithm fit, strength, and (for a JWKS) that
 * no private member is present. A verify-only asymmetric key keeps only its public part. Pure but for
 * `node:crypto` parsing; no error message holds key material.
 *
 * @throws {KeywardError} `key_import_malformed`, `key_import_private`, `key_alg_mismatch`,
 * `key_too_weak`, `invalid_request` (a missing or unusable kid / alg).
 * @example
 * ```ts
 * const [key] = await prepareImport({ kid: 'app-2024', alg: 'RS256', key: pem, state: 'verify-only' })
 * ```
 */
export async function prepareImport(options: ImportKeyOptions): Promise<PreparedImport[]> {
  const given = options.alg === undefined ? undefined : normalizeSigningAlgorithm(String(options.alg), 'alg');
  const keepPrivate = options.state === 'active';
  const parsed = parseKeyInput(options.key);
  switch (parsed.kind) {
    case 'secret': {
      if (given === undefined) throw new KeywardError('invalid_request', 'alg is needed for an HMAC secret');
      checkSecret(given, parsed.bytes);
      return [
        {
          kid: checkKid(options.kid),
          alg: given,
          material: { kty: 'oct', k: parsed.bytes.toString('base64url') },
          publicOnly: false,
        },
      ];
    }
    case 'pem': {
      if (given === undefined) throw new KeywardError('invalid_request', 'alg is needed for a PEM key');
      checkAsymmetric(given, parsed.object);
      return [{ kid: checkKid(options.kid), alg: given, ...toMaterial(parsed.object, keepPrivate) }];
    }
    case 'jwk': {
      const alg = algFor(given, parsed.jwk);
      const kid = checkKid(parsed.jwk.kid ?? options.kid);
      if (options.kid !== undefined && parsed.jwk.kid !== undefined && options.kid !== parsed.jwk.kid)
        throw new KeywardError('invalid_request', 'the JWK carries another kid than the one given');
      return [{ kid, alg, ...fromJwk(alg, parsed.jwk, keepPrivate) }];
    }
    case 'jwks': {
      // A JWKS is public by nature: private or secret members mean the wrong file was picked.
      for (const jwk of parsed.keys) {
        const found = PRIVATE_MEMBERS.filter((m) => Object.hasOwn(jwk, m));
        if (found.length > 0)
          throw new KeywardError(
            'key_import_private',
            `the JWKS holds private key members (${found.join(', ')}); a JWKS must hold public keys only — import a private key as a single PEM or JWK`,
            { details: { members: found.join(',') } },
          );
      }
      const out: PreparedImport[] = [];
      for (const jwk of parsed.keys) {
        const alg = algFor(given, jwk);
        const prepared = fromJwk(alg, jwk, false);
        const kid =
          jwk.kid ??
          (parsed.keys.length === 1 && options.kid !== undefined
            ? options.kid
            : await calculateJwkThumbprint(prepared.material, 'sha256'));
        out.push({ kid: checkKid(kid), alg, ...prepared });
      }
      if (new Set(out.map((k) => k.kid)).size !== out.length)
        throw new KeywardError('key_exists', 'the JWKS holds the same kid twice');
      return out;
    }
  }
}
