/**
 * Decodes unpadded base64url (RFC 7515 §2) strictly: `undefined` for padding, whitespace, any
 * character outside the URL-safe alphabet, or a length that cannot encode whole bytes.
 *
 * Node's decoder skips characters outside its alphabet (and stops at `=`), so any such character
 * leaves fewer bytes than the length promises; it also accepts standard base64's `+` and `/`, which
 * are rejected explicitly. This keeps the check in native code instead of a per-character JS loop.
 */
export function decodeBase64UrlStrict(segment: string): Buffer | undefined {
  const length = segment.length;
  if (length % 4 === 1) return undefined;
  const bytes = Buffer.from(segment, 'base64url');
  if (bytes.length !== (length * 3) >>> 2 || segment.includes('+') || segment.includes('/')) return undefined;
  return bytes;
}
