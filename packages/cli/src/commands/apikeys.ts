import { parseDuration } from '@keyward/core';
import type { Command } from 'commander';
import { type GlobalOptions, withKeyward } from '../context.js';
import { CliError } from '../errors.js';
import { isoTime, note, print, printJson, table } from '../output.js';

/** Registers `keyward apikeys create|list|revoke`. */
export function registerApiKeys(program: Command, globals: () => GlobalOptions): void {
  const apikeys = program
    .command('apikeys')
    .description('create, list and revoke API keys (kw_<id>_<secret>)');

  apikeys
    .command('create')
    .description('create an API key and print it once; only its hash is stored')
    .requiredOption('--owner <subject>', 'the subject that owns the key')
    .requiredOption('--name <name>', 'a label to recognise it by')
    .option('--scopes <list>', 'comma-separated scopes', '')
    .option('--expires-in <duration>', 'lifetime, e.g. 90d (default: no expiry)')
    .option('--json', 'print the key and its metadata as JSON')
    .addHelpText(
      'after',
      '\nExample:\n  $ keyward apikeys create --owner svc_billing --name "billing cron" --scopes invoices:read --expires-in 90d',
    )
    .action(
      async (opts: { owner: string; name: string; scopes: string; expiresIn?: string; json?: boolean }) => {
        const scopes = opts.scopes
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        const expiresInSec =
          opts.expiresIn === undefined
            ? undefined
            : Math.floor(parseDuration(opts.expiresIn, '--expires-in') / 1000);
        await withKeyward(globals(), { audit: true }, async (kw) => {
          const created = await kw.apiKeys.create({
            owner: opts.owner,
            name: opts.name,
            scopes,
            ...(expiresInSec !== undefined ? { expiresInSec } : {}),
          });
          if (opts.json) return printJson(created);
          print(created.key);
          note(
            `created API key ${created.id} for ${created.owner}, expires ${isoTime(created.expiresAt)}; the key above is shown only this once`,
          );
        });
      },
    );

  apikeys
    .command('list')
    .description("an owner's API keys (never the secrets)")
    .requiredOption('--owner <subject>', 'whose keys')
    .option('--json', 'print JSON for scripts')
    .addHelpText('after', '\nExample:\n  $ keyward apikeys list --owner svc_billing --json')
    .action(async (opts: { owner: string; json?: boolean }) => {
      await withKeyward(globals(), {}, async (kw) => {
        const keys = await kw.apiKeys.list(opts.owner);
        if (opts.json) return printJson(keys);
        print(
          table(
            ['ID', 'PREFIX', 'NAME', 'SCOPES', 'CREATED', 'EXPIRES', 'LAST USED', 'REVOKED'],
            keys.map((k) => [
              k.id,
              k.prefix,
              k.name,
              k.scopes.join(',') || '-',
              isoTime(k.createdAt),
              isoTime(k.expiresAt),
              isoTime(k.lastUsedAt),
              isoTime(k.revokedAt),
            ]),
          ),
        );
      });
    });

  apikeys
    .command('revoke')
    .description('revoke an API key: every instance rejects it at once')
    .argument('<id>', 'the key id (from apikeys list)')
    .option('--owner <subject>', 'only if it belongs to this owner')
    .addHelpText('after', '\nExample:\n  $ keyward apikeys revoke 7Hq2xv --owner svc_billing')
    .action(async (id: string, opts: { owner?: string }) => {
      await withKeyward(globals(), { audit: true }, async (kw) => {
        const revoked = await kw.apiKeys.revoke(id, opts.owner ? { owner: opts.owner } : {});
        if (!revoked)
          throw new CliError(
            'not_found',
            `no API key with id "${id.slice(0, 64)}"${opts.owner ? ` for ${opts.owner}` : ''}`,
          );
        print(`revoked API key ${id}`);
      });
    });
}
