/**
 * `${VAR}` and `${VAR:-default}` interpolation, as in shells and Redpanda Connect.
 * `$${` escapes a literal `${`.
 */
const pattern = /\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

export interface InterpolationResult {
  value: string;
  /** Variables referenced without a default that are not set. */
  missing: string[];
  /** True when a variable was substituted: the value may be a secret and is never printed. */
  substituted: boolean;
}

export function interpolate(text: string, env: NodeJS.ProcessEnv = process.env): InterpolationResult {
  const missing: string[] = [];
  let substituted = false;
  const value = text.replace(pattern, (whole, escaped: string | undefined, name: string, fallback: string | undefined) => {
    if (escaped) return whole.slice(1);
    const set = env[name];
    if (set !== undefined && set !== '') {
      substituted = true;
      return set;
    }
    if (fallback !== undefined) return fallback;
    missing.push(name);
    return '';
  });
  return { value, missing, substituted };
}
