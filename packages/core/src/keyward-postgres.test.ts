import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithPostgres, postgresTestUrl } from '../../testing/src/postgres.js';
import { MasterKey } from './keys/master-key.js';
import { createKeyward } from './keyward.js';
import { keywardOptionsFromEnv } from './options.js';

const url = postgresTestUrl() ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const database = `kwtest_${randomBytes(4).toString('hex')}`;
const admin = new pg.Pool({ connectionString: url, max: 1 });
const databaseUrl = (() => {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
})();

it('keywardOptionsFromEnv reads DATABASE_URL', () => {
  expect(keywardOptionsFromEnv({ DATABASE_URL: 'postgres://h/db' }).databaseUrl).toBe('postgres://h/db');
  expect(keywardOptionsFromEnv({}).databaseUrl).toBeUndefined();
});

it('with both REDIS_URL and DATABASE_URL, Redis wins and a warning says DATABASE_URL is ignored', async () => {
  const warnings: string[] = [];
  const logger = { info() {}, error() {}, warn: (m: object | string) => warnings.push(String(m)) };
  const env = {
    REDIS_URL: 'redis://127.0.0.1:1', // nothing listens: start-up fails on the Redis store
    DATABASE_URL: 'postgres://kw:hunter2@127.0.0.1:1/db',
    KEYWARD_DIR: mkdtempSync(join(tmpdir(), 'keyward-both-')),
  };
  const err = await createKeyward({
    ...keywardOptionsFromEnv(env),
    masterKey: MasterKey.generate().exportText(),
    logger,
    audit: false,
  }).catch((e: unknown) => e);
  expect(err).toMatchObject({ code: 'store_unavailable', details: { driver: 'redis' } });
  expect(warnings.filter((w) => w.includes('ignores DATABASE_URL'))).toHaveLength(1);
  expect(warnings.join('\n')).not.toContain('hunter2');
});

describeWithPostgres('createKeyward with DATABASE_URL', () => {
  beforeAll(async () => {
    await admin.query(`CREATE DATABASE "${database}"`);
  });
  afterAll(async () => {
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
    await admin.end();
  });

  it('keeps the keyring in PostgreSQL, and a second instance opens the same keyring', async () => {
    const env = { DATABASE_URL: databaseUrl, KEYWARD_DIR: mkdtempSync(join(tmpdir(), 'keyward-pg-')) };
    const masterKey = MasterKey.generate().exportText();
    const kw = await createKeyward({ ...keywardOptionsFromEnv(env), masterKey, logger: false, audit: false });
    expect(kw.store.driver).toBe('postgres');
    const { access_token } = await kw.tokens.issue({ sub: 'user_1', scopes: ['read'] });
    const other = await createKeyward({
      ...keywardOptionsFromEnv(env),
      masterKey,
      logger: false,
      audit: false,
    });
    expect(other.jwt.verify(access_token).payload.sub).toBe('user_1');
    await Promise.all([kw.close(), other.close()]);
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM public.keyward');
    await db.end();
    expect(Number(rows[0]?.n)).toBeGreaterThan(0);
  });
});
