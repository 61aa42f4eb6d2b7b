import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeyringRepository, MASTER_KEY_FILE, MasterKey } from '@keyward/core';
import type { Command } from 'commander';
import { describeStore, findMasterKey, type GlobalOptions, openStore, withKeyward } from '../context.js';
import { print } from '../output.js';

/** Registers `keyward init`. */
export function registerInit(program: Command, globals: () => GlobalOptions): void {
  program
    .command('init')
    .description('create a master key (unless KEYWARD_MASTER_KEY is set) and a keyring with one key per use')
    .option('--print', 'also print the new master key itself (to paste into a secret manager)')
    .addHelpText(
      'after',
      `
Examples:
  $ keyward init                       # dev: ./.keyward/master.key + ./.keyward/keyward.db
  $ KEYWARD_MASTER_KEY=... keyward init --redis redis://10.0.0.5:6379`,
    )
    .action(async (opts: { print?: boolean }) => {
      const g = globals();
      let found = findMasterKey(g);
      let created: string | undefined;
      if (!found) {
        const key = MasterKey.generate();
        mkdirSync(g.dir, { recursive: true, mode: 0o700 });
        created = join(g.dir, MASTER_KEY_FILE);
        writeFileSync(created, `${key.exportText()}\n`, { mode: 0o600, flag: 'wx' });
        chmodSync(created, 0o600);
        found = { key, source: created };
      }
      const store = openStore(g, true);
      const existing = await new KeyringRepository(store, found.key).read().finally(() => store.close());
      if (existing) {
        print(
          `keyring already exists in ${describeStore(g)} (generation ${existing.generation}); nothing changed`,
        );
        return;
      }
      await withKeyward(g, { audit: true, bootstrap: true }, async (kw) => {
        print(`keyring created in ${describeStore(g)}:`);
        for (const k of kw.keys.list()) print(`  ${k.use.padEnd(4)} ${k.alg.padEnd(7)} ${k.kid}`);
      });
      print(`master key id ${found.key.id} (from ${found.source})`);
      if (created) {
        print(`master key written to ${created} (mode 0600). In production move it to a secret manager:`);
        print(
          `  1. store the file's content as the secret KEYWARD_MASTER_KEY, e.g. aws secretsmanager create-secret --name keyward/master-key --secret-string "$(cat ${created})"`,
        );
        print(`  2. inject it into every instance's environment as KEYWARD_MASTER_KEY`);
        print(`  3. delete the file: shred -u ${created}`);
        if (opts.print) print(`KEYWARD_MASTER_KEY=${found.key.exportText()}`);
      }
    });
}
