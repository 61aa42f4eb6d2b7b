/**
 * One benchmark server: the framework and auth variant named by `KEYWARD_BENCH_SPEC`, listening on a
 * free loopback port, which it announces as `READY <port>` on stdout. Started by run.ts under
 * `taskset -c 1`; stops on SIGTERM.
 */
import { createKeyward, type Keyward } from '@keyward/core';
import { keywardOptions, type ServerSpec } from './spec.js';

/** What each framework module exports: start the app, return its port and a closer. */
export interface StartedServer {
  port: number;
  close(): Promise<void>;
}
export type StartServer = (spec: ServerSpec, kw: Keyward | undefined) => Promise<StartedServer>;

const raw = process.env.KEYWARD_BENCH_SPEC;
if (!raw) throw new Error('KEYWARD_BENCH_SPEC is not set: start this file through run.ts');
const spec = JSON.parse(raw) as ServerSpec;

const kw =
  spec.variant === 'keyward' || spec.variant === 'keyward-nocache'
    ? await createKeyward(
        keywardOptions(spec.keyring, spec.variant === 'keyward-nocache' ? { verifyCache: false } : {}),
      )
    : undefined;

const modules: Record<ServerSpec['framework'], () => Promise<{ start: StartServer }>> = {
  express: () => import('./frameworks/express.js'),
  fastify: () => import('./frameworks/fastify.js'),
  hono: () => import('./frameworks/hono.js'),
  'nest-express': () => import('./frameworks/nestjs.js'),
  'nest-fastify': () => import('./frameworks/nestjs.js'),
};
const { start } = await modules[spec.framework]();
const server = await start(spec, kw);
process.stdout.write(`READY ${server.port}\n`);

process.once('SIGTERM', () => {
  void (async () => {
    await server.close();
    await kw?.close();
    process.exit(0);
  })();
});
