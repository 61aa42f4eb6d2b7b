import { Command } from 'commander';
import { registerApiKeys } from './commands/apikeys.js';
import { registerAudit } from './commands/audit.js';
import { registerBackup } from './commands/backup.js';
import { registerFernet } from './commands/fernet.js';
import { registerImportLegacy } from './commands/import-legacy.js';
import { registerInit } from './commands/init.js';
import { registerInstances } from './commands/instances.js';
import { registerJwks } from './commands/jwks.js';
import { registerKeys } from './commands/keys.js';
import { registerRekey } from './commands/rekey.js';
import { registerSecrets } from './commands/secrets.js';
import type { GlobalOptions } from './context.js';

/**
 * Builds the `keyward` command tree. Parsing errors throw (`exitOverride`) so the caller prints
 * one line and picks the exit code.
 *
 * @example
 * ```ts
 * await createProgram().parseAsync(['node', 'keyward', 'keys', 'list', '--json'])
 * ```
 */
export function createProgram(): Command {
  const program = new Command('keyward')
    .description('keyward: rotate, revoke, inspect, back up and restore the keys of a keyward deployment')
    .option(
      '--dir <path>',
      'embedded store folder (keyward.db, dev master.key, audit.jsonl)',
      process.env.KEYWARD_DIR || './.keyward',
    )
    .option(
      '--redis <url>',
      'use this Redis as the store instead of --dir (default: REDIS_URL)',
      process.env.REDIS_URL || undefined,
    )
    .option('--redis-prefix <prefix>', 'key prefix in Redis (default "keyward:")')
    .option(
      '--database <url>',
      'use this PostgreSQL as the store instead of --dir, when --redis is not set (default: DATABASE_URL)',
      process.env.DATABASE_URL || undefined,
    )
    .option(
      '--policy <file>',
      'JSON rotation policy, as the app passes to createKeyward({ rotation }), for keys plan/rotate',
    )
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    // One line on stderr, like every other keyward error.
    .configureOutput({
      outputError: (text, write) => write(`keyward: ${text.replace(/^error: /, '').trim()} [usage]\n`),
    })
    .addHelpText(
      'after',
      `
The master key comes from KEYWARD_MASTER_KEY, else from <dir>/master.key; KEYWARD_MASTER_KEY_PREVIOUS
(comma-separated) adds earlier keys that may still open the keyring during a rotation (keyward rekey).
Exit codes: 0 ok, 1 failed (unknown kid, wrong master key, unreachable store…), 2 bad usage or refused.

Examples:
  $ keyward init
  $ keyward keys list
  $ keyward keys revoke <kid> --reason "leaked" --yes && keyward keys rotate --reason "after revoke"
  $ keyward instances
  $ keyward --redis redis://10.0.0.5:6379 jwks`,
    );
  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  registerInit(program, globals);
  registerKeys(program, globals);
  registerJwks(program, globals);
  registerFernet(program);
  registerBackup(program, globals);
  registerRekey(program, globals);
  registerSecrets(program, globals);
  registerApiKeys(program, globals);
  registerImportLegacy(program, globals);
  registerAudit(program, globals);
  registerInstances(program, globals);
  const exitOverride = (cmd: Command) => {
    cmd.exitOverride();
    for (const sub of cmd.commands) exitOverride(sub);
  };
  exitOverride(program);
  return program;
}
