/**
 * CURVE key pairs and the files that hold them. Error messages name files and line numbers,
 * never the keys themselves.
 *
 * NAME.key (mode 0600):               NAME.pub (and authorized-keys files: any number of lines):
 *   # tsgather secret key ...           # comment
 *   public <40-char Z85 public key>     <40-char Z85 public key> [label]
 *   secret <40-char Z85 secret key>
 */
import * as zmq from 'zeromq';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fchmodSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { isZ85, z85Decode, z85Encode } from './z85.js';

export interface KeyPair {
  /** Z85, 40 characters. */
  publicKey: string;
  secretKey: string;
}

export class KeyError extends Error {
  override name = 'KeyError';
}

export function generateKeyPair(): KeyPair {
  return zmq.curveKeyPair();
}

export function isKeyText(text: string): boolean {
  return text.length === 40 && isZ85(text);
}

/** A key as Z85, from Z85 or 64 hex digits (hex is URL-safe). */
export function normalizeKey(text: string, what: string): string {
  if (isKeyText(text)) return text;
  if (/^[0-9a-fA-F]{64}$/.test(text)) return z85Encode(Buffer.from(text, 'hex'));
  throw new KeyError(`${what} is not a CURVE key (40 Z85 characters or 64 hex digits)`);
}

export function keyToHex(key: string): string {
  return z85Decode(key).toString('hex');
}

/** A short, safe-to-log name for a public key. */
export function fingerprint(publicKey: string | Uint8Array): string {
  const raw = typeof publicKey === 'string' ? z85Decode(publicKey) : publicKey;
  return createHash('sha256').update(raw).digest('hex').slice(0, 16);
}

export function formatSecretKeyFile(pair: KeyPair, name: string): string {
  return `# tsgather secret key '${name}' (CURVE, Z85). Keep it private: mode 0600, never share or commit it.\npublic ${pair.publicKey}\nsecret ${pair.secretKey}\n`;
}

export function formatPublicKeyFile(pair: KeyPair, name: string): string {
  return `# tsgather public key '${name}': give it to peers (servers list controller keys in --authorized-keys)\n${pair.publicKey} ${name}\n`;
}

/** Writes DIR/NAME.key (0600) and DIR/NAME.pub (0644); refuses to overwrite either. */
export function writeKeyPair(dir: string, name: string, pair: KeyPair = generateKeyPair()): { secretFile: string; publicFile: string; pair: KeyPair } {
  if (!/^[\w.-]+$/.test(name)) throw new KeyError(`key name '${name}' may use only letters, digits, '.', '_' and '-'`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const secretFile = path.join(dir, `${name}.key`);
  const publicFile = path.join(dir, `${name}.pub`);
  for (const file of [secretFile, publicFile]) if (existsSync(file)) throw new KeyError(`${file} exists; not overwriting it`);
  writeNew(secretFile, formatSecretKeyFile(pair, name), 0o600);
  writeNew(publicFile, formatPublicKeyFile(pair, name), 0o644);
  return { secretFile, publicFile, pair };
}

function writeNew(file: string, text: string, mode: number): void {
  const fd = openSync(file, 'wx', mode);
  try {
    fchmodSync(fd, mode); // the umask may have narrowed or (for 0600) cannot widen; be exact
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

/** Reads a secret key file; refuses one that others can read, as ssh does. */
export function readKeyPairFile(file: string): KeyPair {
  const mode = statOrThrow(file).mode & 0o777;
  if (mode & 0o077) throw new KeyError(`secret key file ${file} is accessible by others (mode 0${mode.toString(8)}); run: chmod 600 ${file}`);
  return parseKeyPair(readFileSync(file, 'utf8'), file);
}

export function parseKeyPair(text: string, source: string): KeyPair {
  const found: Partial<Record<'public' | 'secret', string>> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    const match = /^(public|secret)\s+(\S+)$/.exec(line);
    if (match) found[match[1] as 'public' | 'secret'] = normalizeKey(match[2]!, `${source} line ${i + 1}`);
    else if (line && !line.startsWith('#')) throw new KeyError(`${source} line ${i + 1} is neither 'public KEY', 'secret KEY' nor a # comment`);
  });
  if (!found.public || !found.secret) throw new KeyError(`${source} lacks a 'public' or 'secret' line; make one with: tsgather keys generate`);
  return { publicKey: found.public, secretKey: found.secret };
}

/** Public keys, one per line with an optional label after whitespace; blank lines and # comments skipped. */
export function parsePublicKeys(text: string, source: string): string[] {
  const keys: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    const first = line.split(/\s+/)[0]!;
    // '#' is a Z85 character, so a line is a key first and a comment only if it is not one.
    if (isKeyText(first) || /^[0-9a-fA-F]{64}$/.test(first)) keys.push(normalizeKey(first, `${source} line ${i + 1}`));
    else if (!line.startsWith('#')) throw new KeyError(`${source} line ${i + 1} is not a public key (40 Z85 characters or 64 hex digits) or a # comment`);
  });
  return keys;
}

export function readPublicKeysFile(file: string): string[] {
  statOrThrow(file);
  return parsePublicKeys(readFileSync(file, 'utf8'), file);
}

/** KEY|FILE as command lines take it: a key itself, or a file whose first key is used. */
export function publicKeyArgument(value: string, what: string): string {
  if (!existsSync(value)) {
    if (isKeyText(value) || /^[0-9a-fA-F]{64}$/.test(value)) return normalizeKey(value, what);
    throw new KeyError(`${what}: no such file, and not a key either`);
  }
  const [key] = readPublicKeysFile(value);
  if (!key) throw new KeyError(`${what}: ${value} holds no public key`);
  return key;
}

function statOrThrow(file: string) {
  try {
    return statSync(file);
  } catch (error) {
    throw new KeyError(`cannot read key file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}
