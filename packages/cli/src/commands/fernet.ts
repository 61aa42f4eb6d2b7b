import { readFileSync } from 'node:fs';
import { Fernet } from '@keyward/core';
import type { Command } from 'commander';
import { CliError, EXIT } from '../errors.js';
import { print } from '../output.js';

/** Reads all of stdin as bytes. */
async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function fernetFrom(opts: { key?: string; keyFile?: string }): Fernet {
  const text = opts.keyFile ? readKeyFile(opts.keyFile) : (opts.key ?? process.env.FERNET_KEY);
  if (!text)
    throw new CliError('invalid_argument', 'give the key with --key, --key-file or FERNET_KEY', EXIT.usage);
  return new Fernet(text.trim());
}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new CliError('invalid_argument', `cannot read --key-file ${path}`, EXIT.usage);
  }
}

/** Registers `keyward fernet generate-key|encrypt|decrypt` (standalone; Python `cryptography.fernet` compatible). */
export function registerFernet(program: Command): void {
  const fernet = program
    .command('fernet')
    .description("standalone Fernet, compatible with Python's cryptography.fernet (no store needed)");

  fernet
    .command('generate-key')
    .description('print a new random Fernet key')
    .addHelpText('after', '\nExample:\n  $ keyward fernet generate-key > fernet.key')
    .action(() => print(Fernet.generateKey()));

  fernet
    .command('encrypt')
    .description('encrypt TEXT (or stdin, byte for byte, when TEXT is - or absent) and print the token')
    .argument('[text]', 'plaintext, or - for stdin', '-')
    .option(
      '--key <key>',
      'Fernet key (prefer --key-file or FERNET_KEY: arguments show in ps and shell history)',
    )
    .option('--key-file <file>', 'file holding the Fernet key')
    .addHelpText(
      'after',
      '\nExamples:\n  $ keyward fernet encrypt --key-file fernet.key "hello"\n  $ printf hello | FERNET_KEY=$(cat fernet.key) keyward fernet encrypt',
    )
    .action(async (text: string, opts: { key?: string; keyFile?: string }) => {
      const f = fernetFrom(opts);
      const data = text === '-' ? await readStdin() : Buffer.from(text, 'utf8');
      print(f.encrypt(data));
    });

  fernet
    .command('decrypt')
    .description('decrypt a TOKEN (or stdin) and write the plaintext bytes to stdout')
    .argument('[token]', 'Fernet token, or - for stdin', '-')
    .option('--key <key>', 'Fernet key (prefer --key-file or FERNET_KEY)')
    .option('--key-file <file>', 'file holding the Fernet key')
    .option('--ttl <seconds>', 'reject tokens older than this')
    .addHelpText(
      'after',
      '\nExample:\n  $ keyward fernet decrypt --key-file fernet.key --ttl 3600 gAAAAAB...',
    )
    .action(async (token: string, opts: { key?: string; keyFile?: string; ttl?: string }) => {
      const f = fernetFrom(opts);
      const ttl = opts.ttl === undefined ? undefined : Number(opts.ttl);
      if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 0)) {
        throw new CliError('invalid_argument', '--ttl must be a whole number of seconds', EXIT.usage);
      }
      const raw = token === '-' ? (await readStdin()).toString('utf8') : token;
      const plain = f.decrypt(raw.trim(), ttl === undefined ? {} : { ttlSeconds: ttl });
      process.stdout.write(plain);
    });
}
