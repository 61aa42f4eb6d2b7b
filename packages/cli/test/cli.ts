import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const coreDir = join(packageDir, '..', 'core');
const bin = join(packageDir, 'dist', 'bin.js');
const stamp = join(packageDir, 'dist', '.build-stamp');
const lock = join(tmpdir(), 'keyward-cli-build.lock');

/** tsc prints core's type errors too while other work is in flight there; only ours fail the build. */
function tsc(cwd: string, mustPass: (line: string) => boolean): void {
  const result = spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd, encoding: 'utf8' });
  const errors = `${result.stdout}${result.stderr}`
    .split('\n')
    .filter((line) => line.includes('error TS') && mustPass(line));
  if (errors.length > 0) throw new Error(`build failed in ${cwd}:\n${errors.join('\n')}`);
}

/**
 * Builds core and the CLI once per vitest run (test files run in parallel forks: a lock directory
 * makes one build and the others wait for its stamp).
 */
export async function buildOnce(): Promise<void> {
  const runId = String(process.ppid);
  const built = () => existsSync(stamp) && readFileSync(stamp, 'utf8') === runId;
  while (!built()) {
    try {
      mkdirSync(lock);
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 200));
      continue;
    }
    try {
      if (built()) break;
      tsc(coreDir, () => false);
      if (!existsSync(join(coreDir, 'dist', 'index.js'))) throw new Error('core did not build');
      tsc(packageDir, (line) => line.startsWith('src/'));
      writeFileSync(stamp, runId);
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }
}

/** What a run of the binary produced. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link keyward}. */
export interface RunOptions {
  env?: Record<string, string | undefined>;
  input?: string | Buffer;
  cwd?: string;
}

/** Runs the built `keyward` binary with a clean environment (no inherited REDIS_URL, DATABASE_URL, master key or JWT_SECRET). */
export function keyward(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  const {
    REDIS_URL: _r,
    DATABASE_URL: _p,
    KEYWARD_MASTER_KEY: _m,
    JWT_SECRET: _j,
    KEYWARD_DIR: _d,
    ...base
  } = process.env;
  const env = { ...base, ...options.env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { env, cwd: options.cwd ?? tmpdir() });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

/** A fresh temp folder, removed by the returned cleanup. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'keyward-cli-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
