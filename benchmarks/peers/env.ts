import { execFileSync } from 'node:child_process';

/**
 * The settings of the services a benchmark needs: taken from the environment when it already has
 * every `required` name (the services run, e.g. after `eval "$(scripts/services env --export)"`),
 * otherwise from `scripts/services up` + `env` for `services`, which start what is missing.
 */
export function serviceEnv(services: string[], required: string[]): Record<string, string> {
  if (required.every((name) => process.env[name] !== undefined && process.env[name] !== '')) {
    return Object.fromEntries(required.map((name) => [name, process.env[name]!]));
  }
  execFileSync('scripts/services', ['up', ...services], { stdio: 'inherit' });
  // Let bash undo its own quoting (connection strings carry ; and =).
  const dump = execFileSync('bash', ['-c', `eval "$(scripts/services env --export ${services.join(' ')})" && env -0`], { encoding: 'utf8' });
  const env: Record<string, string> = {};
  for (const entry of dump.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  const missing = required.filter((name) => !env[name]);
  if (missing.length > 0) throw new Error(`scripts/services env gave no ${missing.join(', ')}`);
  return env;
}

/**
 * Installs a peer's pinned Python package into the reference venv when `module` is missing or at
 * another version (`module.__version__` for most, confluent_kafka's `version()[0]`).
 */
export function ensurePeerPackage(python: string, module: string, pkg: string, version: string): void {
  const probe = `import ${module} as m; v = m.version()[0] if callable(getattr(m, 'version', None)) else m.__version__; raise SystemExit(0 if v == '${version}' else 1)`;
  try {
    execFileSync(python, ['-c', probe], { stdio: 'ignore' });
    return;
  } catch {
    // missing or another version
  }
  console.error(`[bench] installing ${pkg}==${version} into ${python}`);
  execFileSync(python, ['-m', 'pip', 'install', '--no-input', '-q', `${pkg}==${version}`], {
    stdio: 'inherit',
    env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' },
  });
}
