import { createSecretKey, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import type { KeyLookup, KeyState, SigningAlgorithm, SigningKey, VerificationKey } from '../../keys/types.js';

/** A test key pair for one algorithm: the signing side, the verification side, and the raw key objects. */
export interface TestKey {
  alg: SigningAlgorithm;
  kid: string;
  signing: SigningKey;
  verification: VerificationKey;
  /** What jose should verify with (public key, or the secret). */
  publicKey: KeyObject;
  privateKey: KeyObject;
}

export function makeTestKey(alg: SigningAlgorithm, kid = `${alg.toLowerCase()}-1`): TestKey {
  let privateKey: KeyObject;
  let publicKey: KeyObject;
  if (alg.startsWith('HS')) {
    privateKey = createSecretKey(randomBytes(alg === 'HS256' ? 32 : 64));
    publicKey = privateKey;
  } else if (alg === 'ES256') {
    ({ privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' }));
  } else if (alg === 'EdDSA' || alg === 'Ed25519') {
    ({ privateKey, publicKey } = generateKeyPairSync('ed25519'));
  } else {
    ({ privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 }));
  }
  return {
    alg,
    kid,
    privateKey,
    publicKey,
    signing: { kid, alg, keyObject: privateKey },
    verification: { kid, alg, state: 'active', keyObject: publicKey, verifyUntil: undefined },
  };
}

/** A mutable in-memory KeyLookup: change a key's state mid-test to simulate a revocation. */
export class TestKeyring implements KeyLookup {
  readonly keys = new Map<string, VerificationKey>();
  #signing: SigningKey | undefined;

  constructor(...keys: TestKey[]) {
    for (const key of keys) this.keys.set(key.kid, key.verification);
    this.#signing = keys[0]?.signing;
  }

  verificationKey(kid: string): VerificationKey | undefined {
    return this.keys.get(kid);
  }

  signingKey(): SigningKey {
    if (this.#signing === undefined) throw new Error('no signing key');
    return this.#signing;
  }

  setState(kid: string, state: KeyState, verifyUntil?: number): void {
    const key = this.keys.get(kid);
    if (key === undefined) throw new Error(`unknown kid ${kid}`);
    this.keys.set(kid, { ...key, state, verifyUntil });
  }
}

export const ALGS: readonly SigningAlgorithm[] = ['HS256', 'ES256', 'EdDSA', 'Ed25519', 'RS256', 'PS256'];
