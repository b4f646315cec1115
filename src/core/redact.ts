/**
 * The one place that keeps secrets out of what earth-memory prints: log lines, error
 * descriptions, `catalog ls`, `status` and every other command's output go through `redact`.
 *
 * Two complementary nets:
 * - shapes that carry secrets, whatever their value: the password of a URL's user info
 *   (`postgresql://user:secret@host`), secret-named parameters of query and connection strings
 *   (`password=`, `AccountKey=`, `sig=`, `X-Amz-Signature=`, InfluxDB's `p=` …), secret-named JSON
 *   fields, `Authorization` header values and PEM private keys;
 * - the values themselves: every secret the configuration holds (registered when a pipeline is
 *   parsed, see `registerConfigSecrets`) and the secrets SDKs read from the environment, masked
 *   wherever a third-party message quotes them.
 */

export const MASK = '***';

/** Shorter values are not masked by value: masking "abc" everywhere would garble every line. */
const MIN_SECRET_LENGTH = 6;

const secrets = new Set<string>();

/** Keys whose value is a secret (configuration keys, query and connection-string parameters, JSON fields). */
const SECRET_KEY =
  /^(?:.*password|passwd|pwd|pass|.*secret|.*secret_access_key|.*session_token|.*token|.*api_?key|account_?key|accountkey|shared_?access_?(?:key|signature)|sig|signature|x-amz-signature|x-amz-security-token|x-goog-signature|private_key|private_key_id|client_secret|credentials?)$/i;

/** Keys whose value is a URL or connection string that may carry secrets inside. */
const LOCATOR_KEY = /^(?:.*url|.*uri|connection_string|connectionstring|dsn|endpoint|brokers?)$/i;

/** Environment variables SDKs read credentials from without the configuration naming them. */
const ENV_SECRETS = ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AZURE_STORAGE_KEY', 'AZURE_STORAGE_CONNECTION_STRING', 'PGPASSWORD'];

/**
 * Masks `value` wherever it appears in redacted text. `alsoPublic`: values that are not secret
 * (a user name); a password equal to one of them protects nothing, and masking it would hide the
 * public value in every line, so it is masked only where it stands as a password (URL user info,
 * `password=`).
 */
export function registerSecret(value: string | undefined, alsoPublic: readonly (string | undefined)[] = []): void {
  if (value === undefined) return;
  const trimmed = value.trim();
  if (trimmed.length < MIN_SECRET_LENGTH || alsoPublic.includes(trimmed)) return;
  secrets.add(trimmed);
  // A connection string is masked whole, and so are the secrets inside it.
  registerSecretsIn(trimmed);
}

/** The secrets inside a URL or connection string: the user info password and secret parameters. */
function registerSecretsIn(locator: string): void {
  const userinfo = /^[a-z][a-z0-9+.-]*:\/\/([^/@\s]*)@/i.exec(locator);
  if (userinfo) {
    const [user, password] = splitUserinfo(userinfo[1]!);
    if (password !== undefined) registerSecret(decodeSafe(password), [decodeSafe(user)]);
  }
  for (const match of locator.matchAll(/(?:^|[?&;\s])([\w.-]+)=([^&;\s]+)/g)) {
    if (SECRET_KEY.test(match[1]!)) registerSecret(decodeSafe(match[2]!));
  }
}

function splitUserinfo(userinfo: string): [string, string | undefined] {
  const colon = userinfo.indexOf(':');
  return colon < 0 ? [userinfo, undefined] : [userinfo.slice(0, colon), userinfo.slice(colon + 1)];
}

function decodeSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/**
 * Registers the secrets of a parsed configuration (any nesting): values of secret-named keys
 * (`password`, `aws_secret_access_key`, `token`, `connection_string`'s password …) and the
 * secrets inside URLs and connection strings.
 */
export function registerConfigSecrets(config: unknown): void {
  const visit = (value: unknown, key: string | undefined, siblings: Record<string, unknown> | undefined, depth: number) => {
    if (depth > 32) return;
    if (typeof value === 'string') {
      if (key === undefined) return;
      if (SECRET_KEY.test(key)) {
        // `password` next to `username`/`user`: equal to it, it is no secret (see registerSecret).
        const user = siblings?.username ?? siblings?.user;
        registerSecret(value, typeof user === 'string' ? [user] : []);
        // InfluxDB 1.x takes `username:password` as a token; the password may be sent alone.
        const colon = value.indexOf(':');
        if (/token$/i.test(key) && colon > 0) registerSecret(value.slice(colon + 1), [value.slice(0, colon)]);
      } else if (LOCATOR_KEY.test(key)) {
        registerSecretsIn(value);
      }
      return;
    }
    if (Array.isArray(value)) {
      for (const item of value) visit(item, key, siblings, depth + 1);
      return;
    }
    if (value !== null && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      for (const [k, v] of Object.entries(record)) visit(v, k, record, depth + 1);
    }
  };
  visit(config, undefined, undefined, 0);
}

/** The secrets of the environment variables SDKs read on their own (read now: tests change them). */
function environmentSecrets(): string[] {
  const out: string[] = [];
  for (const name of ENV_SECRETS) {
    const value = process.env[name]?.trim();
    if (value === undefined || value.length < MIN_SECRET_LENGTH) continue;
    if (name === 'PGPASSWORD' && value === process.env.PGUSER?.trim()) continue;
    if (name === 'AZURE_STORAGE_CONNECTION_STRING') {
      for (const match of value.matchAll(/(?:^|;)\s*(AccountKey|SharedAccessSignature)=([^;]+)/gi)) out.push(match[2]!);
      continue;
    }
    out.push(value);
  }
  return out;
}

const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/@:]*):([^\s/@]*)@/gi;
const SECRET_PARAM =
  /((?:^|[?&;,\s"'(])(?:[\w.-]*password|passwd|pwd|[\w.-]*secret|[\w.-]*token|api_?key|account_?key|shared_?access_?(?:key|signature)|sig|signature|x-amz-signature|x-amz-security-token|x-goog-signature)=)([^&;,\s"')]+)/gi;
/** InfluxDB 1.x sends the password as the `p` query parameter. */
const INFLUX_PASSWORD_PARAM = /([?&]p=)([^&\s"']+)/g;
const SECRET_JSON_FIELD =
  /("(?:[\w.-]*password|passwd|pwd|[\w.-]*secret|[\w.-]*token|api_?key|account_?key|private_key|private_key_id|client_secret)"\s*:\s*)"(?:[^"\\]|\\.)*"/gi;
const AUTHORIZATION = /\b(authorization\s*[:=]\s*["']?)(?:(basic|bearer|token|sharedkey|aws4-hmac-sha256)\s+)?[^\s"',]+(?:,\s*\w+=[^\s"',]+)*/gi;
const PRIVATE_KEY = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g;

/** `text` with every secret masked as `***` (see the module comment for what counts). */
export function redact(text: string): string {
  let out = text;
  const values = [...secrets, ...environmentSecrets()].sort((a, b) => b.length - a.length);
  for (const value of values) {
    if (out.includes(value)) out = out.split(value).join(MASK);
    // The same secret percent-encoded, as it stands in a URL.
    const encoded = encodeURIComponent(value);
    if (encoded !== value && out.includes(encoded)) out = out.split(encoded).join(MASK);
  }
  return out
    .replace(PRIVATE_KEY, `-----BEGIN $1PRIVATE KEY----- ${MASK}`)
    .replace(URL_USERINFO, (_match, scheme: string, user: string) => `${scheme}${user}:${MASK}@`)
    .replace(SECRET_PARAM, `$1${MASK}`)
    .replace(INFLUX_PASSWORD_PARAM, `$1${MASK}`)
    .replace(SECRET_JSON_FIELD, `$1"${MASK}"`)
    .replace(AUTHORIZATION, (_match, prefix: string, scheme: string | undefined) => `${prefix}${scheme ? `${scheme} ` : ''}${MASK}`);
}

/**
 * A URL or connection string for display (`location`, `uri`): the user info password and
 * secret query parameters removed rather than masked, the rest kept (the user name too, unless
 * `keepUser` is false). Text that is no URL is `redact`ed.
 */
export function redactUrl(locator: string, { keepUser = true }: { keepUser?: boolean } = {}): string {
  let url: URL;
  try {
    url = new URL(locator);
  } catch {
    return redact(locator);
  }
  if (!url.host && !locator.includes('//')) return redact(locator);
  url.password = '';
  if (!keepUser) url.username = '';
  for (const name of [...url.searchParams.keys()]) {
    if (SECRET_KEY.test(name) || name === 'p') url.searchParams.delete(name);
  }
  return redact(url.toString());
}
