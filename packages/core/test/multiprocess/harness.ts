/**
 * Spawns app processes (app.ts) for the multi-process tests and the sync benchmark, and talks to
 * them over JSON lines.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const APP = fileURLToPath(new URL('./app.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** A line an app printed on its own (not a reply). */
export interface AppEvent {
  event: string;
  [field: string]: unknown;
}

/** A running app process. */
export interface App {
  readonly child: ChildProcess;
  readonly events: AppEvent[];
  /** Sends one request; resolves the result, rejects with an error carrying the KeywardError `code`. */
  call<T = unknown>(op: string, args?: Record<string, unknown>): Promise<T>;
  /** Resolves the first event (already seen or future) matching `match`. */
  waitEvent(match: (e: AppEvent) => boolean, timeoutMs?: number): Promise<AppEvent>;
  /** Kills the process with SIGKILL and waits for its exit. */
  kill(): Promise<void>;
  /** Asks the app to close cleanly (or kills it after 5 s). */
  close(): Promise<void>;
}

/** Error of a failed request, with the KeywardError code the app reported. */
export class AppError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Starts one app process with `env` (REDIS_URL, KW_PREFIX, KW_MASTER…) and waits until it is ready.
 * `app` is the script to run: app.ts by default, or another JSON-line app such as datakey-app.ts.
 */
export async function startApp(env: Record<string, string>, app: string = APP): Promise<App> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@keyward/source', app], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const events: AppEvent[] = [];
  const waiters = new Set<{ match: (e: AppEvent) => boolean; resolve: (e: AppEvent) => void }>();
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => {
    for (const p of pending.values()) p.reject(new AppError('exited', 'app process exited'));
    pending.clear();
  });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let msg: { id?: number; ok?: boolean; result?: unknown; code?: string; message?: string } & AppEvent;
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    if (typeof msg.id === 'number') {
      const p = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.ok) p?.resolve(msg.result);
      else p?.reject(new AppError(msg.code ?? 'unknown', msg.message ?? ''));
      return;
    }
    events.push(msg);
    for (const w of [...waiters])
      if (w.match(msg)) {
        waiters.delete(w);
        w.resolve(msg);
      }
  });
  const handle: App = {
    child,
    events,
    call<T>(op: string, args: Record<string, unknown> = {}) {
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        child.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
      });
    },
    waitEvent(match, timeoutMs = 20_000) {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { match, resolve };
        waiters.add(w);
        setTimeout(() => {
          if (waiters.delete(w)) reject(new Error('timed out waiting for an app event'));
        }, timeoutMs).unref();
      });
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await handle.call('close').catch(() => undefined);
      await exited;
      clearTimeout(timer);
    },
  };
  await handle.waitEvent((e) => e.event === 'ready', 90_000);
  return handle;
}

/** What an app process that was expected to stop on its own printed. */
export interface AppExit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Starts one app process that is expected not to become ready (a refused start-up) and resolves
 * its exit code and output. Rejects if it reports `ready` instead (then it is killed).
 */
export function runAppToExit(env: Record<string, string>): Promise<AppExit> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@keyward/source', APP], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      stdout += d;
      if (stdout.includes('"event":"ready"')) {
        child.kill('SIGKILL');
        reject(new Error('the app started although it was expected to refuse'));
      }
    });
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Calls `probe` until it resolves `true`, or rejects after `timeoutMs`. For waiting on other
 * processes, which no injected clock can speed up; `intervalMs` only paces the probing.
 */
export async function eventually(
  probe: () => Promise<boolean>,
  timeoutMs = 10_000,
  intervalMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Resolves the KeywardError code a call failed with, or `undefined` when it succeeded. */
export async function codeOf(call: Promise<unknown>): Promise<string | undefined> {
  try {
    await call;
    return undefined;
  } catch (err) {
    return err instanceof AppError ? err.code : String(err);
  }
}
