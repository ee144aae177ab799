/** What went wrong, as one line: an Error's message, else the thrown value as a string (a rejection may carry anything). */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
