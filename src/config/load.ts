import { readFileSync } from 'node:fs';
import { Document, isMap, isScalar, isSeq, LineCounter, parseDocument, Scalar, visit, type Node } from 'yaml';
import type { z } from 'zod';
import { ConfigError, formatConfigIssue, type ConfigIssue } from '../core/errors.js';
import { registerConfigSecrets } from '../core/redact.js';
import { interpolate } from './interpolate.js';

export interface LoadedConfig<T> {
  file: string;
  config: T;
}

/**
 * Reads a YAML pipeline file, interpolates `${VAR}` in every scalar and validates it against
 * `schema`. All problems are collected and thrown together as one ConfigError whose issues name
 * the file, the key path, the line and what was expected — never the value (it may be a secret).
 */
export function loadConfigFile<S extends z.ZodTypeAny>(
  file: string,
  schema: S,
  env: NodeJS.ProcessEnv = process.env,
): LoadedConfig<z.output<S>> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new ConfigError(`cannot read pipeline file ${file}`, [{ file, path: '', message: 'file not readable' }], { cause });
  }
  return { file, config: parseConfigText(text, file, schema, env) };
}

export function parseConfigText<S extends z.ZodTypeAny>(
  text: string,
  file: string,
  schema: S,
  env: NodeJS.ProcessEnv = process.env,
): z.output<S> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const where = (offset: number | undefined) => {
    if (offset === undefined) return {};
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const issues: ConfigIssue[] = [];
  for (const error of [...doc.errors, ...doc.warnings]) {
    issues.push({ file, path: '', message: `YAML: ${error.message.split('\n')[0]}`, ...where(error.pos[0]) });
  }
  if (issues.length > 0) throw configError(file, issues);
  return parseConfigDocument(doc, file, schema, env, where);
}

/**
 * A configuration given as a value (the library's typed objects) instead of YAML text: the same
 * interpolation, schema and messages as a pipeline file, with `label` where a file name would be.
 */
export function parseConfigValue<S extends z.ZodTypeAny>(value: unknown, label: string, schema: S, env: NodeJS.ProcessEnv = process.env): z.output<S> {
  return parseConfigDocument(new Document(value), label, schema, env, () => ({}));
}

function parseConfigDocument<S extends z.ZodTypeAny>(
  doc: Document,
  file: string,
  schema: S,
  env: NodeJS.ProcessEnv,
  where: (offset: number | undefined) => { line?: number; column?: number },
): z.output<S> {
  const issues: ConfigIssue[] = [];
  interpolateDocument(doc, file, env, issues, where);
  // Schema issues at a path whose variable is missing would only repeat that problem.
  const unset = new Set(issues.map((i) => i.path));

  const value: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  // Before validation: a config that fails still names its secrets to the masks of later output.
  registerConfigSecrets(value);
  const result = schema.safeParse(value);
  if (result.success && issues.length === 0) return result.data;
  if (result.success) throw configError(file, issues);
  for (const issue of flattenUnions(result.error.issues)) {
    const path = [...issue.path];
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const keyPath = [...path, key];
        issues.push({ file, path: keyPath.join('.'), message: 'unknown key', ...where(nodeAt(doc, keyPath, true)?.range?.[0]) });
      }
      continue;
    }
    if (issue.code === 'invalid_type') {
      message = issue.received === 'undefined' ? `required: expected ${issue.expected}` : `expected ${issue.expected}, got ${issue.received}`;
    } else if (issue.code === 'invalid_enum_value') {
      message = `expected one of ${issue.options.map((o) => JSON.stringify(o)).join(', ')}`;
    } else if (issue.code === 'invalid_union_discriminator') {
      message = `expected one of ${issue.options.map((o) => JSON.stringify(o)).join(', ')}`;
    }
    if (unset.has(path.join('.'))) continue;
    issues.push({ file, path: path.join('.'), message, ...where(nodeAt(doc, path, false)?.range?.[0]) });
  }
  throw configError(file, issues);
}

/**
 * A union's own "Invalid input" says nothing; report the issues of the branches whose type
 * matched (e.g. `compression: {algorithm: lzma}` → the bad algorithm, not "not a boolean").
 */
function flattenUnions(issues: readonly z.ZodIssue[]): z.ZodIssue[] {
  const out: z.ZodIssue[] = [];
  for (const issue of issues) {
    if (issue.code !== 'invalid_union') {
      out.push(issue);
      continue;
    }
    const branches = issue.unionErrors.map((e) => e.issues);
    const matched = branches.filter(
      (b) => !b.some((i) => i.code === 'invalid_type' && i.path.length === issue.path.length),
    );
    if (matched.length === 0) {
      const expected = [...new Set(branches.flatMap((b) => b.filter((i) => i.code === 'invalid_type').map((i) => (i as z.ZodInvalidTypeIssue).expected)))];
      out.push({ ...issue, message: `expected ${expected.join(' or ')}` });
    } else {
      out.push(...flattenUnions(matched.flat()));
    }
  }
  return out;
}

function configError(file: string, issues: ConfigIssue[]): ConfigError {
  const lines = issues.map(formatConfigIssue).join('\n  ');
  return new ConfigError(`invalid pipeline file ${file}:\n  ${lines}`, issues, { context: { file } });
}

/** The deepest node that exists along `path` (the key node itself when `keyNode`). */
function nodeAt(doc: Document, path: (string | number)[], keyNode: boolean): Node | undefined {
  let node: unknown = doc.contents;
  let found = node as Node | undefined;
  for (let i = 0; i < path.length; i++) {
    const segment = path[i]!;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === segment);
      if (!pair) break;
      if (keyNode && i === path.length - 1) return pair.key as Node;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      node = node.items[segment];
    } else break;
    if (node) found = node as Node;
  }
  return found;
}

function interpolateDocument(
  doc: Document,
  file: string,
  env: NodeJS.ProcessEnv,
  issues: ConfigIssue[],
  where: (offset: number | undefined) => { line?: number; column?: number },
): void {
  visit(doc, {
    Scalar(_key, node, path) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const { value, missing } = interpolate(node.value, env);
      if (missing.length > 0) {
        const keyPath = path
          .filter((p) => isMapPair(p))
          .map((p) => String((p as { key: Scalar }).key.value));
        for (const name of missing) {
          issues.push({
            file,
            path: keyPath.join('.'),
            message: `environment variable ${name} is not set (use \${${name}:-default} for a default)`,
            ...where(node.range?.[0]),
          });
        }
        return;
      }
      // An unquoted value that expands to nothing (`${S3_ENDPOINT:-}`) leaves its key out, so an
      // optional key can be switched off from the environment; quote it to keep an empty string.
      if (value === '' && node.type === Scalar.PLAIN) {
        node.value = UNSET;
        return;
      }
      // An unquoted `${PORT}` becomes the number, boolean or null it spells.
      const typed: unknown = node.type === Scalar.PLAIN ? parseDocument(value).toJS() : value;
      node.value = typeof typed === 'number' || typeof typed === 'boolean' ? typed : value;
    },
  });
  visit(doc, {
    Pair(_key, pair) {
      if (isScalar(pair.value) && pair.value.value === UNSET) return visit.REMOVE;
      return undefined;
    },
  });
}

const UNSET = '\u0000earthmem:unset\u0000';

function isMapPair(p: unknown): boolean {
  return typeof p === 'object' && p !== null && 'key' in p && 'value' in p && isScalar((p as { key: unknown }).key);
}
