import { createReadStream, existsSync, statSync, watch } from 'node:fs';
import { createInterface } from 'node:readline';
import { verifyAuditFile } from '@keyward/core';
import type { Command } from 'commander';
import { auditFile, type GlobalOptions } from '../context.js';
import { CliError } from '../errors.js';
import { print } from '../output.js';

function fileOf(g: GlobalOptions, opts: { file?: string }): string {
  const file = opts.file ?? auditFile(g);
  if (!existsSync(file)) throw new CliError('audit_file_invalid', `no audit file at ${file} (use --file)`);
  return file;
}

async function lastLines(file: string, count: number): Promise<string[]> {
  const lines: string[] = [];
  const reader = createInterface({
    input: createReadStream(file, { encoding: 'utf8' }),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  for await (const line of reader) {
    if (line.trim() === '') continue;
    lines.push(line);
    if (lines.length > count) lines.shift();
  }
  return lines;
}

/** Prints what was appended to `file` after `from`, until the process is stopped. */
function follow(file: string, from: number): Promise<never> {
  let offset = from;
  let busy = false;
  let partial = '';
  const readMore = () => {
    if (busy) return;
    const size = statSync(file).size;
    if (size <= offset) return;
    busy = true;
    const stream = createReadStream(file, { start: offset, end: size - 1, encoding: 'utf8' });
    stream.on('data', (chunk) => {
      const text = partial + String(chunk);
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim()) print(line);
    });
    stream.on('close', () => {
      offset = size;
      busy = false;
      readMore();
    });
  };
  watch(file, readMore);
  // fs.watch can miss events on some filesystems; a slow poll repairs that.
  setInterval(readMore, 1000);
  return new Promise<never>(() => {});
}

/** Registers `keyward audit tail|verify`. */
export function registerAudit(program: Command, globals: () => GlobalOptions): void {
  const audit = program
    .command('audit')
    .description('read and check the hash-chained audit log (JSON lines)');

  audit
    .command('tail')
    .description('print the last events of the audit file (default <dir>/audit.jsonl)')
    .option('--file <path>', 'audit file to read')
    .option('-n, --lines <n>', 'how many events', '20')
    .option('-f, --follow', 'keep printing new events')
    .addHelpText(
      'after',
      '\nExamples:\n  $ keyward audit tail -n 50\n  $ keyward audit tail --follow --file /var/log/keyward/audit.jsonl',
    )
    .action(async (opts: { file?: string; lines: string; follow?: boolean }) => {
      const file = fileOf(globals(), opts);
      const count = Number(opts.lines);
      if (!Number.isInteger(count) || count < 0)
        throw new CliError('invalid_argument', '--lines must be a whole number', 2);
      const size = statSync(file).size;
      for (const line of await lastLines(file, count)) print(line);
      if (opts.follow) await follow(file, size);
    });

  audit
    .command('verify')
    .description('check the hash chain: exits 1 at the first edited, removed or reordered event')
    .option('--file <path>', 'audit file to check')
    .addHelpText(
      'after',
      '\nExample:\n  $ keyward audit verify --file /var/log/keyward/audit.jsonl && echo intact',
    )
    .action(async (opts: { file?: string }) => {
      const file = fileOf(globals(), opts);
      const result = await verifyAuditFile(file);
      if (!result.ok) {
        throw new CliError('audit_chain_broken', `${file} line ${result.index + 1}: ${result.reason}`);
      }
      print(`${file}: ${result.count} events, hash chain intact`);
    });
}
