import type { KeyObject } from 'node:crypto';

/** What a key is for: JWS signing, JWE encryption, or Fernet data encryption. */
export type KeyUse = 'sig' | 'enc' | 'data';

/** Lifecycle: `pending → active → retiring → retired`, and any state `→ revoked`. */
export type KeyState = 'pending' | 'active' | 'retiring' | 'retired' | 'revoked';

/**
 * JWS algorithms keyward signs and verifies with. `EdDSA` and `Ed25519` (RFC 9864's fully-specified
 * name) are the same Ed25519 keys; the name chosen is the one its JWK and tokens carry (`EdDSA` for
 * verifiers that predate RFC 9864).
 */
export type SigningAlgorithm =
  | 'ES256'
  | 'EdDSA'
  | 'Ed25519'
  | 'RS256'
  | 'PS256'
  | 'HS256'
  | 'HS384'
  | 'HS512';

/** Algorithm of a key record. */
export type KeyAlgorithm = SigningAlgorithm | 'A256GCM' | 'fernet';

/** Where a key came from. */
export type KeyOrigin = 'generated' | 'legacy' | 'imported';

/**
 * The public, non-secret metadata of a key. Never holds key material.
 * Times are epoch milliseconds.
 */
export interface KeyRecord {
  kid: string;
  use: KeyUse;
  alg: KeyAlgorithm;
  state: KeyState;
  origin: KeyOrigin;
  createdAt: number;
  /**
   * Set on a pending signing key created in the same commit as the keyring itself (first bootstrap):
   * no verifier can hold a JWKS older than the keyring, so it counts as published at once.
   */
  createdWithKeyring?: boolean;
  /** When it started (or will start) signing / encrypting. */
  activatedAt?: number;
  /**
   * When the schedule rotates this key, if not `activatedAt` + the rotation period: set when an
   * on-demand rotation replaced a key, so the schedule keeps its cadence.
   */
  rotateAt?: number;
  /** When it stopped signing and became verify-only. */
  retiringAt?: number;
  /** Last instant a token signed by it may still verify (signing keys). */
  verifyUntil?: number;
  retiredAt?: number;
  revokedAt?: number;
  revokedReason?: string;
  /**
   * When a revoked data key's material was destroyed (erased from the keyring document) after the
   * rewrap left nothing under it. The record stays, for audit; nothing can decrypt under it again.
   */
  destroyedAt?: number;
  notes?: string;
  /**
   * Set on an imported signing key that verifies tokens carrying no `kid` header at all (tokens of
   * an app's previous library, e.g. express-jwt), until it retires. At most one key that still
   * verifies has it. See `kw.keys.import`.
   */
  defaultForKidless?: boolean;
}

/**
 * A verification key as the hot path sees it: the record's algorithm (never the token's) and a
 * ready `node:crypto` KeyObject (public key, or secret key for HMAC).
 */
export interface VerificationKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly state: KeyState;
  /** Public key (asymmetric) or secret key (HMAC). */
  readonly keyObject: KeyObject;
  /** Epoch ms after which tokens of this key are rejected; `undefined` = no limit. */
  readonly verifyUntil: number | undefined;
  /**
   * The `typ` headers this key's tokens may carry when the verifier is given no `typ` option or
   * override (RFC 8725 §3.11). `undefined` = no default check. The keyring sets it from the key's
   * origin; see {@link TypPolicy}.
   */
  readonly typ?: TypPolicy;
}

/**
 * Explicit typing of one key's tokens (RFC 8725 §3.11). keyward's keyring sets: generated keys
 * accept `at+jwt` only; the legacy `JWT_SECRET` key `at+jwt` and `JWT`; imported keys `at+jwt`,
 * `JWT` and a token without `typ` (the app's previous library may not write one). Anything else
 * is `token_claim_invalid`.
 *
 * @example
 * ```ts
 * const policy: TypPolicy = { accept: ['application/at+jwt'], allowMissing: false };
 * ```
 */
export interface TypPolicy {
  /** Accepted media types, lower case with the `application/` prefix (`application/at+jwt`). */
  readonly accept: readonly string[];
  /** Whether a token without a `typ` header passes. */
  readonly allowMissing: boolean;
}

/** A signing key: a private (or secret) KeyObject plus its record's algorithm. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly keyObject: KeyObject;
}

/** A JWE content-encryption key (`dir` + `A256GCM`). */
export interface EncryptionKey {
  readonly kid: string;
  readonly state: KeyState;
  /** 32-byte secret KeyObject. */
  readonly keyObject: KeyObject;
}

/** Lookup the JWT hot path uses: everything needed in memory, no I/O. */
export interface KeyLookup {
  /** The verification key for `kid`, or `undefined` if unknown. Revoked keys are returned with `state: 'revoked'`. */
  verificationKey(kid: string): VerificationKey | undefined;
  /** The active signing key. */
  signingKey(): SigningKey;
  /**
   * The key that verifies tokens without a `kid` header (an imported key marked `defaultForKidless`),
   * or `undefined`: then such tokens are refused (`token_invalid`, reason `kid_missing`). Only asked
   * for tokens that carry no `kid`.
   */
  kidlessKey?(): VerificationKey | undefined;
}
