import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  createKeyward,
  createPostgresStore,
  createRedisStore,
  createSqliteStore,
  jsonlFileSink,
  KeyringRepository,
  type Keyward,
  type KeywardServiceOptions,
  loadMasterKey,
  MASTER_KEY_FILE,
  MasterKey,
  type RotationPolicyInput,
  type Store,
} from '@keyward/core';
import { CliError, EXIT } from './errors.js';

/** Options every command takes (declared once on the root command). */
export interface GlobalOptions {
  /** Embedded store folder; also holds the dev master key and the CLI's audit file. */
  dir: string;
  /** Redis URL: use Redis as the store instead of `<dir>/keyward.db`. */
  redis?: string;
  /** Key prefix in Redis. */
  redisPrefix?: string;
  /** PostgreSQL URL: use PostgreSQL as the store (when `redis` is not set). */
  database?: string;
  /** JSON file with the app's rotation policy (as passed to `createKeyward({ rotation })`). */
  policy?: string;
}

/** Where the keyring lives, for messages: never the Redis or PostgreSQL URL, which may carry a password. */
export function describeStore(g: GlobalOptions): string {
  if (g.redis) return 'the Redis store';
  return g.database ? 'the PostgreSQL store' : join(g.dir, 'keyward.db');
}

/** The CLI's own audit file. */
export function auditFile(g: GlobalOptions): string {
  return join(g.dir, 'audit.jsonl');
}

/**
 * Opens the store. The embedded store must already exist unless `create` (init, restore): a
 * mistyped `--dir` must not quietly start an empty keyring.
 */
export function openStore(g: GlobalOptions, create = false): Store {
  if (g.redis) {
    return createRedisStore({ url: g.redis, ...(g.redisPrefix ? { prefix: g.redisPrefix } : {}) });
  }
  if (g.database) return createPostgresStore({ connectionString: g.database });
  const path = join(g.dir, 'keyward.db');
  if (!create && !existsSync(path)) {
    throw new CliError(
      'keyring_missing',
      `no keyring at ${path}: run \`keyward init\` first, or pass --dir, --redis or --database`,
      EXIT.failure,
    );
  }
  mkdirSync(g.dir, { recursive: true, mode: 0o700 });
  return createSqliteStore({ path });
}

/**
 * The master key from `KEYWARD_MASTER_KEY` or `<dir>/master.key`, or `undefined` when neither is
 * there (only `init` and `restore` may create one).
 */
export function findMasterKey(g: GlobalOptions): { key: MasterKey; source: string } | undefined {
  const fromEnv = process.env.KEYWARD_MASTER_KEY;
  if (fromEnv) return { key: MasterKey.parse(fromEnv), source: 'KEYWARD_MASTER_KEY' };
  const file = join(g.dir, MASTER_KEY_FILE);
  if (existsSync(file)) return { key: MasterKey.parse(readFileSync(file, 'utf8')), source: file };
  return undefined;
}

/** The master key and the previous ones still accepted for opening (`KEYWARD_MASTER_KEY_PREVIOUS`). */
export interface MasterKeys {
  /** The current key: `KEYWARD_MASTER_KEY`, else `<dir>/master.key`. */
  key: MasterKey;
  /** Earlier keys from `KEYWARD_MASTER_KEY_PREVIOUS` (comma-separated), without the current one. */
  previous: MasterKey[];
  /** Where the current key came from, for messages (never its value). */
  source: string;
}

/** The master key plus the keys of `KEYWARD_MASTER_KEY_PREVIOUS`, or a clear error. */
export function requireMasterKeys(g: GlobalOptions): MasterKeys {
  const found = findMasterKey(g);
  if (!found) {
    throw new CliError(
      'master_key_missing',
      `no master key: set KEYWARD_MASTER_KEY, or run \`keyward init\` to create ${join(g.dir, MASTER_KEY_FILE)}`,
    );
  }
  const { previous } = loadMasterKey({ masterKey: found.key.exportText() });
  return { ...found, previous };
}

/** The master key, or a clear error. */
export function requireMasterKey(g: GlobalOptions): MasterKey {
  return requireMasterKeys(g).key;
}

/** Reads the rotation policy file given with `--policy`. */
export function readPolicy(g: GlobalOptions): RotationPolicyInput | undefined {
  if (!g.policy) return undefined;
  try {
    return JSON.parse(readFileSync(g.policy, 'utf8')) as RotationPolicyInput;
  } catch {
    throw new CliError('invalid_argument', `--policy ${g.policy} is not a readable JSON file`, EXIT.usage);
  }
}

/** Options of {@link withKeyward}. */
export interface WithKeywardOptions {
  /** Append this command's audit events to `<dir>/audit.jsonl`. Read-only commands leave it off. */
  audit?: boolean;
  /** Create the store and keyring when absent (`init` only). */
  bootstrap?: boolean;
  /** Master keys to run with instead of {@link requireMasterKeys} (`rekey`: the new key, the current one as previous). */
  keys?: Pick<MasterKeys, 'key' | 'previous'>;
}

/**
 * Runs `fn` with a keyward instance on an existing keyring and closes it afterwards. Checks the
 * keyring exists and was sealed by this master key (or one of `KEYWARD_MASTER_KEY_PREVIOUS`)
 * before anything else happens.
 */
export async function withKeyward<T>(
  g: GlobalOptions,
  options: WithKeywardOptions,
  fn: (kw: Keyward, master: MasterKey) => Promise<T>,
): Promise<T> {
  const { key: master, previous } = options.keys ?? requireMasterKeys(g);
  const store = openStore(g, options.bootstrap === true);
  try {
    if (!options.bootstrap) await requireKeyring(g, store, [master, ...previous]);
    const { signingAlg, ...rotation } = readPolicy(g) ?? {};
    if (options.audit) mkdirSync(g.dir, { recursive: true, mode: 0o700 });
    const kwOptions: KeywardServiceOptions = {
      store,
      masterKey: master.exportText(),
      previousMasterKeys: previous.map((k) => k.exportText()),
      dir: resolve(g.dir),
      logger: false,
      rotation,
      ...(signingAlg ? { signingAlg } : {}),
      audit: options.audit ? { sinks: [jsonlFileSink(auditFile(g))] } : false,
      // The CLI lives for one command; the poll timer must not keep it alive.
      syncIntervalMs: 60_000,
      // A one-shot command is no instance of the app: it never registers in `instances/`.
      instanceHeartbeatMs: false,
      // A data-key revocation's rewrap runs on the app's instances, never in a one-shot command.
      dataKeyRewrap: { background: false },
    };
    const kw = await createKeyward(kwOptions);
    try {
      return await fn(kw, master);
    } finally {
      await kw.close();
    }
  } finally {
    await store.close();
  }
}

/** Throws unless a keyring sealed by `master` (or one of a list of keys) exists in `store`. */
export async function requireKeyring(
  g: GlobalOptions,
  store: Store,
  master: MasterKey | readonly MasterKey[],
): Promise<void> {
  const doc = await new KeyringRepository(store, master).read();
  if (!doc) {
    throw new CliError('keyring_missing', `no keyring in ${describeStore(g)}: run \`keyward init\` first`);
  }
}
