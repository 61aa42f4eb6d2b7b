import { inspect } from 'node:util';
import { isKeywardError, KeywardError } from '../errors.js';
import {
  decodeUtf8,
  Fernet,
  type FernetDecryptOptions,
  type FernetEncryptOptions,
  fernetKeys,
  nowSeconds,
  validTtl,
} from './fernet.js';
import {
  checkTokenTime,
  decodeToken,
  decryptVerified,
  type FernetKeys,
  invalidToken,
  randomIv,
  readTimestamp,
  sealToken,
  verifyHmac,
} from './token.js';

const noTimeCheck = (): void => {};

interface Opened {
  plaintext: Buffer;
  timestamp: number;
}

/**
 * Several Fernet keys for rotation, like Python's `MultiFernet`: encrypts with the first, decrypts with
 * whichever key verifies the token, and {@link MultiFernet.rotate} re-encrypts old tokens under the first.
 *
 * @example
 * ```ts
 * const multi = new MultiFernet([newKey, oldKey]);
 * const fresh = multi.rotate(tokenUnderOldKey); // same timestamp, now under newKey
 * multi.decryptString(fresh);
 * ```
 */
export class MultiFernet {
  readonly #fernets: readonly Fernet[];
  readonly #keys: readonly FernetKeys[];

  /**
   * @param fernets - newest first: `Fernet` instances or their keys. Throws `config_invalid` when empty.
   */
  constructor(fernets: ReadonlyArray<Fernet | string | Uint8Array>) {
    if (!Array.isArray(fernets) || fernets.length === 0) {
      throw new KeywardError('config_invalid', 'MultiFernet needs at least one Fernet key', {
        details: { option: 'fernets' },
      });
    }
    this.#fernets = fernets.map((f) => (f instanceof Fernet ? f : new Fernet(f)));
    this.#keys = this.#fernets.map(fernetKeys);
  }

  /** Key ids, newest first (see {@link Fernet.keyId}). */
  get keyIds(): string[] {
    return this.#fernets.map((f) => f.keyId);
  }

  /**
   * Encrypts with the first (newest) key.
   *
   * @example
   * ```ts
   * const token = multi.encrypt('value');
   * ```
   */
  encrypt(data: string | Uint8Array, options?: FernetEncryptOptions): string {
    return this.#fernets[0]!.encrypt(data, options);
  }

  /**
   * Decrypts with the first key whose HMAC matches; `fernet_token_invalid` when none does.
   *
   * @example
   * ```ts
   * const bytes = multi.decrypt(token, { ttlSeconds: 3600 });
   * ```
   */
  decrypt(token: string, options: FernetDecryptOptions = {}): Uint8Array {
    const ttl = options.ttlSeconds === undefined ? undefined : validTtl(options.ttlSeconds);
    const now = ttl === undefined ? 0 : nowSeconds(options.now);
    return this.#open(token, ttl === undefined ? noTimeCheck : (ts) => checkTokenTime(ts, ttl, now))
      .plaintext;
  }

  /**
   * {@link MultiFernet.decrypt}, then UTF-8 decoding.
   *
   * @example
   * ```ts
   * const text = multi.decryptString(token);
   * ```
   */
  decryptString(token: string, options?: FernetDecryptOptions): string {
    return decodeUtf8(this.decrypt(token, options));
  }

  /**
   * The token's timestamp (epoch seconds), once one of the keys verifies it.
   *
   * @example
   * ```ts
   * multi.extractTimestamp(token); // 499162800
   * ```
   */
  extractTimestamp(token: string): number {
    return this.#open(token, noTimeCheck, false).timestamp;
  }

  /**
   * Re-encrypts a token under the first key with a fresh IV, keeping its original timestamp (so TTLs
   * still count from the first encryption), as Python's `MultiFernet.rotate`. No TTL is applied.
   *
   * @example
   * ```ts
   * for (const row of rows) row.value = multi.rotate(row.value);
   * ```
   */
  rotate(token: string): string {
    const { plaintext, timestamp } = this.#open(token, noTimeCheck);
    return sealToken(this.#keys[0]!, plaintext, timestamp, randomIv());
  }

  #open(token: string, checkTime: (timestamp: number) => void, decrypt = true): Opened {
    const raw = decodeToken(token);
    const timestamp = readTimestamp(raw);
    for (const keys of this.#keys) {
      try {
        verifyHmac(keys, raw);
        checkTime(timestamp);
        return { plaintext: decrypt ? decryptVerified(keys, raw) : raw, timestamp };
      } catch (err) {
        // As Python: any invalid result means "try the next key"; an expiry is final.
        if (!isKeywardError(err, 'fernet_token_invalid')) throw err;
      }
    }
    throw invalidToken('no key matched');
  }

  /** Shows only the key ids. */
  toJSON(): { keyIds: string[] } {
    return { keyIds: this.keyIds };
  }

  /** Shows only the key ids. */
  toString(): string {
    return `MultiFernet { keyIds: [${this.keyIds.map((id) => `'${id}'`).join(', ')}] }`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}
