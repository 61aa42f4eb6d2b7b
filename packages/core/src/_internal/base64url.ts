/** Decodes base64url or base64 (with or without padding); `undefined` when it is neither. */
export function fromBase64Url(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_\-+/]*={0,2}$/.test(text)) return undefined;
  return Buffer.from(text.replace(/\+/g, '-').replace(/\//g, '_'), 'base64url');
}
