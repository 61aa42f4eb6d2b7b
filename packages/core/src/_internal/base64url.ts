/** base64url without padding (RFC 7515 §2). */
export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Decodes base64url or base64 (with or without padding); `undefined` when it is neither. */
export function fromBase64Url(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_\-+/]*={0,2}$/.test(text)) return undefined;
  return Buffer.from(text.replace(/\+/g, '-').replace(/\//g, '_'), 'base64url');
}
