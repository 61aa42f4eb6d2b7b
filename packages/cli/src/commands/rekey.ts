import { readFileSync } from 'node:fs';
import { MasterKey } from '@keyward/core';
import type { Command } from 'commander';
import { describeStore, type GlobalOptions, requireMasterKeys, withKeyward } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { note, print } from '../output.js';

/** Reads the new master key from `--new-key-file`; the messages never quote the file's content. */
function readNewKey(path: string): MasterKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new CliError('invalid_argument', `cannot read --new-key-file ${path}`, EXIT.usage);
  }
  try {
    return MasterKey.parse(text);
  } catch {
    throw new CliError(
      'master_key_invalid',
      `--new-key-file ${path} does not hold a master key: url-safe base64 of 32 bytes (keyward fernet generate-key)`,
      EXIT.usage,
    );
  }
}

/** Registers `keyward rekey`. */
export function registerRekey(program: Command, globals: () => GlobalOptions): void {
  program
    .command('rekey')
    .description(
      're-seal the whole keyring under a new master key in one write, while the instances keep serving (master-key rotation)',
    )
    .requiredOption(
      '--new-key-file <file>',
      'file holding the new master key (e.g. keyward fernet generate-key > new.key, mode 0600)',
    )
    .addHelpText(
      'after',
      `
The current master key comes from KEYWARD_MASTER_KEY (or <dir>/master.key); keys listed in
KEYWARD_MASTER_KEY_PREVIOUS are accepted too. Signing keys do not change: every token stays valid.
Running it again once the keyring is sealed under the new key changes nothing.

Rollout:
  1. restart every instance with KEYWARD_MASTER_KEY=<new> KEYWARD_MASTER_KEY_PREVIOUS=<old>
  2. $ KEYWARD_MASTER_KEY=<old> keyward rekey --new-key-file new.key
  3. restart every instance with KEYWARD_MASTER_KEY=<new> only, then destroy the old key`,
    )
    .action(async (opts: { newKeyFile: string }) => {
      const g = globals();
      const next = readNewKey(opts.newKeyFile);
      const current = requireMasterKeys(g);
      // The keyring may be sealed by the current key, a previous one, or already by the new key.
      const previous = [current.key, ...current.previous].filter((k) => k.id !== next.id);
      const result = await withKeyward(g, { audit: true, keys: { key: next, previous } }, (kw) =>
        kw.keys.rekey(),
      );
      if (!result.changed) {
        print(
          `the keyring in ${describeStore(g)} is already sealed under master key ${next.id}; nothing changed`,
        );
        return;
      }
      print(
        `re-sealed ${result.doc.keys.length} keys in ${describeStore(g)} under master key ${result.masterKeyId} (was ${result.previousMasterKeyId}), generation ${result.doc.generation}`,
      );
      print(
        `instances holding ${result.masterKeyId} take it at their next sync; instances holding only ${result.previousMasterKeyId} keep serving their last snapshot, report master_key_mismatch in health and cannot start`,
      );
      print(
        `next: run every instance with KEYWARD_MASTER_KEY set to the new key and without KEYWARD_MASTER_KEY_PREVIOUS, then destroy master key ${result.previousMasterKeyId}`,
      );
      if (current.source !== 'KEYWARD_MASTER_KEY') {
        note(
          `note: the current master key came from ${current.source}; put the new key there (or in KEYWARD_MASTER_KEY) for the next commands`,
        );
      }
    });
}
