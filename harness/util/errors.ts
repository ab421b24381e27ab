/**
 * Errors meant for the user: one line that says what is wrong and names the fix.
 * Anything else that escapes to the CLI is a bug in svadiff and is printed with its stack.
 */
export class UserError extends Error {
  /** exit status the CLI uses for this error */
  readonly exitCode: number;
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = 'UserError';
    this.exitCode = exitCode;
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

/**
 * The JSON object in a file's text, or a one-line UserError naming the file: `invalidFix` says
 * what to do about text that is not JSON, `objectFix` about JSON that is not an object.
 */
export function parseJsonObject(text: string, source: string, invalidFix: string, objectFix: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UserError(`${source}: not valid JSON (${(e as Error).message}); ${invalidFix}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UserError(`${source}: must be a JSON object, ${objectFix}`);
  return raw as Record<string, unknown>;
}

/** A message for any thrown value, without a stack. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
