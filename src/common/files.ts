/**
 * Reading and writing whole files, the two ways every command does it: a
 * read that fails with one line naming the file and the errno code
 * (`FILE: cannot read: ENOENT`), and a write that readers never see half
 * done (aside, then renamed into place, as network-container writes the
 * plugin's data; SPEC §8).
 */
import fs from 'node:fs';

/** Why a file operation failed, in one word where there is one: the errno code (ENOENT, EACCES), else the message. */
export function errorReason(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

/** A file that could not be read (or looked at): `FILE: cannot read: REASON`, one line. */
export class CannotReadError extends Error {
  readonly code = 'ECANNOTREAD';

  constructor(
    readonly file: string,
    /** The errno code (ENOENT, EACCES), else the message. */
    readonly reason: string,
  ) {
    super(`${file}: cannot read: ${reason}`);
  }
}

/** The file's text (UTF-8); throws a {@link CannotReadError}. */
export function readTextFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CannotReadError(file, errorReason(err));
  }
}

/**
 * Replaces `file` with `data` so that a reader sees the old content or the
 * new, never part: written to a temporary file beside it (unique to this
 * process), then renamed over it. On failure the temporary file is removed
 * and the error thrown; `file` is as it was.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
