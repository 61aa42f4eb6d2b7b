import { createHash, createSecretKey, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { KeywardError } from '../errors.js';
import {
  checkTokenTime,
  decodeToken,
  decryptVerified,
  type FernetKeys,
  randomIv,
  readTimestamp,
  sealToken,
  verifyHmac,
} from './token.js';

/** Options of {@link Fernet.encrypt}. */
export interface FernetEncryptOptions {
  /** Time stamped into the token, epoch milliseconds (truncated to seconds). Default `Date.now()`. */
  now?: number;
  /** A fixed 16-byte IV, for test vectors only. Default: 16 random bytes. */
  iv?: Uint8Array;
}

/** Options of {@link Fernet.decrypt}. */
export interface FernetDecryptOptions {
  /** Reject tokens older than this many seconds (and stamped over 60 s in the future). Default: no limit. */
  ttlSeconds?: number;
  /** The current time, epoch milliseconds. Default `Date.now()`. */
  now?: number;
}

// Key strings: both base64 alphabets, with or without padding, as Python's `urlsafe_b64decode`
// takes them (`openssl rand -base64 32` keys work); nothing else.
const KEY_SHAPE = /^[A-Za-z0-9_+/-]{43}=?$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });
let keysOfFernet: (fernet: Fernet) => FernetKeys;

function invalidOption(option: string, expected: string): KeywardError {
  return new KeywardError('config_invalid', `Fernet: option \`${option}\` must be ${expected}`, {
    details: { option },
  });
}

/** @internal Validates `now` (epoch ms) and returns epoch seconds. */
export function nowSeconds(now: number | undefined): number {
  if (now === undefined) return Math.floor(Date.now() / 1000);
  if (!Number.isFinite(now) || now < 0) throw invalidOption('now', 'a non-negative epoch time in ms');
  return Math.floor(now / 1000);
}

/** @internal Validates `ttlSeconds`. */
export function validTtl(ttlSeconds: number): number {
  if (!Number.isFinite(ttlSeconds) || ttlSeconds < 0) throw invalidOption('ttlSeconds', 'a number ≥ 0');
  return ttlSeconds;
}

function parseKey(key: string | Uint8Array): Buffer {
  if (key instanceof Uint8Array) {
    if (key.length === 32) return Buffer.from(key);
  } else if (typeof key === 'string' && KEY_SHAPE.test(key)) {
    return Buffer.from(key.replace(/\+/g, '-').replace(/\//g, '_'), 'base64url');
  }
  throw new KeywardError('fernet_key_invalid', 'Fernet key must be 32 bytes, or their url-safe base64');
}

/**
 * Fernet symmetric encryption (AES-128-CBC + HMAC-SHA256, https://github.com/fernet/spec), interoperable
 * with Python's `cryptography.fernet`. The key stays in private fields: `JSON.stringify`, `util.inspect`
 * and `String()` show only a key id (first 8 hex digits of its SHA-256).
 *
 * @example
 * ```ts
 * const fernet = new Fernet(process.env.DATA_KEY!); // e.g. from Fernet.generateKey()
 * const token = fernet.encrypt('s3cret value');
 * fernet.decryptString(token, { ttlSeconds: 3600 }); // 's3cret value'
 * ```
 */
export class Fernet {
  readonly #keys: FernetKeys;
  readonly #keyId: string;

  static {
    keysOfFernet = (fernet) => fernet.#keys;
  }

  /**
   * @param key - url-safe base64 of 32 bytes (with or without `=`), or the 32 raw bytes:
   *   the first 16 sign, the last 16 encrypt. Throws `fernet_key_invalid` otherwise.
   */
  constructor(key: string | Uint8Array) {
    const bytes = parseKey(key);
    this.#keys = {
      signing: createSecretKey(bytes.subarray(0, 16)),
      encryption: createSecretKey(bytes.subarray(16, 32)),
    };
    this.#keyId = createHash('sha256').update(bytes).digest('hex').slice(0, 8);
    bytes.fill(0);
  }

  /**
   * A new random key in Python's format (url-safe base64 with padding).
   *
   * @example
   * ```ts
   * const key = Fernet.generateKey(); // 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4='
   * ```
   */
  static generateKey(): string {
    return `${randomBytes(32).toString('base64url')}=`;
  }

  /** Non-secret id of the key: the first 8 hex digits of SHA-256 of the 32 key bytes. */
  get keyId(): string {
    return this.#keyId;
  }

  /**
   * Encrypts `data` (a string is encoded as UTF-8) into a token stamped with the current time.
   *
   * @example
   * ```ts
   * const token = fernet.encrypt(new Uint8Array([1, 2, 3]));
   * ```
   */
  encrypt(data: string | Uint8Array, options: FernetEncryptOptions = {}): string {
    let bytes: Uint8Array;
    if (typeof data === 'string') bytes = Buffer.from(data, 'utf8');
    else if (data instanceof Uint8Array) bytes = data;
    else throw invalidOption('data', 'a string or a Uint8Array');
    const iv = options.iv ?? randomIv();
    if (!(iv instanceof Uint8Array) || iv.length !== 16) throw invalidOption('iv', '16 bytes');
    return sealToken(this.#keys, bytes, nowSeconds(options.now), iv);
  }

  /**
   * Verifies and decrypts a token. Throws `fernet_token_invalid` (tampered, malformed, wrong key, or
   * stamped over 60 s ahead when a TTL is given) or `fernet_token_expired`.
   *
   * @example
   * ```ts
   * const bytes = fernet.decrypt(token, { ttlSeconds: 60 });
   * ```
   */
  decrypt(token: string, options: FernetDecryptOptions = {}): Uint8Array {
    const ttl = options.ttlSeconds === undefined ? undefined : validTtl(options.ttlSeconds);
    const now = ttl === undefined ? 0 : nowSeconds(options.now);
    const raw = decodeToken(token);
    verifyHmac(this.#keys, raw);
    if (ttl !== undefined) checkTokenTime(readTimestamp(raw), ttl, now);
    return decryptVerified(this.#keys, raw);
  }

  /**
   * {@link Fernet.decrypt}, then UTF-8 decoding; bytes that are not UTF-8 give `fernet_token_invalid`.
   *
   * @example
   * ```ts
   * const text = fernet.decryptString(token);
   * ```
   */
  decryptString(token: string, options: FernetDecryptOptions = {}): string {
    return decodeUtf8(this.decrypt(token, options));
  }

  /**
   * The token's timestamp in epoch seconds, after verifying its HMAC (no TTL check).
   *
   * @example
   * ```ts
   * const issuedAt = new Date(fernet.extractTimestamp(token) * 1000);
   * ```
   */
  extractTimestamp(token: string): number {
    const raw = decodeToken(token);
    verifyHmac(this.#keys, raw);
    return readTimestamp(raw);
  }

  /** Shows only the key id. */
  toJSON(): { keyId: string } {
    return { keyId: this.#keyId };
  }

  /** Shows only the key id. */
  toString(): string {
    return `Fernet { keyId: '${this.#keyId}' }`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** @internal The imported keys of a `Fernet`, for `MultiFernet`. Not exported from the package. */
export function fernetKeys(fernet: Fernet): FernetKeys {
  return keysOfFernet(fernet);
}

/** @internal */
export function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch (cause) {
    throw new KeywardError('fernet_token_invalid', 'Fernet plaintext is not valid UTF-8', {
      cause,
      details: { reason: 'utf8' },
    });
  }
}
