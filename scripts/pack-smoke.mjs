#!/usr/bin/env node
// Packaging smoke test: the packages as a user installs them from the registry.
//
// 1. Builds every published package (packages/*/package.json without "private") and packs it
//    with `pnpm pack` (workspace:* becomes the version, publishConfig applies) into a temp dir;
//    checks each tarball's files (no sources, tests, fixtures, type tests, source maps) and runs
//    publint and attw (profile esm-only: the packages are ESM, CommonJS apps require() them on
//    Node >= 20.19) on it.
// 2. Creates two plain npm projects outside the workspace, one with every peer dependency at the
//    LOW end of its range (the range's lowest version) and one at the HIGH end (the newest
//    version of its highest major), and `npm install`s the tarballs plus the frameworks there.
// 3. In each project: an ESM and a CommonJS consumer run one authenticated request through every
//    adapter it knows on a real listening server (login, GET /me with the token: 200, without:
//    401); a TypeScript consumer is compiled with skipLibCheck: false against the public types of
//    every package (nodenext and bundler resolution, plus a CommonJS .cts file); `npx keyward
//    --help` runs the installed CLI.
//
// Exits non-zero with a message naming the failed step. Network: the npm registry only (npm
// install --prefer-offline). Install scripts are skipped (--ignore-scripts): better-sqlite3's
// would fetch a prebuilt binary from GitHub or compile one; the consumers use the memory store
// and better-sqlite3 loads its native part only when a SQLite database is opened.
// Options: --keep keeps the temp dir; --end=low or --end=high runs one end only.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'node_modules', '.bin');
const TSC = join(BIN, 'tsc');
const started = Date.now();

class SmokeFailure extends Error {}

function fail(message) {
  throw new SmokeFailure(message);
}

function log(message) {
  const seconds = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  console.log(`[pack-smoke ${seconds}s] ${message}`);
}

/** Runs a command; fails the smoke test with its output when it exits non-zero. */
function run(step, command, args, options = {}) {
  const result = spawnSync(command, args, {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 300_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
  if (result.error) fail(`${step}: ${command} ${args.join(' ')}: ${result.error.message}\n${output}`);
  if (result.status !== 0) {
    fail(
      `${step}: \`${command} ${args.join(' ')}\` exited with ${result.status ?? result.signal}\n${output}`,
    );
  }
  return output;
}

function readJson(file) {
  return JSON.parse(readFileSync(file, 'utf8'));
}

// ---------------------------------------------------------------------------------------------
// Published packages
// ---------------------------------------------------------------------------------------------

function publishedPackages() {
  const dir = join(ROOT, 'packages');
  const found = [];
  for (const entry of readdirSync(dir).sort()) {
    const file = join(dir, entry, 'package.json');
    if (!existsSync(file)) continue;
    const manifest = readJson(file);
    if (manifest.private) continue;
    found.push({ dir: join(dir, entry), manifest, name: manifest.name });
  }
  if (found.length === 0) fail('no published package found under packages/');
  return found;
}

/** The file names in a .tgz (ustar headers; enough for npm tarballs). */
function tarEntries(file) {
  const data = gunzipSync(readFileSync(file));
  const names = [];
  let offset = 0;
  while (offset + 512 <= data.length) {
    const header = data.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start, length) =>
      header
        .subarray(start, start + length)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    const name = field(0, 100);
    const prefix = field(345, 155);
    const size = Number.parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1);
    if (type === '0' || type === '' || type === '7') names.push(prefix ? `${prefix}/${name}` : name);
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return names;
}

const FORBIDDEN_FILES = [
  [/\.test\.[cm]?[jt]sx?$/, 'a test'],
  [/\.test-d\.[cm]?[jt]sx?$/, 'a type test'],
  [/\.test-d\.d\.[cm]?ts$/, 'a type test'],
  [/(^|\/)__fixtures__\//, 'a fixture'],
  [/(^|\/)(test|tests)\//, 'a test'],
  [/\.map$/, 'a source map'],
  [/^package\/src\//, 'a source file'],
  [/\.tsbuildinfo$/, 'build state'],
];

function checkTarball(pkg, tarball) {
  const files = tarEntries(tarball);
  for (const name of files) {
    for (const [pattern, what] of FORBIDDEN_FILES) {
      if (pattern.test(name)) fail(`${pkg.name}: the tarball ships ${what}: ${name}`);
    }
    if (/\.[cm]?js$/.test(name)) {
      // No sourceMappingURL to a map the tarball does not hold.
      const dir = mkdtempSync(join(tmpdir(), 'kw-tar-'));
      try {
        run(`unpack ${pkg.name}`, 'tar', ['xzf', tarball, '-C', dir, name]);
        const text = readFileSync(join(dir, name), 'utf8');
        const map = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(text)?.[1];
        if (map && !map.startsWith('data:')) {
          const target = join(dirname(name), map).replace(/\\/g, '/');
          if (!files.includes(target)) fail(`${pkg.name}: ${name} points at a missing source map ${map}`);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const manifest = JSON.parse(
    run(`read ${pkg.name}`, 'tar', ['xzOf', tarball, 'package/package.json'], { timeoutMs: 30_000 }),
  );
  const text = JSON.stringify(manifest);
  if (text.includes('workspace:')) fail(`${pkg.name}: the packed package.json still has a workspace: range`);
  if (text.includes('@keyward/source'))
    fail(`${pkg.name}: the packed exports still list the @keyward/source condition`);
  return { files: files.length, manifest };
}

// ---------------------------------------------------------------------------------------------
// Peer ranges: LOW end (the lowest version of the range) and HIGH end (the highest major, newest)
// ---------------------------------------------------------------------------------------------

/** `^4.21.0 || ^5.0.0` → [{ base: [4, 21, 0], spec: '^4.21.0' }, …]; only caret / exact ranges. */
function parseRange(name, range) {
  return range.split('||').map((part) => {
    const spec = part.trim();
    const match = /^\^?(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(spec);
    if (!match) fail(`peer range of ${name} "${range}": the smoke test reads only ^x.y.z alternatives`);
    return { base: [Number(match[1]), Number(match[2] ?? 0), Number(match[3] ?? 0)], spec };
  });
}

function compareVersions(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

function peerEnds(packages) {
  const ranges = new Map();
  for (const pkg of packages) {
    for (const [name, range] of Object.entries(pkg.manifest.peerDependencies ?? {})) {
      const seen = ranges.get(name);
      if (seen && seen.range !== range) {
        fail(`peer ${name}: ${seen.by} asks for "${seen.range}", ${pkg.name} for "${range}"; keep one range`);
      }
      ranges.set(name, { range, by: pkg.name });
    }
  }
  const ends = { low: {}, high: {} };
  for (const [name, { range }] of ranges) {
    const alternatives = parseRange(name, range).sort((a, b) => compareVersions(a.base, b.base));
    const lowest = alternatives[0];
    const highest = alternatives[alternatives.length - 1];
    if (!lowest || !highest) fail(`peer ${name}: empty range`);
    ends.low[name] = lowest.base.join('.');
    ends.high[name] = highest.spec;
  }
  return ends;
}

/**
 * What the consumers need beside the peers, per end: the Node server of Hono (2.x needs a recent
 * Hono 4; an app on an older Hono runs 1.x), Nest's Express platform (same version as
 * @nestjs/core) and Nest's own peers (reflect-metadata, rxjs: @keyward/nestjs imports neither),
 * Node's types.
 */
function companions(end, peers) {
  const extra = { '@types/node': '^20.19.0' };
  if ('hono' in peers) extra['@hono/node-server'] = end === 'low' ? '^1.19.0' : '^2.0.0';
  if ('@nestjs/core' in peers) {
    extra['@nestjs/platform-express'] = peers['@nestjs/core'];
    // Its x.0.0 releases name the previous major as peer: the newest of the same major.
    extra['@nestjs/platform-fastify'] = `^${peers['@nestjs/core'].replace(/^\^/, '').split('.')[0]}.0.0`;
    extra['reflect-metadata'] = '^0.2.0';
    extra.rxjs = '^7.8.0';
  }
  return extra;
}

// ---------------------------------------------------------------------------------------------
// Consumers
// ---------------------------------------------------------------------------------------------

/** The runtime consumer's body; `load(name)` is `import()` (ESM) or `require()` (CommonJS). */
const CONSUMER_BODY = String.raw`
const { randomBytes } = await load('node:crypto');
const published = JSON.parse(process.argv[2]);
const entries = JSON.parse(process.argv[3]);
const core = await load('@keyward/core');
const http = await load('@keyward/core/http');
const masterKey = randomBytes(32).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
const users = http.staticUsers('alice:alice-password:read');

async function newKeyward() {
  return core.createKeyward({ store: core.createMemoryStore(), masterKey, issuer: 'http://smoke.test', logger: false, audit: false });
}

async function listen(server) {
  await new Promise((resolve, reject) => {
    if (server.listening) resolve();
    else server.once('listening', resolve).once('error', reject);
  });
  return 'http://127.0.0.1:' + server.address().port;
}

async function nest(kw, adapter) {
  await load('reflect-metadata');
  const { KeywardExceptionFilter, KeywardGuard, KeywardModule } = await load('@keyward/nestjs');
  const { Module } = await load('@nestjs/common');
  const { APP_FILTER, APP_GUARD, NestFactory } = await load('@nestjs/core');
  class AppModule {}
  Module({
    imports: [KeywardModule.forRoot({ keyward: kw, users, routes: true })],
    providers: [
      { provide: APP_GUARD, useClass: KeywardGuard },
      { provide: APP_FILTER, useClass: KeywardExceptionFilter },
    ],
  })(AppModule);
  const app = adapter
    ? await NestFactory.create(AppModule, adapter, { logger: false })
    : await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  return { url: await listen(app.getHttpServer()), guarded: ['/me'], close: () => app.close() };
}

/** How to drive each adapter package: name, or name + ' on …' for a further set-up of it. */
const drivers = {
  async '@keyward/express'(kw) {
    const { keyward } = await load('@keyward/express');
    const expressModule = await load('express');
    const express = expressModule.default ?? expressModule;
    const auth = keyward(kw);
    const app = express();
    app.use(auth.router({ users }));
    app.get('/orders', auth.requireScopes('read'), (req, res) => res.json({ owner: req.auth.sub }));
    app.use(auth.errorHandler());
    const server = app.listen(0, '127.0.0.1');
    return { url: await listen(server), guarded: ['/me', '/orders'], close: () => new Promise((r) => server.close(r)) };
  },
  async '@keyward/fastify'(kw) {
    const { keyward, keywardRoutes } = await load('@keyward/fastify');
    const fastifyModule = await load('fastify');
    const Fastify = fastifyModule.default ?? fastifyModule;
    const app = Fastify();
    await app.register(keyward, { keyward: kw });
    await app.register(keywardRoutes, { users });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    return { url, guarded: ['/me'], close: () => app.close() };
  },
  async '@keyward/hono'(kw) {
    const { keywardAuth, keywardRoutes, requireScopes } = await load('@keyward/hono');
    const { Hono } = await load('hono');
    const { serve } = await load('@hono/node-server');
    const app = new Hono();
    app.route('/', keywardRoutes(kw, { users }));
    app.get('/orders', keywardAuth(kw), requireScopes('read'), (c) => c.json({ owner: c.get('auth').sub }));
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
    return { url: await listen(server), guarded: ['/me', '/orders'], close: () => new Promise((r) => server.close(r)) };
  },
  async '@keyward/nestjs'(kw) {
    return nest(kw, undefined);
  },
  async '@keyward/nestjs on the Fastify platform'(kw) {
    const { FastifyAdapter } = await load('@nestjs/platform-fastify');
    return nest(kw, new FastifyAdapter());
  },
};

async function expectStatus(what, response, status) {
  if (response.status !== status) {
    throw new Error(what + ': expected ' + status + ', got ' + response.status + ' ' + (await response.text()).slice(0, 300));
  }
}

const runs = [];
for (const name of published) {
  const own = Object.keys(drivers).filter((label) => label === name || label.startsWith(name + ' on '));
  if (own.length === 0) {
    // A package this consumer cannot drive (core is driven through every adapter): it must still
    // load, unless it has no entry point (the CLI: a bin only).
    if (entries.includes(name)) {
      await load(name);
      console.log(name + ': loaded');
    } else console.log(name + ': no entry point to load');
    continue;
  }
  runs.push(...own);
}
for (const name of runs) {
  const kw = await newKeyward();
  const app = await drivers[name](kw);
  try {
    const login = await fetch(app.url + '/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice', password: 'alice-password' }),
    });
    await expectStatus(name + ' POST /auth/login', login, 200);
    const { access_token } = await login.json();
    if (typeof access_token !== 'string') throw new Error(name + ': login answered no access_token');
    const signed = await kw.tokens.issue({ sub: 'bob', scopes: ['read'] });
    for (const path of app.guarded) {
      for (const [who, token] of [['alice', access_token], ['bob', signed.access_token]]) {
        const ok = await fetch(app.url + path, { headers: { authorization: 'Bearer ' + token } });
        await expectStatus(name + ' GET ' + path + ' with a token', ok, 200);
        const body = await ok.json();
        const sub = body.sub ?? body.owner;
        if (sub !== who) throw new Error(name + ' GET ' + path + ': answered ' + JSON.stringify(body) + ', not ' + who);
      }
      const denied = await fetch(app.url + path);
      await expectStatus(name + ' GET ' + path + ' without a token', denied, 401);
    }
    console.log(name + ': login 200, ' + app.guarded.join(' ') + ' 200 with a token, 401 without');
  } finally {
    await app.close();
    await kw.close();
  }
}
`;

const ESM_CONSUMER = `// ESM consumer (generated by scripts/pack-smoke.mjs)
const load = (name) => import(name);
${CONSUMER_BODY}`;

const CJS_CONSUMER = `// CommonJS consumer (generated by scripts/pack-smoke.mjs): require() of the ESM packages.
const load = async (name) => require(name);
(async () => {
${CONSUMER_BODY}
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
`;

/** The TypeScript consumer: every public entry point, and typed use of the packages it knows. */
function typescriptConsumer(packages) {
  const lines = ['// TypeScript consumer (generated by scripts/pack-smoke.mjs)'];
  let i = 0;
  for (const pkg of packages) {
    for (const [subpath, target] of Object.entries(pkg.manifest.exports ?? {})) {
      if (subpath.endsWith('.json') || typeof target === 'string') continue;
      const specifier = subpath === '.' ? pkg.name : `${pkg.name}/${subpath.replace(/^\.\//, '')}`;
      lines.push(
        `import * as entry${i} from '${specifier}';`,
        `export const keys${i} = Object.keys(entry${i});`,
      );
      i++;
    }
  }
  const names = new Set(packages.map((p) => p.name));
  lines.push(
    `import { createKeyward, createMemoryStore, createSqliteStore, createPostgresStore, type Keyward, type KeywardErrorCode } from '@keyward/core';`,
    `import { staticUsers } from '@keyward/core/http';`,
    `export const users = staticUsers('alice:alice-password:read');`,
    `export async function start(): Promise<Keyward> { return createKeyward({ store: createMemoryStore() }); }`,
    `export const sqlite = () => createSqliteStore({ path: ':memory:' });`,
    `export const postgres = () => createPostgresStore({ connectionString: 'postgres://localhost/db' });`,
    `export type ErrorCode = KeywardErrorCode;`,
  );
  if (names.has('@keyward/express')) {
    lines.push(
      `import { keyward as expressKeyward } from '@keyward/express';`,
      `import express from 'express';`,
      `export function expressApp(kw: Keyward) { const auth = expressKeyward(kw); const app = express(); app.use(auth.router({ users })); app.get('/o', auth.requireScopes('read'), (req, res) => { res.json({ owner: req.auth?.sub }); }); return app; }`,
    );
  }
  if (names.has('@keyward/fastify')) {
    lines.push(
      `import { keyward as fastifyKeyward, keywardRoutes as fastifyRoutes } from '@keyward/fastify';`,
      `import Fastify from 'fastify';`,
      `export async function fastifyApp(kw: Keyward) { const app = Fastify(); await app.register(fastifyKeyward, { keyward: kw }); await app.register(fastifyRoutes, { users }); return app; }`,
    );
  }
  if (names.has('@keyward/hono')) {
    lines.push(
      `import { type KeywardEnv, keywardAuth, keywardRoutes as honoRoutes } from '@keyward/hono';`,
      `import { Hono } from 'hono';`,
      `export function honoApp(kw: Keyward) { const app = new Hono<KeywardEnv>(); app.route('/', honoRoutes(kw, { users })); app.get('/o', keywardAuth(kw), (c) => c.json({ owner: c.get('auth').sub })); return app; }`,
    );
  }
  if (names.has('@keyward/nestjs')) {
    lines.push(
      `import { KeywardGuard, KeywardModule } from '@keyward/nestjs';`,
      `export const nestModule = (kw: Keyward) => KeywardModule.forRoot({ keyward: kw, users, routes: true });`,
      `export const nestGuard: typeof KeywardGuard = KeywardGuard;`,
    );
  }
  return `${lines.join('\n')}\n`;
}

const CTS_CONSUMER = `// CommonJS TypeScript consumer (generated by scripts/pack-smoke.mjs): require() of ESM types.
import { createKeyward, createMemoryStore } from '@keyward/core';
export const start = () => createKeyward({ store: createMemoryStore() });
`;

/**
 * At the HIGH end the consumer compiles without the DOM library (a Node app); at the LOW end with
 * it, since older Hono 4 releases name DOM's `RequestInfo` in their own types.
 */
function tsconfig(end, resolution, include) {
  const module = resolution === 'bundler' ? 'esnext' : 'nodenext';
  return {
    compilerOptions: {
      target: 'ES2023',
      lib: end === 'low' ? ['ES2023', 'DOM'] : ['ES2023'],
      module,
      moduleResolution: resolution,
      types: ['node'],
      strict: true,
      skipLibCheck: false,
      noEmit: true,
      esModuleInterop: true,
    },
    include,
  };
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

function buildAndPack(packages, work) {
  log(`building ${packages.map((p) => p.name).join(', ')}`);
  for (const pkg of packages) rmSync(join(pkg.dir, 'dist'), { recursive: true, force: true });
  run('build', join(BIN, 'pnpm'), ['-r', ...packages.flatMap((p) => ['--filter', p.name]), 'build']);
  const tarballs = [];
  for (const pkg of packages) {
    const dest = join(work, 'tarballs', pkg.name.replace(/^@/, '').replace('/', '-'));
    mkdirSync(dest, { recursive: true });
    run(`pnpm pack ${pkg.name}`, join(BIN, 'pnpm'), ['pack', '--pack-destination', dest], { cwd: pkg.dir });
    const file = readdirSync(dest).find((f) => f.endsWith('.tgz'));
    if (!file) fail(`pnpm pack ${pkg.name}: no tarball in ${dest}`);
    const tarball = join(dest, file);
    const { files, manifest } = checkTarball(pkg, tarball);
    tarballs.push({ pkg: { ...pkg, manifest }, tarball });
    log(`${pkg.name}: ${file}, ${(statSync(tarball).size / 1024).toFixed(1)} KiB, ${files} files`);
  }
  return tarballs;
}

function lint(tarballs) {
  for (const { pkg, tarball } of tarballs) {
    run(`publint ${pkg.name}`, join(BIN, 'publint'), ['run', tarball, '--strict']);
    run(`attw ${pkg.name}`, join(BIN, 'attw'), [
      tarball,
      '--profile',
      'esm-only',
      '--format',
      'ascii',
      '--no-emoji',
    ]);
    log(`${pkg.name}: publint and attw clean`);
  }
}

function consumerProject(work, end, peers, tarballs) {
  const dir = join(work, `consumer-${end}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: `keyward-pack-smoke-${end}`, private: true, type: 'module' }, null, 2)}\n`,
  );
  const deps = { ...peers, ...companions(end, peers) };
  const specs = [...tarballs.map((t) => t.tarball), ...Object.entries(deps).map(([n, v]) => `${n}@${v}`)];
  log(
    `${end}: npm install ${Object.entries(deps)
      .map(([n, v]) => `${n}@${v}`)
      .join(' ')}`,
  );
  run(
    `npm install (${end})`,
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--ignore-scripts',
      '--no-package-lock',
      ...specs,
    ],
    {
      cwd: dir,
      timeoutMs: 300_000,
      env: { npm_config_update_notifier: 'false', npm_config_loglevel: 'error' },
    },
  );
  const versions = Object.keys(deps)
    .map((n) => `${n}@${readJson(join(dir, 'node_modules', n, 'package.json')).version}`)
    .join(' ');
  log(`${end}: installed ${versions}`);
  return dir;
}

function consume(dir, end, tarballs) {
  const published = JSON.stringify(tarballs.map((t) => t.pkg.name));
  const entries = JSON.stringify(
    tarballs.filter((t) => t.pkg.manifest.exports?.['.']).map((t) => t.pkg.name),
  );
  writeFileSync(join(dir, 'consumer.mjs'), ESM_CONSUMER);
  writeFileSync(join(dir, 'consumer.cjs'), CJS_CONSUMER);
  for (const file of ['consumer.mjs', 'consumer.cjs']) {
    const out = run(`${end}: node ${file}`, process.execPath, [file, published, entries], {
      cwd: dir,
      timeoutMs: 120_000,
    });
    for (const line of out.split('\n')) if (line.trim()) log(`${end} ${file}: ${line}`);
  }

  writeFileSync(join(dir, 'consumer.ts'), typescriptConsumer(tarballs.map((t) => t.pkg)));
  writeFileSync(join(dir, 'consumer-cjs.cts'), CTS_CONSUMER);
  for (const [resolution, include] of [
    ['nodenext', ['consumer.ts', 'consumer-cjs.cts']],
    ['bundler', ['consumer.ts']],
  ]) {
    const config = `tsconfig.${resolution}.json`;
    writeFileSync(join(dir, config), `${JSON.stringify(tsconfig(end, resolution, include), null, 2)}\n`);
    run(`${end}: tsc (${resolution}, skipLibCheck false)`, TSC, ['-p', config], {
      cwd: dir,
      timeoutMs: 120_000,
    });
    log(`${end}: tsc -p ${config} clean (skipLibCheck: false)`);
  }
  for (const leak of ['@types/better-sqlite3', '@types/pg']) {
    if (existsSync(join(dir, 'node_modules', leak)))
      fail(`${end}: ${leak} got installed; the type check proves nothing`);
  }

  if (tarballs.some((t) => t.pkg.manifest.bin?.keyward)) {
    const help = run(`${end}: npx keyward --help`, 'npx', ['--no', '--', 'keyward', '--help'], {
      cwd: dir,
      timeoutMs: 60_000,
    });
    if (!/Usage: keyward/.test(help)) fail(`${end}: npx keyward --help printed no usage:\n${help}`);
    log(`${end}: npx keyward --help prints the usage`);
  }
}

async function main() {
  const packages = publishedPackages();
  const work = mkdtempSync(join(tmpdir(), 'keyward-pack-smoke-'));
  let ok = false;
  try {
    const tarballs = buildAndPack(packages, work);
    lint(tarballs);
    const ends = peerEnds(tarballs.map((t) => t.pkg));
    const only = process.argv.find((a) => a.startsWith('--end='))?.slice('--end='.length);
    for (const end of ['low', 'high']) {
      if (only && only !== end) continue;
      const dir = consumerProject(work, end, ends[end], tarballs);
      consume(dir, end, tarballs);
    }
    ok = true;
    log('all good');
  } finally {
    if (process.argv.includes('--keep')) log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
    if (!ok) log('FAILED');
  }
}

main().catch((err) => {
  if (err instanceof SmokeFailure) console.error(`pack-smoke failed: ${err.message}`);
  else console.error('pack-smoke failed:', err);
  process.exit(1);
});
