/** A command line that cannot be run as given: the CLI prints the message and the usage, exit 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The usage text of the command at fault; the whole usage when unset. */
    readonly usage?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** node:util parseArgs rejects unknown options and missing values with these codes. */
export function isParseArgsError(error: unknown): error is TypeError {
  return error instanceof TypeError && String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS_');
}

/** `-h` or `--help` anywhere before a `--`. */
export function wantsHelp(args: readonly string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((a) => a === '--help' || a === '-h');
}
