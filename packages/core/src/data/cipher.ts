import type { KeywardCore } from '../core.js';
import { KeywardError } from '../errors.js';
import { decodeToken, invalidToken, readTimestamp } from '../fernet/token.js';
import type { DataKey, Keyring } from '../keys/keyring.js';

/**
 * Encrypts data at rest under the keyring's data keys. Stored form: `<kid>:<fernet token>`, so
 * decryption is one key lookup; a bare Fernet token (older data, or migrated legacy data) is still
 * decrypted by trying every usable data key, newest first.
 */
export interface DataCipher {
  /** Encrypts under the active data key; returns `<kid>:<fernet token>`. */
  encrypt(plaintext: string | Uint8Array): string;
  /**
   * Decrypts a stored value (also under a revoked data key, until its material is destroyed).
   * `data_key_unavailable` for a kid this keyring cannot use (destroyed, retired, unknown),
   * `fernet_token_invalid` for a bad token.
   */
  decrypt(stored: string): Uint8Array;
  /** {@link DataCipher.decrypt}, then UTF-8 decoding (`fernet_token_invalid` when not UTF-8). */
  decryptString(stored: string): string;
  /**
   * The kid a stored value is under: its prefix, or for a bare token the data key that verifies it.
   * `undefined` when malformed or no key verifies it. Never throws.
   */
  kidOf(stored: string): string | undefined;
  /** True when the value is in the prefixed form under the active data key (nothing to rewrap). */
  isCurrent(stored: string): boolean;
  /**
   * Re-encrypts a stored value under the active data key with a fresh IV, keeping the original
   * Fernet timestamp (Python's `MultiFernet.rotate`). Returns the value unchanged when already current.
   * With `migrate`, the decrypted plaintext is passed to it first: when it returns new bytes, those
   * are encrypted instead (even under the active key); when it returns `undefined`, the plaintext is kept.
   */
  rewrap(stored: string, migrate?: (plaintext: Uint8Array) => Uint8Array | undefined): string;
}

interface Opened {
  key: DataKey;
  token: string;
}

const MAX_STORED_LENGTH = 16 * 1024 * 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Splits `<kid>:<token>`; a value without `:` is a bare token. Tokens never hold `:`, kids may. */
function split(stored: unknown): { kid: string | undefined; token: string } {
  if (typeof stored !== 'string' || stored.length === 0 || stored.length > MAX_STORED_LENGTH)
    throw invalidToken('not a stored ciphertext');
  const at = stored.lastIndexOf(':');
  if (at === -1) return { kid: undefined, token: stored };
  if (at === 0) throw invalidToken('empty key id');
  return { kid: stored.slice(0, at), token: stored.slice(at + 1) };
}

function unusableKey(keyring: Keyring, kid: string): KeywardError {
  const shown = kid.slice(0, 64);
  const record = keyring.record(kid);
  const why =
    record === undefined || record.use !== 'data'
      ? 'is unknown to this keyring'
      : record.destroyedAt !== undefined
        ? 'was destroyed after its revocation'
        : `is ${record.state}`;
  // A server-side key problem: never a client credential error (no key_revoked / 401).
  return new KeywardError(
    'data_key_unavailable',
    `data key "${shown}" ${why}; the record cannot be decrypted`,
    {
      details: { kid: shown, ...(record ? { state: record.state } : {}) },
    },
  );
}

/** Finds the key of a stored value and verifies the token under it (HMAC only). */
function locate(keyring: Keyring, stored: string): Opened {
  const { kid, token } = split(stored);
  if (kid !== undefined) {
    const key = keyring.dataKeyById(kid);
    if (!key) throw unusableKey(keyring, kid);
    return { key, token };
  }
  decodeToken(token);
  for (const key of keyring.dataKeys()) {
    try {
      key.fernet.extractTimestamp(token);
      return { key, token };
    } catch {
      // wrong key: try the next one, as MultiFernet does
    }
  }
  throw invalidToken('no data key matched');
}

/**
 * Creates the data cipher of a keyward core: what secrets, IdP tokens and rewrap use to encrypt
 * at rest. Reads the core's current keyring snapshot on every call, so a rotation applies at once.
 *
 * @example
 * ```ts
 * const cipher = createDataCipher(core)
 * const stored = cipher.encrypt('ghp_…')     // 'd_2f…:gAAAAAB…'
 * cipher.decryptString(stored)               // 'ghp_…'
 * if (!cipher.isCurrent(stored)) row.value = cipher.rewrap(stored)
 * ```
 */
export function createDataCipher(core: Pick<KeywardCore, 'keys' | 'now'>): DataCipher {
  const snapshot = () => core.keys.snapshot();

  const decrypt = (stored: string): Uint8Array => {
    const { key, token } = locate(snapshot(), stored);
    return key.fernet.decrypt(token);
  };

  return {
    encrypt(plaintext) {
      if (typeof plaintext !== 'string' && !(plaintext instanceof Uint8Array))
        throw new KeywardError('invalid_argument', 'plaintext must be a string or a Uint8Array');
      const key = snapshot().dataKey();
      return `${key.kid}:${key.fernet.encrypt(plaintext, { now: core.now() })}`;
    },
    decrypt,
    decryptString(stored) {
      try {
        return utf8.decode(decrypt(stored));
      } catch (err) {
        if (err instanceof TypeError) throw invalidToken('plaintext is not UTF-8');
        throw err;
      }
    },
    kidOf(stored) {
      try {
        const { kid } = split(stored);
        return kid ?? locate(snapshot(), stored).key.kid;
      } catch {
        return undefined;
      }
    },
    isCurrent(stored) {
      try {
        const { kid } = split(stored);
        return kid !== undefined && kid === snapshot().dataKey().kid;
      } catch {
        return false;
      }
    },
    rewrap(stored, migrate) {
      const keyring = snapshot();
      const active = keyring.dataKey();
      const { key, token } = locate(keyring, stored);
      const current = key.kid === active.kid && split(stored).kid !== undefined;
      if (current && migrate === undefined) return stored;
      let plaintext = key.fernet.decrypt(token);
      if (migrate !== undefined) {
        const migrated = migrate(plaintext);
        if (migrated !== undefined) plaintext = migrated;
        else if (current) return stored;
      }
      // The HMAC just verified, so the timestamp is authentic; re-stamp it as MultiFernet.rotate does.
      const timestamp = readTimestamp(decodeToken(token));
      if (timestamp * 1000 > Number.MAX_SAFE_INTEGER) throw invalidToken('timestamp out of range');
      return `${active.kid}:${active.fernet.encrypt(plaintext, { now: timestamp * 1000 })}`;
    },
  };
}
