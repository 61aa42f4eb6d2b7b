/** Formats epoch ms as an ISO time without milliseconds, or `-`. */
export function isoTime(ms: number | null | undefined): string {
  return ms === undefined || ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Renders rows as a left-aligned text table with a header line.
 *
 * @example
 * ```ts
 * table(['kid', 'state'], [['k1', 'active']]) // 'kid  state\nk1   active'
 * ```
 */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** Writes a line to stdout. */
export function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Writes pretty JSON to stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Writes a line to stderr (notes and progress, so stdout stays parseable). */
export function note(text: string): void {
  process.stderr.write(`${text}\n`);
}
