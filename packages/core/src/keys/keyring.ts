import { hkdfSync, type KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import type { JWK } from 'jose';
import { KeywardError } from '../errors.js';
import { Fernet } from '../fernet/fernet.js';
import { AT_JWT_ONLY, AT_JWT_OR_JWT, IMPORTED_TYP } from '../jwt/claims.js';
import { isSymmetric } from './algorithms.js';
import { type KeyMaterial, keyObjectsFor, publicJwk } from './generate.js';
import type {
  EncryptionKey,
  KeyLookup,
  KeyRecord,
  KeyUse,
  SigningAlgorithm,
  SigningKey,
  TypPolicy,
  VerificationKey,
} from './types.js';

/** A key with its material, as the keyring holds it in memory. */
export interface UnsealedKey {
  record: KeyRecord;
  material: KeyMaterial;
}

/** A data key ready to encrypt or decrypt. */
export interface DataKey {
  readonly kid: string;
  readonly state: KeyRecord['state'];
  readonly fernet: Fernet;
}

/** A JSON Web Key Set. */
export interface JsonWebKeySet {
  keys: JWK[];
}

interface Entry {
  record: KeyRecord;
  /** Identity of the unsealed material the objects were built from (never exposed). */
  material: KeyMaterial;
  secret: KeyObject;
  verify: KeyObject;
  publicJwk?: JWK;
  fernet?: Fernet;
}

const JWKS_STATES = new Set(['pending', 'active', 'retiring']);

/**
 * An immutable in-memory snapshot of the keyring: every lookup the hot path needs, with no I/O.
 * A change (rotation, revocation) builds a new snapshot and swaps it in.
 *
 * Key material never shows in `JSON.stringify` or `util.inspect` of a snapshot.
 *
 * @example
 * ```ts
 * const key = keyring.verificationKey(kid) // undefined when unknown
 * ```
 */
export class Keyring implements KeyLookup {
  /** Store generation this snapshot reflects. */
  readonly generation: number;
  readonly #entries: Map<string, Entry>;
  readonly #verification = new Map<string, VerificationKey>();
  readonly #signing: SigningKey | undefined;
  readonly #kidless: VerificationKey | undefined;
  readonly #encryption: EncryptionKey | undefined;
  readonly #data: DataKey | undefined;
  readonly #jwks: JsonWebKeySet;
  /** Records of destroyed keys: listed for audit, no material. */
  readonly #retained: Map<string, KeyRecord>;

  constructor(
    keys: readonly UnsealedKey[],
    generation: number,
    options: {
      preferredSigner?: string;
      /** The snapshot this one replaces: KeyObjects of unchanged keys (same material object) are reused. */
      previous?: Keyring;
      /** Records without material (destroyed data keys): listed by {@link Keyring.records}, never usable. */
      retained?: readonly KeyRecord[];
    } = {},
  ) {
    this.generation = generation;
    this.#entries = new Map();
    this.#retained = new Map((options.retained ?? []).map((r) => [r.kid, Object.freeze({ ...r })]));
    const previous = options.previous ? options.previous.#entries : undefined;
    for (const { record, material } of keys) {
      const before = previous?.get(record.kid);
      // Building KeyObjects dominates a snapshot swap on large keyrings; unchanged keys reuse them.
      const entry: Entry =
        before && before.material === material
          ? { ...before, record: Object.freeze({ ...record }) }
          : this.#build(record, material);
      this.#entries.set(record.kid, entry);
      if (record.use === 'sig' && record.state !== 'retired') {
        this.#verification.set(record.kid, {
          kid: record.kid,
          alg: record.alg as SigningAlgorithm,
          state: record.state,
          keyObject: entry.verify,
          verifyUntil: record.verifyUntil,
          typ: typPolicyOf(record.origin),
        });
      }
    }
    this.#kidless = kidlessDefault(this.#verification, this.#entries);
    const preferred = options.preferredSigner ? this.#entries.get(options.preferredSigner) : undefined;
    const signer = preferred?.record.state === 'active' ? preferred : this.#active('sig');
    this.#signing = signer && {
      kid: signer.record.kid,
      alg: signer.record.alg as SigningAlgorithm,
      keyObject: signer.secret,
    };
    const enc = this.#active('enc');
    this.#encryption = enc && { kid: enc.record.kid, state: enc.record.state, keyObject: enc.secret };
    const data = this.#active('data');
    this.#data = data?.fernet && { kid: data.record.kid, state: data.record.state, fernet: data.fernet };
    this.#jwks = {
      keys: [...this.#entries.values()]
        .filter((e) => e.record.use === 'sig' && e.publicJwk && JWKS_STATES.has(e.record.state))
        .sort((a, b) => stateOrder(a.record.state) - stateOrder(b.record.state))
        .map((e) => ({ ...e.publicJwk, kid: e.record.kid, alg: e.record.alg, use: 'sig' })),
    };
  }

  #build(record: KeyRecord, material: KeyMaterial): Entry {
    const objects = keyObjectsFor(record.alg, material);
    const entry: Entry = {
      record: Object.freeze({ ...record }),
      material,
      secret: objects.secret,
      verify: objects.verify,
    };
    if (!isSymmetric(record.alg)) entry.publicJwk = publicJwk(material);
    if (record.use === 'data' && typeof material.k === 'string') {
      entry.fernet = new Fernet(Buffer.from(material.k, 'base64url'));
    }
    return entry;
  }

  #active(use: KeyUse): Entry | undefined {
    // With a legacy key and a generated key both active, the generated one wins unless preferred.
    let found: Entry | undefined;
    for (const entry of this.#entries.values()) {
      if (entry.record.use !== use || entry.record.state !== 'active') continue;
      if (!found || (found.record.origin === 'legacy' && entry.record.origin !== 'legacy')) found = entry;
    }
    return found;
  }

  /** Every key's public metadata (never material), oldest first; destroyed data keys included. */
  records(): KeyRecord[] {
    return [...[...this.#entries.values()].map((e) => e.record), ...this.#retained.values()]
      .map((r) => ({ ...r }))
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  /** The record of one key (a destroyed data key's too), or `undefined`. */
  record(kid: string): KeyRecord | undefined {
    const record = this.#entries.get(kid)?.record ?? this.#retained.get(kid);
    return record && { ...record };
  }

  /** {@inheritDoc KeyLookup.verificationKey} */
  verificationKey(kid: string): VerificationKey | undefined {
    return this.#verification.get(kid);
  }

  /** {@inheritDoc KeyLookup.kidlessKey} */
  kidlessKey(): VerificationKey | undefined {
    return this.#kidless;
  }

  /** {@inheritDoc KeyLookup.signingKey} */
  signingKey(): SigningKey {
    if (!this.#signing) throw new KeywardError('key_not_found', 'the keyring has no active signing key');
    return this.#signing;
  }

  /** The active JWE key. */
  encryptionKey(): EncryptionKey {
    if (!this.#encryption)
      throw new KeywardError('key_not_found', 'the keyring has no active encryption key');
    return this.#encryption;
  }

  /** JWE keys that may decrypt a token with this `kid` header: that key if usable, else every non-revoked enc key. */
  decryptionKeys(kid: string | undefined): EncryptionKey[] {
    const usable = (e: Entry) =>
      e.record.use === 'enc' && e.record.state !== 'revoked' && e.record.state !== 'retired';
    const named = kid === undefined ? undefined : this.#entries.get(kid);
    const list = named && usable(named) ? [named] : [...this.#entries.values()].filter(usable);
    return list.map((e) => ({ kid: e.record.kid, state: e.record.state, keyObject: e.secret }));
  }

  /** The active data (Fernet) key. */
  dataKey(): DataKey {
    if (!this.#data) throw new KeywardError('key_not_found', 'the keyring has no active data key');
    return this.#data;
  }

  /**
   * A data key that may decrypt, by kid, or `undefined`. A revoked data key still decrypts (it never
   * encrypts again) until the rewrap leaves nothing under it and its material is destroyed; a
   * retired or destroyed one does not.
   */
  dataKeyById(kid: string): DataKey | undefined {
    const e = this.#entries.get(kid);
    if (!e?.fernet || e.record.state === 'retired') return undefined;
    return { kid, state: e.record.state, fernet: e.fernet };
  }

  /**
   * A 32-byte secret derived from a data key (HKDF-SHA256, RFC 5869, empty salt, `info`), for
   * uses other than Fernet such as the API-key hash pepper; the key itself never leaves the
   * keyring. `undefined` when `kid` is not a usable data key (unknown, revoked or retired).
   *
   * @example
   * ```ts
   * const pepper = keyring.dataKeyPepper(keyring.dataKey().kid, 'keyward/apikey-pepper')
   * ```
   */
  dataKeyPepper(kid: string, info: string): Buffer | undefined {
    const e = this.#entries.get(kid);
    if (!e?.fernet || e.record.state === 'revoked' || e.record.state === 'retired') return undefined;
    return Buffer.from(hkdfSync('sha256', e.secret, Buffer.alloc(0), info, 32));
  }

  /** Every data key that may decrypt (revoked ones until destroyed), newest first (for bare Fernet tokens tried by trial). */
  dataKeys(): DataKey[] {
    return [...this.#entries.values()]
      .filter((e) => e.fernet && e.record.state !== 'retired')
      .sort((a, b) => b.record.createdAt - a.record.createdAt)
      .map((e) => ({ kid: e.record.kid, state: e.record.state, fernet: e.fernet as Fernet }));
  }

  /** Public JWKS: pending, active and retiring asymmetric signing keys. Never symmetric or revoked keys. */
  jwks(): JsonWebKeySet {
    return { keys: this.#jwks.keys.map((k) => ({ ...k })) };
  }

  toJSON(): { generation: number; keys: KeyRecord[] } {
    return { generation: this.generation, keys: this.records() };
  }

  [inspect.custom](): string {
    return `Keyring { generation: ${this.generation}, keys: ${this.records()
      .map((r) => `${r.use}:${r.kid.slice(0, 8)}…(${r.state})`)
      .join(', ')} }`;
  }
}

/**
 * The key marked `defaultForKidless` that verifies kid-less tokens: the one still live (pending,
 * active, retiring), else a revoked one (so its tokens fail with `key_revoked`), else none.
 */
function kidlessDefault(
  verification: ReadonlyMap<string, VerificationKey>,
  entries: ReadonlyMap<string, Entry>,
): VerificationKey | undefined {
  let revoked: VerificationKey | undefined;
  for (const [kid, key] of verification) {
    if (entries.get(kid)?.record.defaultForKidless !== true) continue;
    if (key.state !== 'revoked') return key;
    revoked ??= key;
  }
  return revoked;
}

/** RFC 8725 §3.11: which `typ` a key's tokens may carry, by where the key came from. */
function typPolicyOf(origin: KeyRecord['origin']): TypPolicy {
  return origin === 'legacy' ? AT_JWT_OR_JWT : origin === 'imported' ? IMPORTED_TYP : AT_JWT_ONLY;
}

function stateOrder(state: KeyRecord['state']): number {
  return state === 'active' ? 0 : state === 'pending' ? 1 : 2;
}
