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

/** A message for any thrown value, without a stack. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
