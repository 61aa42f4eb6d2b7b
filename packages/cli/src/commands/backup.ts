import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import {
  destroyedRecords,
  Fernet,
  type KeyRecord,
  type KeyringDocument,
  KeyringRepository,
  type UnsealedKey,
} from '@keyward/core';
import type { Command } from 'commander';
import { describeStore, type GlobalOptions, openStore, requireMasterKeys } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { print } from '../output.js';

/**
 * A backup file. `master-key`: the keyring document exactly as stored, sealed under the master
 * key (restoring needs that master key). `backup-key`: every key unsealed and the whole set
 * Fernet-encrypted under a separate backup key, so the keyring survives the loss of the master
 * key too, and restore re-seals it under whatever master key is configured then.
 */
export type BackupFile =
  | {
      format: 'keyward-backup';
      v: 1;
      createdAt: string;
      sealedWith: 'master-key';
      masterKeyId: string;
      keyring: KeyringDocument;
    }
  | {
      format: 'keyward-backup';
      v: 1;
      createdAt: string;
      sealedWith: 'backup-key';
      backupKeyId: string;
      keys: string;
      /** Lineage of the backed-up keyring, so a restore continues it (absent in older backups). */
      lineage?: string;
      /** Records of destroyed data keys (no material left; kept for audit). */
      destroyed?: KeyRecord[];
    };

function readBackupKey(path: string): Fernet {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new CliError('invalid_argument', `cannot read --backup-key-file ${path}`, EXIT.usage);
  }
  return new Fernet(text.trim());
}

function readBackup(path: string): BackupFile {
  let parsed: BackupFile;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as BackupFile;
  } catch {
    throw new CliError('backup_invalid', `${path} is not a readable keyward backup`);
  }
  if (parsed?.format !== 'keyward-backup' || parsed.v !== 1) {
    throw new CliError('backup_invalid', `${path} is not a keyward backup (format/v)`);
  }
  return parsed;
}

/** Registers `keyward backup` and `keyward restore`. */
export function registerBackup(program: Command, globals: () => GlobalOptions): void {
  program
    .command('backup')
    .description(
      'write the keyring to a file: sealed under the master key, or re-sealed under a separate backup key',
    )
    .requiredOption('--out <file>', 'backup file to write (mode 0600)')
    .option(
      '--backup-key-file <file>',
      'Fernet key file (keyward fernet generate-key): restorable without the master key',
    )
    .option('--force', 'overwrite --out if it exists')
    .addHelpText(
      'after',
      '\nExamples:\n  $ keyward backup --out keyring-$(date +%F).json\n  $ keyward fernet generate-key > backup.key && keyward backup --out kr.json --backup-key-file backup.key',
    )
    .action(async (opts: { out: string; backupKeyFile?: string; force?: boolean }) => {
      const g = globals();
      if (existsSync(opts.out) && !opts.force) {
        throw new CliError('file_exists', `${opts.out} exists; pass --force to overwrite`, EXIT.usage);
      }
      const backupKey = opts.backupKeyFile ? readBackupKey(opts.backupKeyFile) : undefined;
      const { key: master, previous } = requireMasterKeys(g);
      const store = openStore(g);
      try {
        const repo = new KeyringRepository(store, [master, ...previous]);
        const doc = await repo.read();
        if (!doc) throw new CliError('keyring_missing', `no keyring in ${describeStore(g)}`);
        // Unsealing proves the backup is restorable before it is written.
        const keys = repo.unseal(doc);
        const createdAt = new Date().toISOString();
        const file: BackupFile = backupKey
          ? {
              format: 'keyward-backup',
              v: 1,
              createdAt,
              sealedWith: 'backup-key',
              backupKeyId: backupKey.keyId,
              keys: backupKey.encrypt(JSON.stringify(keys)),
              ...(doc.lineage ? { lineage: doc.lineage } : {}),
              destroyed: destroyedRecords(doc),
            }
          : {
              format: 'keyward-backup',
              v: 1,
              createdAt,
              sealedWith: 'master-key',
              masterKeyId: doc.masterKeyId,
              keyring: doc,
            };
        writeFileSync(opts.out, `${JSON.stringify(file)}\n`, { mode: 0o600 });
        print(
          `backed up ${doc.keys.length} keys (generation ${doc.generation}) to ${opts.out}, sealed under the ${backupKey ? `backup key ${backupKey.keyId}` : `master key ${doc.masterKeyId}`}`,
        );
      } finally {
        await store.close();
      }
    });

  program
    .command('restore')
    .description('restore a keyring from a backup (refuses to replace an existing keyring without --force)')
    .argument('<file>', 'backup file written by keyward backup')
    .option('--backup-key-file <file>', 'the backup key, for a backup sealed with one')
    .option('--force', 'replace the existing keyring')
    .addHelpText(
      'after',
      '\nExamples:\n  $ keyward restore keyring-2025-01-01.json\n  $ KEYWARD_MASTER_KEY=<new> keyward restore kr.json --backup-key-file backup.key --redis redis://…',
    )
    .action(async (path: string, opts: { backupKeyFile?: string; force?: boolean }) => {
      const g = globals();
      const backup = readBackup(path);
      if (backup.sealedWith === 'backup-key' && !opts.backupKeyFile) {
        throw new CliError(
          'invalid_argument',
          'this backup is sealed under a backup key: pass --backup-key-file',
          EXIT.usage,
        );
      }
      const { key: master, previous } = requireMasterKeys(g);
      const store = openStore(g, true);
      try {
        // The backup's key decides what it opens: the master key or one of KEYWARD_MASTER_KEY_PREVIOUS.
        const repo = new KeyringRepository(store, [master, ...previous]);
        let keys: UnsealedKey[];
        // Destroyed data keys have no material: only their records come back.
        let destroyed: KeyRecord[];
        if (backup.sealedWith === 'backup-key') {
          const backupKey = readBackupKey(opts.backupKeyFile as string);
          keys = JSON.parse(backupKey.decryptString(backup.keys)) as UnsealedKey[];
          destroyed = backup.destroyed ?? [];
        } else {
          if (![master, ...previous].some((k) => k.id === backup.keyring.masterKeyId)) {
            throw new CliError(
              'master_key_mismatch',
              `the backup is sealed under master key ${backup.keyring.masterKeyId}, but the configured master key is ${master.id}: put that key in KEYWARD_MASTER_KEY_PREVIOUS to restore it under ${master.id}`,
            );
          }
          const parsed = repo.parse(JSON.stringify(backup.keyring)) as KeyringDocument;
          keys = repo.unseal(parsed);
          destroyed = destroyedRecords(parsed);
        }
        // The live document is replaced whatever master key sealed it; its generation moves above
        // the current one, so running instances take it instead of ignoring it as stale. It keeps
        // the backup's lineage: instances that hold that keyring accept it, others report another
        // lineage.
        const lineage = backup.sealedWith === 'master-key' ? backup.keyring.lineage : backup.lineage;
        let replacedKeyId: string | undefined;
        const doc = await repo.replace(
          keys,
          (current) => {
            if (current && !opts.force) {
              throw new CliError(
                'keyring_exists',
                `a keyring already exists in ${describeStore(g)} (generation ${current.generation}); pass --force to replace it`,
                EXIT.usage,
              );
            }
            replacedKeyId = current?.masterKeyId;
          },
          { destroyed, ...(lineage ? { lineage } : {}) },
        );
        print(
          `restored ${doc.keys.length} keys into ${describeStore(g)} (generation ${doc.generation}), sealed under master key ${master.id}`,
        );
        if (replacedKeyId !== undefined && replacedKeyId !== master.id) {
          print(
            `the replaced keyring was sealed under master key ${replacedKeyId}: instances holding only that key now report master_key_mismatch; restart them with the key ${master.id}`,
          );
        }
      } finally {
        await store.close();
      }
    });
}
