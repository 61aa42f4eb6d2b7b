import { createRewrapJob, jsonField, type RewrapProgress, SECRETS_REWRAP_TARGET } from '@keyward/core';
import type { Command } from 'commander';
import { type GlobalOptions, withKeyward } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { note, print } from '../output.js';

/** Counts the records under the prefixes, so the TTY progress bar has a total. */
async function countRecords(
  store: {
    scan(prefix: string, o?: { cursor?: string }): Promise<{ entries: unknown[]; cursor: string | null }>;
  },
  prefixes: readonly string[],
): Promise<number> {
  let total = 0;
  for (const prefix of prefixes) {
    let cursor: string | null = null;
    do {
      const page: { entries: unknown[]; cursor: string | null } = await store.scan(
        prefix,
        cursor ? { cursor } : {},
      );
      total += page.entries.length;
      cursor = page.cursor;
    } while (cursor);
  }
  return total;
}

function bar(progress: RewrapProgress, total: number): string {
  const width = 30;
  const ratio = total > 0 ? Math.min(1, progress.scanned / total) : 1;
  const filled = Math.round(ratio * width);
  return `\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.round(ratio * 100)}% ${progress.scanned}/${total} scanned, ${progress.rewrapped} rewrapped`;
}

/** Registers `keyward secrets rewrap`. */
export function registerSecrets(program: Command, globals: () => GlobalOptions): void {
  const secrets = program
    .command('secrets')
    .description('maintenance of the data encrypted under the data keys');

  secrets
    .command('rewrap')
    .description(
      're-encrypt stored secrets under the active data key and retire data keys left empty; resumable',
    )
    .option('--prefix <prefix...>', 'also rewrap records under these store prefixes (with --json-field)')
    .option(
      '--json-field <field>',
      'the JSON field holding the ciphertext in --prefix records (default: the whole value)',
    )
    .option('--batch-size <n>', 'records per batch', '500')
    .option(
      '--settle <ms>',
      'retire a data key only if it was retiring this long before the pass (instances switched)',
      '60000',
    )
    .addHelpText(
      'after',
      '\nIf interrupted, run it again: it resumes from its saved cursor.\nExamples:\n  $ keyward keys rotate --use data && keyward secrets rewrap\n  $ keyward secrets rewrap --prefix invoice: --json-field iban',
    )
    .action(async (opts: { prefix?: string[]; jsonField?: string; batchSize: string; settle: string }) => {
      const batchSize = Number(opts.batchSize);
      const settleMs = Number(opts.settle);
      if (!Number.isInteger(batchSize) || batchSize < 1 || !Number.isFinite(settleMs) || settleMs < 0) {
        throw new CliError(
          'invalid_argument',
          '--batch-size must be a positive integer and --settle a non-negative number',
          EXIT.usage,
        );
      }
      if (opts.jsonField && !opts.prefix) {
        throw new CliError(
          'invalid_argument',
          '--json-field applies to --prefix records; give --prefix too',
          EXIT.usage,
        );
      }
      await withKeyward(globals(), { audit: true }, async (kw) => {
        const tty = process.stderr.isTTY === true;
        const targets = [
          { ...SECRETS_REWRAP_TARGET, jobId: 'secrets' },
          ...(opts.prefix
            ? [
                {
                  prefixes: opts.prefix,
                  ...(opts.jsonField ? jsonField(opts.jsonField) : {}),
                  jobId: 'cli-data',
                },
              ]
            : []),
        ];
        for (const target of targets) {
          const total = tty ? await countRecords(kw.store, target.prefixes) : 0;
          const job = createRewrapJob(kw, {
            ...target,
            batchSize,
            settleMs,
            onProgress: (p) => {
              if (tty) process.stderr.write(bar(p, total));
              else
                note(
                  `rewrap ${p.prefix}: ${p.scanned} scanned, ${p.rewrapped} rewrapped${p.done ? ' (done)' : ''}`,
                );
            },
          });
          const result = await job.run();
          if (tty) process.stderr.write('\n');
          const remaining = Object.entries(result.remainingByKid).filter(([, n]) => n > 0);
          print(
            `${target.prefixes.join(', ')}: ${result.rewrapped} of ${result.scanned} rewrapped to ${result.activeKid}${result.resumed ? ' (resumed)' : ''}`,
          );
          if (result.retired.length) print(`retired data keys: ${result.retired.join(', ')}`);
          if (remaining.length)
            print(`still under old keys: ${remaining.map(([kid, n]) => `${kid} ${n}`).join(', ')}`);
        }
      });
    });
}
