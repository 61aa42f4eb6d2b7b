/** Starting and stopping server processes, pinned to core 1 with `taskset`. */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ServerSpec } from './spec.js';

const here = fileURLToPath(new URL('.', import.meta.url));
export const HAS_TASKSET = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

export interface RunningServer {
  port: number;
  /** The server's process id (taskset and valgrind exec into it). */
  pid: number | undefined;
  /** The process's CPU time so far (user + system, all threads) in seconds, or undefined off Linux. */
  cpuSeconds(): number | undefined;
  stop(): Promise<void>;
}

/**
 * CPU time of every thread of `pid` in seconds: the first field of each thread's `schedstat` under `/proc/<pid>/task`
 * (nanoseconds; `/proc/<pid>/stat` counts 10 ms ticks, too coarse for one-second pieces).
 */
function cpuSecondsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    let ns = 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // The thread ended between the listing and the read: its time is gone with it.
      }
    }
    return ns / 1e9;
  } catch {
    return undefined;
  }
}

/**
 * Starts a server process for `spec`; `nodeArgs` go to its `node` (e.g. `--cpu-prof`), and `launcher`
 * runs it (e.g. `valgrind --tool=callgrind`, which keeps the process's pid).
 */
export async function startServer(
  spec: ServerSpec,
  timeoutMs = 60_000,
  nodeArgs: readonly string[] = [],
  launcher: readonly string[] = [],
): Promise<RunningServer> {
  const node = [
    ...launcher,
    process.execPath,
    ...nodeArgs,
    '--conditions=@keyward/source',
    '--import',
    'tsx',
    `${here}server.ts`,
  ];
  const [cmd, ...args] = HAS_TASKSET ? ['taskset', '-c', '1', ...node] : node;
  const child = spawn(cmd ?? process.execPath, args, {
    cwd: here,
    env: { ...process.env, KEYWARD_BENCH_SPEC: JSON.stringify(spec) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const port = await new Promise<number>((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => fail(new Error('no READY line in time')), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${spec.framework}/${spec.variant}/${spec.alg}: ${err.message}\n${stderr}`));
    };
    child.once('exit', (code) => fail(new Error(`server exited with ${code}`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /READY (\d+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve(Number(match[1]));
      }
    });
  });
  // taskset execs node, so the child's pid is the server's.
  return { port, pid: child.pid, cpuSeconds: () => cpuSecondsOf(child.pid), stop: () => stop(child) };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}
