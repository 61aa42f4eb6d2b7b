import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';

/** The Python interpreter interop tests run (`KEYWARD_PYTHON`, default `python3`). */
export const python = process.env.KEYWARD_PYTHON || 'python3';

/** The Chromium the console's browser test drives (`KEYWARD_CHROMIUM`, default Debian's `/usr/bin/chromium`). */
export const chromium = process.env.KEYWARD_CHROMIUM || '/usr/bin/chromium';

const probes = {
  chromium: () => existsSync(chromium),
  'redis-server': () => spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0,
  'redis-cli': () => spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).status === 0,
  'python-cryptography': () =>
    spawnSync(python, ['-c', 'import cryptography.fernet'], { stdio: 'ignore' }).status === 0,
};

/**
 * Whether an external tool some tests need is on this machine (`redis-server`, or Python with
 * `cryptography` for the live Fernet interop tests, `redis-cli` for the Cluster and Sentinel tests,
 * `chromium` for the console's browser test). Without it those tests are skipped, except
 * under `KEYWARD_REQUIRE_TOOLS=1` (set by CI), where a missing tool fails the run instead.
 *
 * @example
 * ```ts
 * it.runIf(hasTool('python-cryptography'))('Python decrypts our tokens', () => { … })
 * ```
 */
export function hasTool(tool: keyof typeof probes): boolean {
  const found = probes[tool]();
  if (!found && process.env.KEYWARD_REQUIRE_TOOLS === '1') {
    throw new Error(`KEYWARD_REQUIRE_TOOLS=1 but ${tool} is not available`);
  }
  return found;
}

/**
 * A TCP port free on loopback right now (for a throwaway `redis-server` or app process).
 *
 * @example
 * ```ts
 * const port = await freePort()
 * spawn('redis-server', ['--port', String(port)])
 * ```
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
