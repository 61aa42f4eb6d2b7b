import { KeywardError } from '../errors.js';
import type { KeyLookup } from '../keys/types.js';
import type { JwtVerifierOptions, RevocationView } from './types.js';

/** {@link JwtVerifierOptions} after validation and defaults. */
export interface VerifierConfig {
  keys: KeyLookup;
  revocations: RevocationView | undefined;
  now: () => number;
  toleranceSec: number;
  maxTokenBytes: number;
  /** 0 = cache disabled. */
  cacheMax: number;
}

const MAX_TOLERANCE_SEC = 600;

function configInvalid(option: string, allowed: string): KeywardError {
  return new KeywardError('config_invalid', `createJwtVerifier: "${option}" must be ${allowed}`, {
    details: { option },
  });
}

function isStringOrStrings(value: unknown): boolean {
  if (typeof value === 'string') return value.length > 0;
  return (
    Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string' && v.length > 0)
  );
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

/** Validates {@link JwtVerifierOptions}; bad configuration fails here, at construction. */
export function validateVerifierOptions(options: JwtVerifierOptions): VerifierConfig {
  if (typeof options?.keys?.verificationKey !== 'function') {
    throw configInvalid('keys', 'a KeyLookup with verificationKey(kid)');
  }
  if (options.revocations !== undefined && typeof options.revocations.check !== 'function') {
    throw configInvalid('revocations', 'a RevocationView with check(claims)');
  }
  if (options.issuer !== undefined && !isStringOrStrings(options.issuer)) {
    throw configInvalid('issuer', 'a non-empty string or array of non-empty strings');
  }
  if (options.audience !== undefined && !isStringOrStrings(options.audience)) {
    throw configInvalid('audience', 'a non-empty string or array of non-empty strings');
  }
  if (options.typ !== undefined && !isStringOrStrings(options.typ)) {
    throw configInvalid('typ', 'a non-empty string such as "at+jwt", or an array of them');
  }
  const toleranceSec = options.clockToleranceSec ?? 60;
  if (
    typeof toleranceSec !== 'number' ||
    !Number.isFinite(toleranceSec) ||
    toleranceSec < 0 ||
    toleranceSec > MAX_TOLERANCE_SEC
  ) {
    throw configInvalid('clockToleranceSec', `a number of seconds from 0 to ${MAX_TOLERANCE_SEC}`);
  }
  const maxTokenBytes = options.maxTokenBytes ?? 16_384;
  if (!isPositiveInteger(maxTokenBytes)) throw configInvalid('maxTokenBytes', 'a positive integer');
  if (options.now !== undefined && typeof options.now !== 'function') {
    throw configInvalid('now', 'a function returning epoch milliseconds');
  }
  let cacheMax = 10_000;
  if (options.cache === false) cacheMax = 0;
  else if (options.cache !== undefined) {
    cacheMax = options.cache.max ?? 10_000;
    if (!isPositiveInteger(cacheMax)) throw configInvalid('cache.max', 'a positive integer, or cache: false');
  }
  return {
    keys: options.keys,
    revocations: options.revocations,
    now: options.now ?? Date.now,
    toleranceSec,
    maxTokenBytes,
    cacheMax,
  };
}
