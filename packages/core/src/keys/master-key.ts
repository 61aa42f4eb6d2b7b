import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { fromBase64Url } from '../_internal/base64url.js';
import { KeywardError } from '../errors.js';

/** File name of the development master key inside `KEYWARD_DIR`. */
export const MASTER_KEY_FILE = 'master.key';

/**
 * The master key (KEK) that seals every other key at rest. Its format is a Fernet key: url-safe
 * base64 of 32 random bytes. The bytes never leave this object: `JSON.stringify` and
 * `util.inspect` show only its id.
 *
 * @example
 * ```ts
 * const mk = MasterKey.parse(process.env.KEYWARD_MASTER_KEY!)
 * console.log(mk.id) // 'mk_3f2a…' — safe to log
 * ```
 */
export class MasterKey {
  readonly #bytes: Buffer;
  /** Non-secret identifier (HMAC of a constant under the key), stored beside sealed keys to detect a wrong master key. */
  readonly id: string;

  private constructor(bytes: Buffer) {
    this.#bytes = bytes;
    this.id = `mk_${createHmac('sha256', bytes).update('keyward master key id').digest('hex').slice(0, 16)}`;
  }

  /** Parses a Fernet-format key (url-safe base64 of 32 bytes, padding optional). */
  static parse(text: string): MasterKey {
    const bytes = fromBase64Url(text.trim());
    if (bytes?.length !== 32) {
      throw new KeywardError(
        'master_key_invalid',
        'KEYWARD_MASTER_KEY must be a Fernet key: url-safe base64 of 32 bytes (generate one with `keyward init` or `keyward fernet generate-key`)',
      );
    }
    return new MasterKey(bytes);
  }

  /** Generates a new random master key. */
  static generate(): MasterKey {
    return new MasterKey(randomBytes(32));
  }

  /** The key in its Fernet text form. Only for writing it to a secret manager or the dev key file. */
  exportText(): string {
    return this.#bytes.toString('base64url').concat('=');
  }

  /** Derives a purpose-bound subkey (HKDF-SHA256), so the master key itself never encrypts anything. */
  deriveKey(info: string, length = 32): Buffer {
    return Buffer.from(hkdfSync('sha256', this.#bytes, Buffer.alloc(0), `keyward/${info}`, length));
  }

  toJSON(): { id: string } {
    return { id: this.id };
  }

  [inspect.custom](): string {
    return `MasterKey { id: '${this.id}' }`;
  }
}

/** Where a master key came from. */
export type MasterKeySource = 'option' | 'env' | 'file' | 'generated';

/** Options of {@link loadMasterKey}. */
export interface LoadMasterKeyOptions {
  /** An explicit key (Fernet format). Wins over everything else. */
  masterKey?: string;
  /** Environment to read `KEYWARD_MASTER_KEY` from. Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Folder of the dev key file. When set and no key is given, a key is read from or generated into it (0600). */
  dir?: string;
  /** Called once with a warning when a dev key file is generated. */
  warn?: (message: string) => void;
  /**
   * Earlier master keys (Fernet format) still accepted to open a keyring sealed by them, during a
   * master-key rotation. Default: `KEYWARD_MASTER_KEY_PREVIOUS` of `env` (comma-separated).
   */
  previousMasterKeys?: readonly string[];
  /**
   * When the dev key file would be generated, write nothing yet: the result carries `commit`, which
   * writes it (and warns). The caller checks first that the store holds no keyring sealed by another
   * key, so a deployment whose `KEYWARD_MASTER_KEY` went missing fails without leaving a stray
   * `master.key` behind. Default `false` (generate and write at once).
   */
  deferGenerated?: boolean;
}

/**
 * Splits `KEYWARD_MASTER_KEY_PREVIOUS` (comma-separated Fernet keys) into its entries, blanks
 * ignored. The entries are checked when loaded ({@link loadMasterKey}: `master_key_invalid`,
 * naming the entry's position, never its value).
 *
 * @example
 * ```ts
 * const previous = parsePreviousMasterKeys(process.env.KEYWARD_MASTER_KEY_PREVIOUS)
 * ```
 */
export function parsePreviousMasterKeys(text: string | undefined): string[] {
  return (text ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '');
}

function parsePrevious(texts: readonly string[], current: MasterKey): MasterKey[] {
  const seen = new Set([current.id]);
  const keys: MasterKey[] = [];
  texts.forEach((text, index) => {
    let key: MasterKey;
    try {
      key = MasterKey.parse(text);
    } catch {
      throw new KeywardError(
        'master_key_invalid',
        `entry ${index + 1} of the previous master keys (KEYWARD_MASTER_KEY_PREVIOUS) is not a Fernet key: url-safe base64 of 32 bytes`,
      );
    }
    if (seen.has(key.id)) return;
    seen.add(key.id);
    keys.push(key);
  });
  return keys;
}

/**
 * Finds the master key: the `masterKey` option, then `KEYWARD_MASTER_KEY`, then `<dir>/master.key`
 * (generated with mode 0600 and a warning if absent). Throws `master_key_invalid` if none can be had.
 * `previous` holds the earlier master keys still accepted for opening (see
 * {@link LoadMasterKeyOptions.previousMasterKeys}), without duplicates or the current key.
 *
 * @example
 * ```ts
 * const { key, previous, source } = loadMasterKey({ dir: './.keyward' })
 * ```
 */
export function loadMasterKey(options: LoadMasterKeyOptions = {}): {
  key: MasterKey;
  previous: MasterKey[];
  source: MasterKeySource;
  /**
   * With `deferGenerated`, when the key was generated and not written yet: writes `<dir>/master.key`
   * (0600) and returns the key to use — the one another process wrote first, if it did.
   */
  commit?: () => MasterKey;
} {
  const found = loadCurrentMasterKey(options);
  const texts =
    options.previousMasterKeys ??
    parsePreviousMasterKeys((options.env ?? process.env).KEYWARD_MASTER_KEY_PREVIOUS);
  return { ...found, previous: parsePrevious(texts, found.key) };
}

function loadCurrentMasterKey(options: LoadMasterKeyOptions): {
  key: MasterKey;
  source: MasterKeySource;
  commit?: () => MasterKey;
} {
  if (options.masterKey) return { key: MasterKey.parse(options.masterKey), source: 'option' };
  const fromEnv = (options.env ?? process.env).KEYWARD_MASTER_KEY;
  if (fromEnv) return { key: MasterKey.parse(fromEnv), source: 'env' };
  if (!options.dir) {
    throw new KeywardError(
      'master_key_invalid',
      'no master key: set KEYWARD_MASTER_KEY, pass the masterKey option, or give a dir for a development key file',
    );
  }
  const file = join(options.dir, MASTER_KEY_FILE);
  if (existsSync(file)) return { key: MasterKey.parse(readFileSync(file, 'utf8')), source: 'file' };
  const { dir } = options;
  const key = MasterKey.generate();
  const commit = (): MasterKey => {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // `wx`: never overwrite a key another process created a moment ago.
    try {
      writeFileSync(file, `${key.exportText()}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST')
        return MasterKey.parse(readFileSync(file, 'utf8'));
      throw err;
    }
    chmodSync(file, 0o600);
    options.warn?.(
      `generated a development master key in ${file} (mode 0600). In production set KEYWARD_MASTER_KEY from a secret manager instead.`,
    );
    return key;
  };
  if (options.deferGenerated) return { key, source: 'generated', commit };
  const written = commit();
  return written === key ? { key, source: 'generated' } : { key: written, source: 'file' };
}
