import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeWithPostgres, postgresTestUrl } from '../../testing/src/postgres.js';
import { buildOnce, keyward, tempDir } from './cli.js';
import { describeKeyCommands, type StoreTarget } from './key-commands.js';

// `pg` is a dependency of @keyward/core, not of the CLI: load it from there.
interface PgClient {
  connect(): Promise<void>;
  query(sql: string): Promise<unknown>;
  end(): Promise<void>;
}
const pg = createRequire(join(import.meta.dirname, '..', '..', 'core', 'package.json'))('pg') as {
  Client: new (config: { connectionString: string | undefined }) => PgClient;
};

/** Runs one statement on the server's maintenance database. */
async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresTestUrl() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A fresh database per target: the CLI uses the default tables (`public.keyward*`). */
async function onPostgres(): Promise<StoreTarget> {
  const name = `kwcli_${randomBytes(4).toString('hex')}`;
  await admin(`CREATE DATABASE "${name}"`);
  const url = new URL(postgresTestUrl()!);
  url.pathname = `/${name}`;
  const { dir, cleanup } = tempDir();
  return {
    args: ['--dir', dir, '--database', url.toString()],
    dir,
    keywardOptions: { dir, databaseUrl: url.toString() },
    async cleanup() {
      await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      cleanup();
    },
  };
}

describeWithPostgres('postgres', () => {
  describeKeyCommands('postgres', onPostgres);

  it('an unreachable PostgreSQL is store_unavailable in one line, without the URL', async () => {
    await buildOnce();
    const { dir, cleanup } = tempDir();
    try {
      const key = (await keyward(['fernet', 'generate-key'])).stdout.trim();
      const result = await keyward(
        ['--dir', dir, '--database', 'postgres://kw:hunter2@127.0.0.1:1/db', 'keys', 'list'],
        { env: { KEYWARD_MASTER_KEY: key } },
      );
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain('[store_unavailable]');
      expect(result.stderr).not.toContain('hunter2');
    } finally {
      cleanup();
    }
  });
});
