/** Z85 (ZeroMQ RFC 32), the text form of CURVE keys: 4 bytes become 5 characters. */
const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const DECODE = new Map([...ALPHABET].map((c, i) => [c, i]));

export function isZ85(text: string): boolean {
  return text.length % 5 === 0 && [...text].every((c) => DECODE.has(c));
}

export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) throw new RangeError('Z85 encodes a multiple of 4 bytes');
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let value = ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0;
    let chunk = '';
    for (let j = 0; j < 5; j++) {
      chunk = ALPHABET[value % 85]! + chunk;
      value = Math.floor(value / 85);
    }
    out += chunk;
  }
  return out;
}

export function z85Decode(text: string): Buffer {
  if (!isZ85(text)) throw new RangeError('not Z85 text');
  const out = Buffer.alloc((text.length / 5) * 4);
  for (let i = 0; i < text.length; i += 5) {
    let value = 0;
    for (let j = 0; j < 5; j++) value = value * 85 + DECODE.get(text[i + j]!)!;
    if (value > 0xffffffff) throw new RangeError('not Z85 text');
    out.writeUInt32BE(value, (i / 5) * 4);
  }
  return out;
}
