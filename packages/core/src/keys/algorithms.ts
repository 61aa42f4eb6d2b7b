import { KeywardError } from '../errors.js';
import type { KeyAlgorithm, KeyUse, SigningAlgorithm } from './types.js';

/** The JWS algorithms keyward supports, in the order of preference (ES256 first: every common verifier supports it). */
export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = [
  'ES256',
  'EdDSA',
  'Ed25519',
  'RS256',
  'PS256',
  'HS256',
  'HS384',
  'HS512',
];

/** True for algorithms whose keys are secret on both sides (never published in the JWKS). */
export function isSymmetric(alg: KeyAlgorithm): boolean {
  return alg.startsWith('HS') || alg === 'A256GCM' || alg === 'fernet';
}

/**
 * Checks a signing algorithm name. `Ed25519` (RFC 9864) and `EdDSA` both make Ed25519 keys; each
 * is kept as given, since it is the `alg` the keys' JWKs and tokens carry.
 */
export function normalizeSigningAlgorithm(alg: string, option = 'alg'): SigningAlgorithm {
  if ((SIGNING_ALGORITHMS as readonly string[]).includes(alg)) return alg as SigningAlgorithm;
  throw new KeywardError(
    'alg_unsupported',
    `${option}: unsupported signing algorithm "${String(alg).slice(0, 20)}"; allowed: ${SIGNING_ALGORITHMS.join(', ')}`,
    { details: { option } },
  );
}

/** The only algorithm each non-signing use has. */
export function defaultAlgorithm(use: KeyUse, signing: SigningAlgorithm = 'ES256'): KeyAlgorithm {
  if (use === 'enc') return 'A256GCM';
  if (use === 'data') return 'fernet';
  return signing;
}

/** Checks that `alg` fits `use`. */
export function assertAlgorithmForUse(use: KeyUse, alg: KeyAlgorithm): void {
  const ok =
    (use === 'sig' && (SIGNING_ALGORITHMS as readonly string[]).includes(alg)) ||
    (use === 'enc' && alg === 'A256GCM') ||
    (use === 'data' && alg === 'fernet');
  if (!ok) throw new KeywardError('alg_unsupported', `algorithm ${alg} cannot be used for "${use}" keys`);
}
