/**
 * The Fernet token format (https://github.com/fernet/spec/blob/master/Spec.md), on node:crypto.
 * Internal: `Fernet` and `MultiFernet` are the public face.
 *
 *   0x80 ‖ timestamp (u64 BE, seconds) ‖ IV (16) ‖ AES-128-CBC ciphertext (PKCS7) ‖ HMAC-SHA256 (32)
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  type KeyObject,
  randomFillSync,
  timingSafeEqual,
} from 'node:crypto';
import { KeywardError } from '../errors.js';

/** The two halves of a Fernet key, imported once. */
export interface FernetKeys {
  readonly signing: KeyObject;
  readonly encryption: KeyObject;
}

const VERSION = 0x80;
const IV_OFFSET = 9;
const CIPHERTEXT_OFFSET = 25;
const HMAC_LENGTH = 32;
/** version + timestamp + IV + one cipher block + HMAC. */
const MIN_TOKEN_BYTES = CIPHERTEXT_OFFSET + 16 + HMAC_LENGTH;
/** Python's `_MAX_CLOCK_SKEW`: a token may be stamped at most this many seconds ahead of `now`. */
export const MAX_CLOCK_SKEW_SECONDS = 60;

// Tokens: url-safe alphabet with the padding Python emits and requires. Python also silently drops
// any other byte (newlines, `%`) and accepts `+` and `/`; we keep one canonical spelling instead.
const TOKEN_SHAPE = /^[A-Za-z0-9_-]+={0,2}$/;
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

// One CSPRNG call per 256 IVs instead of one per token (the same trick as Node's randomUUID cache):
// a randomBytes(16) call costs about as much as the AES itself on this path.
const ivPool = Buffer.allocUnsafe(16 * 256);
let ivOffset = ivPool.length;

/** 16 fresh random bytes, valid until the next call (consume synchronously). */
export function randomIv(): Buffer {
  if (ivOffset === ivPool.length) {
    randomFillSync(ivPool);
    ivOffset = 0;
  }
  ivOffset += 16;
  return ivPool.subarray(ivOffset - 16, ivOffset);
}

export function invalidToken(reason: string): KeywardError {
  return new KeywardError('fernet_token_invalid', `Fernet token is invalid (${reason})`, {
    details: { reason },
  });
}

/** Decodes and checks the structure of a token (not its HMAC). */
export function decodeToken(token: unknown): Buffer {
  if (typeof token !== 'string') throw invalidToken('not a string');
  const length = token.length;
  if (length % 4 !== 0 || !TOKEN_SHAPE.test(token)) throw invalidToken('base64');
  // Only canonical encodings: the unused low bits of the last symbol must be zero, otherwise two
  // spellings would carry the same bytes (and a flipped character could still verify).
  const pad = token.charCodeAt(length - 1) === 61 ? (token.charCodeAt(length - 2) === 61 ? 2 : 1) : 0;
  if (pad > 0 && (B64URL.indexOf(token.charAt(length - pad - 1)) & (pad === 2 ? 0x0f : 0x03)) !== 0) {
    throw invalidToken('base64');
  }
  const raw = Buffer.from(token, 'base64url');
  if (raw.length < MIN_TOKEN_BYTES || (raw.length - MIN_TOKEN_BYTES) % 16 !== 0) throw invalidToken('length');
  if (raw[0] !== VERSION) throw invalidToken('version');
  return raw;
}

/** Seconds since the epoch stamped in a decoded token. */
export function readTimestamp(raw: Buffer): number {
  return raw.readUInt32BE(1) * 0x1_0000_0000 + raw.readUInt32BE(5);
}

/** Verifies the HMAC of a decoded token in constant time. */
export function verifyHmac(keys: FernetKeys, raw: Buffer): void {
  const signedEnd = raw.length - HMAC_LENGTH;
  const expected = createHmac('sha256', keys.signing).update(raw.subarray(0, signedEnd)).digest();
  // timingSafeEqual: a short-circuiting compare would let an attacker find a valid HMAC byte by byte.
  if (!timingSafeEqual(expected, raw.subarray(signedEnd))) throw invalidToken('hmac');
}

/** Decrypts a decoded token whose HMAC was verified; returns the plaintext without a copy. */
export function decryptVerified(keys: FernetKeys, raw: Buffer): Buffer {
  const decipher = createDecipheriv(
    'aes-128-cbc',
    keys.encryption,
    raw.subarray(IV_OFFSET, CIPHERTEXT_OFFSET),
  );
  // Padding checked by hand so the plaintext is one buffer (update + final would need a concat).
  // No padding oracle: the HMAC was verified first.
  decipher.setAutoPadding(false);
  const padded = decipher.update(raw.subarray(CIPHERTEXT_OFFSET, raw.length - HMAC_LENGTH));
  const pad = padded[padded.length - 1] ?? 0;
  if (pad < 1 || pad > 16) throw invalidToken('padding');
  for (let i = padded.length - pad; i < padded.length - 1; i++) {
    if (padded[i] !== pad) throw invalidToken('padding');
  }
  return padded.subarray(0, padded.length - pad);
}

/** Time checks of `Fernet.decrypt_at_time` in Python: expiry, then clock skew. */
export function checkTokenTime(timestamp: number, ttlSeconds: number, nowSeconds: number): void {
  if (timestamp + ttlSeconds < nowSeconds) {
    throw new KeywardError('fernet_token_expired', 'Fernet token has expired', {
      details: { timestamp, ttlSeconds },
    });
  }
  if (nowSeconds + MAX_CLOCK_SKEW_SECONDS < timestamp) throw invalidToken('timestamp in the future');
}

/** Builds a token; one output buffer, filled in place. */
export function sealToken(keys: FernetKeys, data: Uint8Array, timestamp: number, iv: Uint8Array): string {
  const ciphertextLength = (data.length & ~15) + 16;
  const signedEnd = CIPHERTEXT_OFFSET + ciphertextLength;
  const out = Buffer.allocUnsafe(signedEnd + HMAC_LENGTH);
  out[0] = VERSION;
  out.writeUInt32BE(Math.floor(timestamp / 0x1_0000_0000), 1);
  out.writeUInt32BE(timestamp >>> 0, 5);
  out.set(iv, IV_OFFSET);
  const cipher = createCipheriv('aes-128-cbc', keys.encryption, iv);
  const head = cipher.update(data);
  out.set(head, CIPHERTEXT_OFFSET);
  out.set(cipher.final(), CIPHERTEXT_OFFSET + head.length);
  out.set(createHmac('sha256', keys.signing).update(out.subarray(0, signedEnd)).digest(), signedEnd);
  const encoded = out.toString('base64url');
  const rest = encoded.length % 4;
  return rest === 0 ? encoded : rest === 2 ? `${encoded}==` : `${encoded}=`;
}
