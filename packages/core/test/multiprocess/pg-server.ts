/**
 * A throwaway PostgreSQL server for the tests that stop and restart one (failover): initdb into a
 * temporary folder and pg_ctl, as the `postgres` user when running as root (PostgreSQL refuses root).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether `initdb` and `pg_ctl` are on the PATH (CI puts Debian's binaries there). */
export function hasPostgresServer(): boolean {
  const found = spawnSync('initdb', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!found && process.env.KEYWARD_REQUIRE_TOOLS === '1') {
    throw new Error('KEYWARD_REQUIRE_TOOLS=1 but initdb (PostgreSQL) is not available');
  }
  return found;
}

function asPostgres(command: string): void {
  const root = process.getuid?.() === 0;
  const result = root
    ? spawnSync('su', ['postgres', '-s', '/bin/sh', '-c', `PATH='${process.env.PATH}' ${command}`], {
        encoding: 'utf8',
      })
    : spawnSync('sh', ['-c', command], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr}`);
}

/** A stopped-and-started-at-will PostgreSQL server on one loopback port. */
export interface PgServer {
  readonly url: string;
  start(): void;
  /** `pg_ctl stop -m immediate`: like a crash, no clean shutdown of the sessions. */
  crash(): void;
  /** Stops the server (if running) and deletes its files. */
  destroy(): void;
}

/** Creates (initdb) a server for `port`; call `start()` to run it. */
export function createPgServer(port: number): PgServer {
  const dir = mkdtempSync(join(tmpdir(), 'kw-pg-'));
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  asPostgres(`initdb -D '${data}' -A trust -U postgres >/dev/null`);
  let running = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start() {
      asPostgres(
        `pg_ctl -D '${data}' -l '${dir}/log' -w -o "-p ${port} -k '${dir}' -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null`,
      );
      running = true;
    },
    crash() {
      asPostgres(`pg_ctl -D '${data}' -m immediate -w stop >/dev/null`);
      running = false;
    },
    destroy() {
      if (running) this.crash();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
