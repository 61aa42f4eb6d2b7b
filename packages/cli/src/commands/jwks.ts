import type { Command } from 'commander';
import { type GlobalOptions, withKeyward } from '../context.js';
import { printJson } from '../output.js';

/** Registers `keyward jwks`. */
export function registerJwks(program: Command, globals: () => GlobalOptions): void {
  program
    .command('jwks')
    .description('print the public JWKS (pending, active and retiring asymmetric signing keys)')
    .addHelpText('after', '\nExample:\n  $ keyward jwks | jq -r ".keys[].kid"')
    .action(async () => {
      await withKeyward(globals(), {}, async (kw) => printJson(kw.keys.jwks()));
    });
}
