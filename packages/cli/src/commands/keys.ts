import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import {
  type DataKeyRewrapStatus,
  type ImportKeyOptions,
  type KeyRecord,
  type KeyUse,
  KeywardError,
  type RotationAction,
  simulateRotation,
} from '@keyward/core';
import { type Command, Option } from 'commander';
import { type GlobalOptions, withKeyward } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { isoTime, print, printJson, table } from '../output.js';

const USES: readonly KeyUse[] = ['sig', 'enc', 'data'];

function useOption(): Option {
  return new Option('--use <use>', 'which key').choices(USES).default('sig');
}

/** Registers `keyward keys list|rotate|revoke|plan|import`. */
export function registerKeys(program: Command, globals: () => GlobalOptions): void {
  const keys = program
    .command('keys')
    .description('list, rotate, revoke keys and preview the rotation schedule');

  keys
    .command('list')
    .description('every key: kid, use, alg, state, created, activated, verify-until (never key material)')
    .option('--json', 'print JSON records for scripts')
    .addHelpText(
      'after',
      '\nExamples:\n  $ keyward keys list\n  $ keyward keys list --json | jq -r \'.[] | select(.state=="active") | .kid\'',
    )
    .action(async (opts: { json?: boolean }) => {
      await withKeyward(globals(), {}, async (kw) => {
        const records = kw.keys.list();
        const rewrap = new Map((await kw.dataRewrap.status()).map((s) => [s.kid, s]));
        if (opts.json)
          return printJson(
            records.map((k) => {
              const s = rewrap.get(k.kid);
              return s
                ? {
                    ...k,
                    rewrap: {
                      state: s.state,
                      toRewrap: s.toRewrap,
                      rewrapped: s.rewrapped,
                      remaining: s.remaining,
                    },
                  }
                : k;
            }),
          );
        print(
          table(
            ['KID', 'USE', 'ALG', 'STATE', 'ORIGIN', 'CREATED', 'ACTIVATED', 'VERIFY UNTIL'],
            records.map((k) => [
              k.kid,
              k.use,
              k.alg,
              stateText(k, rewrap.get(k.kid)),
              k.origin,
              isoTime(k.createdAt),
              isoTime(k.activatedAt),
              isoTime(k.verifyUntil),
            ]),
          ),
        );
      });
    });

  keys
    .command('rotate')
    .description('rotate a key now: a new key becomes active, the old one verifies until its verifyUntil')
    .addOption(useOption())
    .option('--reason <text>', 'why (kept in the audit log)')
    .addHelpText(
      'after',
      '\nExamples:\n  $ keyward keys rotate --reason "quarterly rotation"\n  $ keyward keys rotate --use data',
    )
    .action(async (opts: { use: KeyUse; reason?: string }) => {
      await withKeyward(globals(), { audit: true }, async (kw) => {
        const result = await kw.keys.rotate({
          use: opts.use,
          ...(opts.reason ? { reason: opts.reason } : {}),
        });
        const previous = result.previousKid
          ? kw.keys.list().find((k) => k.kid === result.previousKid)
          : undefined;
        print(`rotated ${opts.use}: ${result.kid} is active`);
        if (result.unpublished) print(UNPUBLISHED_WARNING);
        if (previous) {
          const until = previous.verifyUntil
            ? `verifies until ${isoTime(previous.verifyUntil)}`
            : 'decrypts until rewrapped (`keyward secrets rewrap`)';
          print(`previous ${previous.kid} is ${previous.state}, ${until}`);
        }
      });
    });

  keys
    .command('revoke')
    .description(
      "emergency revocation: every instance rejects the key's tokens at once; an active key is replaced",
    )
    .argument('<kid>', 'the key to revoke')
    .requiredOption('--reason <text>', 'why (kept in the audit log)')
    .option('-y, --yes', 'do not ask for confirmation (required when not on a terminal)')
    .addHelpText(
      'after',
      '\nExample:\n  $ keyward keys revoke --reason "key leaked in CI log" --yes -- 3f2a9c\n  (`--` ends the options: a kid may start with "-")',
    )
    .action(async (kid: string, opts: { reason: string; yes?: boolean }) => {
      await withKeyward(globals(), { audit: true }, async (kw) => {
        const target = kw.keys.list().find((k) => k.kid === kid);
        if (!target) throw new KeywardError('key_not_found', `no key with kid "${kid.slice(0, 64)}"`);
        if (target.state === 'revoked') {
          print(`${kid} was already revoked; nothing changed`);
          return;
        }
        if (!opts.yes) await confirmRevoke(target);
        const result = await kw.keys.revoke(kid, opts.reason);
        print(`revoked ${result.revoked}`);
        if (result.replacement) print(`${result.replacement} is now the active ${target.use} key`);
        if (result.unpublished) print(UNPUBLISHED_WARNING);
        if (result.toRewrap !== undefined)
          print(
            `${result.toRewrap} records are still under it and stay readable; running keyward instances rewrap them in the background, then destroy its material (\`keyward keys list\` shows the progress)`,
          );
      });
    });

  keys
    .command('import')
    .description(
      'bring your own key: import a PEM, JWK, JWKS or HMAC secret file, keeping its kid, as the signing key or verify-only',
    )
    .option(
      '--kid <kid>',
      "the key's id, as the tokens of the previous library carry it (optional when the JWK has one)",
    )
    .option(
      '--alg <alg>',
      'EdDSA (Ed25519), ES256, RS256, PS256, HS256, HS384, HS512 (optional when the JWK has one)',
    )
    .requiredOption(
      '--file <file>',
      'PEM (SPKI, PKCS#8, PKCS#1), JWK or JWKS JSON, or the HMAC secret (one trailing newline ignored); "-" reads stdin',
    )
    .option(
      '--verify-only',
      'only verify tokens of this key (until --verify-until); default: it signs from now on',
    )
    .option(
      '--verify-until <iso>',
      "verify-only: last instant its tokens verify (default: now + the policy's retainFor)",
    )
    .option('--default-for-kidless', 'it also verifies tokens that carry no kid header (until it retires)')
    .addHelpText(
      'after',
      '\nKey material is never printed or logged; the audit log records kid, alg and state.\nExamples:\n  $ keyward keys import --kid express-jwt --alg HS256 --file /run/secrets/jwt --verify-only --default-for-kidless\n  $ keyward keys import --kid app-2024 --alg RS256 --file private.pem\n  $ keyward keys import --file idp-jwks.json --verify-only --verify-until 2026-03-01T00:00:00Z',
    )
    .action(
      async (opts: {
        kid?: string;
        alg?: string;
        file: string;
        verifyOnly?: boolean;
        verifyUntil?: string;
        defaultForKidless?: boolean;
      }) => {
        let verifyUntil: number | undefined;
        if (opts.verifyUntil !== undefined) {
          if (!opts.verifyOnly)
            throw new CliError('invalid_argument', '--verify-until needs --verify-only', EXIT.usage);
          verifyUntil = Date.parse(opts.verifyUntil);
          if (!Number.isFinite(verifyUntil))
            throw new CliError(
              'invalid_argument',
              `--verify-until must be an ISO date-time, got "${opts.verifyUntil.slice(0, 40)}"`,
              EXIT.usage,
            );
        }
        const key = readKeyFile(opts.file);
        const options: ImportKeyOptions = {
          key,
          state: opts.verifyOnly ? 'verify-only' : 'active',
          ...(opts.kid !== undefined ? { kid: opts.kid } : {}),
          ...(opts.alg !== undefined ? { alg: opts.alg as NonNullable<ImportKeyOptions['alg']> } : {}),
          ...(verifyUntil !== undefined ? { verifyUntil } : {}),
          ...(opts.defaultForKidless ? { defaultForKidless: true } : {}),
        };
        await withKeyward(globals(), { audit: true }, async (kw) => {
          const result = await kw.keys.import(options).catch((err: unknown) => {
            // A bad kid, alg or verifyUntil is bad usage (exit 2), like the CLI's own argument checks.
            if (err instanceof KeywardError && err.code === 'invalid_request')
              throw new CliError('invalid_request', err.message, EXIT.usage);
            throw err;
          });
          for (const k of result.imported)
            print(
              k.state === 'active'
                ? `imported ${k.kid} (${k.alg}): it is the active signing key`
                : `imported ${k.kid} (${k.alg}): verify-only until ${isoTime(result.verifyUntil)}`,
            );
          if (opts.defaultForKidless) print('it verifies tokens without kid until it retires');
          if (result.previousKid) {
            const previous = kw.keys.list().find((r) => r.kid === result.previousKid);
            print(
              `previous ${result.previousKid} is ${previous?.state ?? 'retiring'}, verifies until ${isoTime(previous?.verifyUntil)}`,
            );
          }
          if (result.unpublished)
            print(
              'warning: the imported key signs at once without having been in the JWKS for jwksMaxAge; verifiers with a cached JWKS may reject its tokens until they refetch',
            );
        });
      },
    );

  keys
    .command('plan')
    .description(
      'the next rotations, activations and retirements, and the JWKS after each, as the scheduler decides them',
    )
    .option('--days <n>', 'how far ahead', '90')
    .option('--json', 'print the steps as JSON')
    .addHelpText(
      'after',
      "\nUses the default rotation policy unless --policy FILE gives the app's own.\nExamples:\n  $ keyward keys plan --days 180\n  $ keyward --policy ./rotation.json keys plan --json",
    )
    .action(async (opts: { days: string; json?: boolean }) => {
      const days = Number(opts.days);
      if (!Number.isFinite(days) || days < 0 || days > 3650) {
        throw new CliError(
          'invalid_argument',
          `--days must be a number from 0 to 3650, got "${opts.days.slice(0, 20)}"`,
          EXIT.usage,
        );
      }
      await withKeyward(globals(), {}, async (kw) => {
        const steps = simulateRotation(kw.keys.list(), kw.policy, kw.now(), days);
        if (opts.json)
          return printJson(steps.map(({ at, actions, jwksKids }) => ({ at, actions, jwksKids })));
        const [first, ...rest] = steps;
        if (first) print(`now ${isoTime(first.at)}: JWKS ${first.jwksKids.join(', ') || '(empty)'}`);
        for (const step of first?.actions.length ? steps : rest) {
          for (const action of step.actions) print(`${isoTime(step.at)}  ${describeAction(action)}`);
          print(`${' '.repeat(isoTime(step.at).length)}  JWKS: ${step.jwksKids.join(', ') || '(empty)'}`);
        }
        if (rest.length === 0 && !first?.actions.length) print(`no rotation due in the next ${days} days`);
      });
    });
}

/**
 * The key file's text (PEM, JWK / JWKS JSON, or an HMAC secret, whose one trailing newline is an
 * editor's, not the secret's). `-` reads stdin. The path, never the content, shows in errors.
 */
function readKeyFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch {
    throw new CliError('invalid_argument', `cannot read --file ${file.slice(0, 200)}`, EXIT.usage);
  }
  return text.replace(/\r?\n$/, '');
}

/**
 * The STATE column: a revoked data key shows its rewrap progress, or that its material is destroyed;
 * the key that verifies tokens without kid says so.
 */
function stateText(record: KeyRecord, rewrap: DataKeyRewrapStatus | undefined): string {
  if (record.destroyedAt !== undefined) return `${record.state} (destroyed)`;
  if (record.defaultForKidless) return `${record.state} (kid-less default)`;
  if (!rewrap) return record.state;
  if (rewrap.state === 'settling') return `${record.state} (rewrapped, destroy pending)`;
  const of = rewrap.toRewrap === undefined ? '' : `/${rewrap.toRewrap}`;
  return `${record.state} (rewrap ${rewrap.rewrapped}${of})`;
}

function describeAction(action: RotationAction): string {
  switch (action.type) {
    case 'bootstrap':
      return `bootstrap ${action.use} (${action.alg})`;
    case 'generate':
      return `generate ${action.use} ${action.alg}, published now, active from ${isoTime(action.activateAt)}`;
    case 'activate':
      return `activate ${action.kid} (${action.use})${action.demote ? `; ${action.demote} verify-only${action.verifyUntil ? ` until ${isoTime(action.verifyUntil)}` : ' until rewrapped'}` : ''}`;
    case 'retire':
      return `retire ${action.kid}`;
    case 'prune':
      return `prune ${action.kid} (retired longer than retiredRetention; its record leaves the keyring)`;
  }
}

const UNPUBLISHED_WARNING =
  'warning: no published standby existed, so the new signing key was not in the JWKS for jwksMaxAge; ' +
  'verifiers with a cached JWKS may reject its tokens until they refetch';

async function confirmRevoke(target: KeyRecord): Promise<void> {
  if (!process.stdin.isTTY || !process.stdout.isTTY) {
    throw new CliError(
      'confirmation_required',
      'refusing to revoke without --yes when not on a terminal',
      EXIT.usage,
    );
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = await rl.question(
      `Revoke ${target.state} ${target.use} key ${target.kid}? Every token it signed is rejected at once. Type the kid to confirm: `,
    );
    if (answer.trim() !== target.kid)
      throw new CliError('confirmation_required', 'not confirmed; nothing changed', EXIT.usage);
  } finally {
    rl.close();
  }
}
