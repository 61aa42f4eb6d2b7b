#!/usr/bin/env node
// Installs the workspace with the pinned pnpm, on a machine that has only Node and npm.
//
// better-sqlite3 builds its native binding at install when no prebuilt binary can be
// downloaded. node-gyp then needs Node's headers; when this Node installation ships them
// (<prefix>/include/node), point node-gyp there instead of letting it download them.
// pnpm does not read `nodedir` from .npmrc, so it goes through the environment.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

const PNPM = 'pnpm@12.4.2';
const env = { ...process.env };
const prefix = dirname(dirname(process.execPath));
if (!env.npm_config_nodedir && existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
  env.npm_config_nodedir = prefix;
}
const args = ['--yes', PNPM, 'install', ...process.argv.slice(2)];
const result = spawnSync('npx', args, { stdio: 'inherit', env });
if (result.status !== 0) process.exit(result.status ?? 1);
// The examples run from source, but the operator console (KEYWARD_CONSOLE=1) serves its built page,
// script and stylesheet: bundle them now (esbuild, a second or two), so `npm start` can serve them.
const ui = spawnSync('npx', ['--yes', PNPM, '--filter', '@keyward/console', 'run', 'build:ui'], {
  stdio: 'inherit',
  env,
});
process.exit(ui.status ?? 1);
