/**
 * CurveZMQ keys in files: Z85 text as zeromq's `curveKeyPair()` writes it,
 * read and checked at start-up so a bad file stops a daemon with one line
 * instead of leaving it unable to talk to anyone.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { KeySpec } from './config.js';
import { CannotReadError, errorReason, readTextFile } from './files.js';
import type { CurveKeyPair } from './zmq/options.js';

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';

/** The 32 bytes a 40-character Z85 key stands for, or undefined if it is not one. */
export function z85Decode(text: string): Buffer | undefined {
  if (text.length !== 40) return undefined;
  const out = Buffer.alloc(32);
  for (let i = 0; i < 8; i++) {
    let value = 0;
    for (let j = 0; j < 5; j++) {
      const digit = Z85.indexOf(text[i * 5 + j]!);
      if (digit < 0) return undefined;
      value = value * 85 + digit;
    }
    if (value > 0xffffffff) return undefined;
    out.writeUInt32BE(value, i * 4);
  }
  return out;
}

export function z85Encode(bytes: Buffer): string {
  let text = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let value = bytes.readUInt32BE(i);
    let chunk = '';
    for (let j = 0; j < 5; j++) {
      chunk = Z85[value % 85]! + chunk;
      value = Math.floor(value / 85);
    }
    text += chunk;
  }
  return text;
}

// DER framing of a raw X25519 private key (PKCS#8) and public key (SPKI): CurveZMQ keys are X25519 keys.
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519_LENGTH = 44;

/** The public key belonging to a Z85 secret key (what libzmq's zmq_curve_public computes). */
export function curvePublicOf(secretKey: string): string {
  const secret = z85Decode(secretKey);
  if (!secret) throw new Error('not a Z85 key');
  const priv = crypto.createPrivateKey({ key: Buffer.concat([PKCS8_X25519, secret]), format: 'der', type: 'pkcs8' });
  const spki = crypto.createPublicKey(priv).export({ format: 'der', type: 'spki' });
  return z85Encode(spki.subarray(SPKI_X25519_LENGTH - 32));
}

/** Reads a key file: one 40-character Z85 key (surrounding white space allowed). Throws a one-line reason. */
export function readKeyFile(file: string): string {
  const key = readTextFile(file).trim();
  if (!z85Decode(key)) throw new Error(`${file}: not a CurveZMQ key (expected 40 Z85 characters)`);
  return key;
}

/**
 * Reads this daemon's secret key file, refusing one that group or others may
 * access at all (as ssh does a private key): a secret others can read is no
 * secret, and refusing to start is the only way to make that heard.
 */
export function readSecretKeyFile(file: string): string {
  let mode: number;
  try {
    mode = fs.statSync(file).mode & 0o777;
  } catch (err) {
    throw new CannotReadError(file, errorReason(err));
  }
  if (mode & 0o077) throw new Error(`${file}: mode ${mode.toString(8).padStart(4, '0')} gives group or others access to this secret key (chmod 600 it)`);
  return readKeyFile(file);
}

/** A config key naming a key file; the loaded value is the key itself. */
export const keyFile = (): KeySpec<string | null> => ({ default: null, parse: readKeyFile });

/** A config key naming this daemon's secret key file (see {@link readSecretKeyFile}). */
export const secretKeyFile = (): KeySpec<string | null> => ({ default: null, parse: readSecretKeyFile });

/**
 * Reads a file of public keys: on each line a key, then optionally white
 * space and a label; blank lines and comment lines (`#` then a space, or a
 * lone `#`) are skipped. A key itself may contain `#`. Throws a one-line reason.
 */
export function readKeyListFile(file: string): string[] {
  const keys: string[] = [];
  for (const [i, line] of readTextFile(file).split('\n').entries()) {
    const key = line.trim().split(/\s+/)[0]!;
    if (key === '' || key === '#') continue;
    if (!z85Decode(key)) throw new Error(`${file}:${i + 1}: not a CurveZMQ key (expected 40 Z85 characters)`);
    keys.push(key);
  }
  return keys;
}

/** A config key naming a file of public keys; the loaded value is the list. */
export const keyListFile = (): KeySpec<string[] | null> => ({ default: null, parse: readKeyListFile });

/** A loaded key and the name of the setting it came from (config key or flag), for messages. */
export interface NamedKey {
  name: string;
  key: string | null;
}

/**
 * Checks that the curve settings are complete and consistent and returns
 * this daemon's key pair, or null when none is set (security off). With a
 * secret key every peer's server key is required; the public key may be
 * left out (it follows from the secret key) but must match if given.
 * `others` (e.g. the authorised client keys) need the secret key too.
 * Throws an Error whose message starts with the setting's name.
 */
export function resolveCurve(secret: NamedKey, pub: NamedKey, peers: NamedKey[], others: Array<{ name: string; set: boolean }> = []): CurveKeyPair | null {
  if (secret.key === null) {
    const set = [...[pub, ...peers].map((k) => ({ name: k.name, set: k.key !== null })), ...others].find((k) => k.set);
    if (set) throw new Error(`${secret.name}: missing (required when ${set.name} is set)`);
    return null;
  }
  const derived = curvePublicOf(secret.key);
  if (pub.key !== null && pub.key !== derived) throw new Error(`${pub.name}: does not belong to the secret key in ${secret.name}`);
  const missing = peers.find((k) => k.key === null);
  if (missing) throw new Error(`${missing.name}: missing (required when ${secret.name} is set)`);
  return { publicKey: derived, secretKey: secret.key };
}
