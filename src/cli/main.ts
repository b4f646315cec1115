import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inspect, parseArgs } from 'node:util';
import { ConfigError, describeError, EarthMemoryError } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { loadConfigFile } from '../config/load.js';
import { formatTimeUs } from '../records/time.js';
import { writeSample } from '../records/sample.js';
import { createCatalog } from '../pipeline/connectors.js';
import { findRow, openStorage, readRasterWindow, readStored, rehydrateStored } from '../pipeline/read.js';
import { runPipeline } from '../pipeline/run.js';
import { pipelineSchema, resolvedFormats, type PipelineConfig } from '../pipeline/schema.js';
import { progressLine, summaryText } from './format.js';
import { replayCommand, statusCommand } from './kafka-commands.js';
import { produceCommand, produceUsage } from './produce.js';
import { migrateCommand, migrateUsage } from './migrate.js';
import { ageCommand, ageUsage } from './age.js';
import { runAgingPass } from '../aging/planner.js';
import { collectGarbage } from '../aging/gc.js';
import { parseDuration } from '../config/units.js';
import { isParseArgsError, UsageError, wantsHelp } from './usage.js';

/** Each command's usage lines, in the order `earthmem --help` lists them. */
const commandUsage: Record<string, string> = {
  run: `  earthmem run PIPELINE.yaml                 run until the source is exhausted (SIGINT/SIGTERM drains)
`,
  validate: `  earthmem validate PIPELINE.yaml            lint a pipeline file; exit 1 on errors
`,
  catalog: `  earthmem catalog ls PIPELINE.yaml [--json] [--memory-type T] [--tier T] [--dataset D]
                                             what is stored where (--json: one object per line)
`,
  produce: `  earthmem produce --brokers B --topic T [--key-field F] [--compression none|gzip|lz4|zstd]
                  [--ssl | --ca-file F] [--sasl M --username U] FILE…
                                             push NDJSON observations to a Kafka topic
`,
  replay: `  earthmem replay PIPELINE.yaml --from-beginning | --from-timestamp T | --offsets JSON
                  [--until T | --until-offsets JSON] [--group G]
                                             backfill: re-read a topic range through the pipeline
`,
  status: `  earthmem status PIPELINE.yaml [--json]     lag per partition and what each tier holds
`,
  get: `  earthmem get PIPELINE.yaml KEY [--tier T] [--out FILE] [--bbox MINX,MINY,MAXX,MAXY]
                                             read a stored object back (decrypted; rows of a
                                             record store as NDJSON) to FILE or stdout; with
                                             --bbox (in the scene's CRS), a COG of that window
                                             of a raster object, read with range requests
`,
  rehydrate: `  earthmem rehydrate PIPELINE.yaml KEY [--tier T] [--to hot|cool|cold] [--priority Standard|High]
                                             bring an archived object (Azure archive tier) online
`,
  migrate: `  earthmem migrate PIPELINE.yaml [JOB.yaml] [--dry-run] [--plan HASH] [job options]
  earthmem migrate status|cancel PIPELINE.yaml ID [--json]
                                             move objects between tiers: copy, verify, switch, delete
`,
  age: `  earthmem age PIPELINE.yaml [--once] [--dry-run] [--now T] [--json]
  earthmem age status PIPELINE.yaml [--json]
                                             run the aging policies (every aging.interval, or once)
`,
  gc: `  earthmem gc PIPELINE.yaml [--delete] [--grace 1h] [--json]
                                             list (or delete) stored objects no catalog row points at
`,
  generate: `  earthmem generate FILE [--points N] [--features N] [--stations N] [--seed S] [--bad-copies K]
                                             write a deterministic sample NDJSON file
`,
  demo: `  earthmem demo                              what npm start runs: generate the sample if missing,
                                             then run the embedded default (pipelines/demo.yaml)
`,
};

const usage = `earthmem — keeps an Earth memory: observations → tiered GeoParquet with a catalog

Usage:
${Object.values(commandUsage).join('')}  earthmem --version | --help | COMMAND --help

Exit codes: 0 success, 1 failure, 2 usage. EARTHMEM_DEBUG=1 prints stacks.
`;

const usageOf = (command: string) => (command === 'produce' ? produceUsage : command === 'migrate' ? migrateUsage : command === 'age' ? ageUsage : `Usage:\n${commandUsage[command]}`);

/** The package root: bin/, dist/ and pipelines/ are relative to it, wherever the CLI is run from. */
const packageRoot = fileURLToPath(new URL('../../../', import.meta.url));

function version(): string {
  return (JSON.parse(readFileSync(`${packageRoot}package.json`, 'utf8')) as { version: string }).version;
}

function load(file: string | undefined): PipelineConfig {
  if (!file) throw new UsageError('missing PIPELINE.yaml');
  return loadConfigFile(file, pipelineSchema).config;
}

async function run(config: PipelineConfig): Promise<number> {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (name: string) => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`\n${name} again: exiting without draining\n`);
      process.exit(130);
    }
    process.stderr.write(`\n${name}: draining (flushing open batches, committing)…\n`);
    controller.abort(`draining after ${name}`);
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  const tty = process.stderr.isTTY === true;
  const log = (line: string) => process.stderr.write(`${tty ? '\r\x1b[2K' : ''}${redact(line)}\n`);
  const aging = agingStream(config, log);
  const summary = await runPipeline(config, {
    signal: controller.signal,
    onProgress: tty ? (s) => process.stderr.write(`\r\x1b[2K${progressLine(s)}`) : undefined,
    log,
  }).finally(() => aging.stop());
  if (tty) process.stderr.write('\r\x1b[2K');
  process.stdout.write(`${redact(summaryText(summary))}\n`);
  return summary.complete ? 0 : 1;
}

/**
 * The aging stream inside `earthmem run`: a pass every aging.interval (the first one interval
 * after start), on its own connections; a failed pass is logged, the next one tries again.
 * `stop` waits for a running pass to end.
 */
function agingStream(config: PipelineConfig, log: (line: string) => void): { stop(): Promise<void> } {
  const aging = config.aging;
  if (aging === undefined) return { stop: async () => undefined };
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(async () => {
      const storage = await openStorage(config);
      try {
        await runAgingPass(storage, aging, { log });
      } finally {
        await storage.close();
      }
    }).catch((error: unknown) => log(`aging pass failed: ${describeError(error)}`));
  }, aging.interval);
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

function validate(file: string | undefined): number {
  const config = load(file);
  process.stdout.write(`${file}: ok\n`);
  // The format each tier stores each kind of record in, and where that came from.
  for (const line of resolvedFormats(config)) process.stdout.write(`  ${line}\n`);
  return 0;
}

async function catalogLs(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      'memory-type': { type: 'string' },
      tier: { type: 'string' },
      dataset: { type: 'string' },
    },
  });
  if (positionals[0] !== 'ls') throw new UsageError(`unknown catalog command: ${positionals[0] ?? '(none)'}`);
  const config = load(positionals[1]);
  const catalog = await createCatalog(config.catalog);
  // Rows name where objects are (`uri`): shown through redact like every other output.
  const write = (text: string) => process.stdout.write(redact(text));
  try {
    const rows = await catalog.list({ memoryType: values['memory-type'], tier: values.tier, dataset: values.dataset });
    if (values.json) {
      for (const r of rows) {
        write(
          `${JSON.stringify({
            key: r.key,
            uri: r.uri,
            tier: r.tier,
            backend: r.backend,
            memory_type: r.memoryType,
            dataset: r.dataset,
            kind: r.kind,
            format: r.format,
            codec: r.codec,
            codec_level: r.codecLevel,
            rows: r.rows,
            bytes: r.bytes,
            sha256: r.sha256,
            time_min: formatTimeUs(r.timeMinUs),
            time_max: formatTimeUs(r.timeMaxUs),
            bbox: r.bbox,
            state: r.state,
            provenance: r.provenance,
            ...(r.raster == null
              ? {}
              : {
                  scene_id: r.raster.sceneId, variable: r.raster.variable, epsg: r.raster.epsg, width: r.raster.width, height: r.raster.height,
                  dtype: r.raster.dtype, bands: r.raster.bands, nodata: r.raster.nodata, overviews: r.raster.overviews, bbox_native: r.raster.bboxNative,
                  partial: r.raster.partial, missing_blocks: r.raster.missingBlocks, tiles: r.raster.tiles,
                }),
            created_at: r.createdAt,
            last_accessed_at: r.lastAccessedAt,
            access_count: r.accessCount,
            tier_since: r.tierSince,
          })}\n`,
        );
      }
    } else {
      write('TIER     MEMORY TYPE          DATASET        ROWS      BYTES  TIME RANGE                                   KEY\n');
      for (const r of rows) {
        write(
          `${r.tier.padEnd(8)} ${r.memoryType.padEnd(20)} ${r.dataset.padEnd(12)} ${String(r.rows).padStart(7)} ${String(r.bytes).padStart(10)}  ${formatTimeUs(r.timeMinUs).slice(0, 19)} – ${formatTimeUs(r.timeMaxUs).slice(0, 19)}  ${r.key}\n`,
        );
      }
      write(`${rows.length} objects\n`);
    }
  } finally {
    await catalog.close();
  }
  return 0;
}

async function gcCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { delete: { type: 'boolean', default: false }, grace: { type: 'string', default: '1h' }, json: { type: 'boolean', default: false } },
  });
  const graceMs = parseDuration(values.grace!);
  if (graceMs === undefined) throw new UsageError(`bad --grace: ${values.grace} (a duration such as 1h or "30 min")`);
  const storage = await openStorage(load(positionals[0]));
  try {
    const orphans = await collectGarbage(storage, { delete: values.delete, graceMs });
    for (const o of orphans) {
      process.stdout.write(
        values.json
          ? `${JSON.stringify(o)}\n`
          : `${o.tier.padEnd(8)} ${String(o.bytes ?? '').padStart(10)}  ${o.action.padEnd(10)} ${o.incomplete ? '(unfinished write) ' : ''}${o.key}\n`,
      );
    }
    if (!values.json) {
      const bytes = orphans.reduce((n, o) => n + (o.bytes ?? 0), 0);
      process.stdout.write(`${orphans.length} objects no catalog row points at (${bytes} bytes)${values.delete ? '' : '; --delete removes those older than the grace period'}\n`);
    }
    return 0;
  } finally {
    await storage.close();
  }
}

async function generate(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      points: { type: 'string', default: '120000' },
      features: { type: 'string', default: '600' },
      stations: { type: 'string', default: '60' },
      seed: { type: 'string', default: '42' },
      'bad-copies': { type: 'string', default: '3' },
    },
  });
  const file = positionals[0];
  if (!file) throw new UsageError('missing FILE');
  const count = (flag: 'points' | 'features' | 'stations' | 'seed' | 'bad-copies', min: number) => {
    const text = values[flag]!;
    if (!/^\d+$/.test(text) || Number(text) < min) throw new UsageError(`bad --${flag}: ${text} (an integer ≥ ${min})`);
    return Number(text);
  };
  const result = await writeSample(file, {
    points: count('points', 0),
    features: count('features', 0),
    stations: count('stations', 1),
    seed: count('seed', 0),
    badCopies: count('bad-copies', 0),
  });
  process.stdout.write(`${file}: ${result.lines} lines (${result.valid} valid records, ${result.bad} bad)\n`);
  return 0;
}

async function getCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { tier: { type: 'string' }, out: { type: 'string' }, bbox: { type: 'string' } } });
  const [file, key] = positionals;
  if (!key) throw new UsageError('get needs PIPELINE.yaml and KEY');
  let bbox: [number, number, number, number] | undefined;
  if (values.bbox !== undefined) {
    const parts = values.bbox.split(',').map((p) => Number(p.trim()));
    if (parts.length !== 4 || parts.some((p) => !Number.isFinite(p))) throw new UsageError(`--bbox ${values.bbox}: expected four numbers minx,miny,maxx,maxy`);
    bbox = parts as [number, number, number, number];
  }
  const storage = await openStorage(load(file));
  try {
    if (bbox !== undefined) {
      const read = await readRasterWindow(storage, await findRow(storage, key, values.tier), bbox);
      if (values.out) writeFileSync(values.out, read.bytes);
      else process.stdout.write(read.bytes);
      const { x, y, width, height } = read.window;
      process.stderr.write(`${key}: window ${width} × ${height} at (${x}, ${y}), ${read.bytes.byteLength} bytes${values.out ? ` → ${values.out}` : ''}; fetched ${read.fetched} of ${read.objectBytes} bytes\n`);
      return 0;
    }
    const content = await readStored(storage, await findRow(storage, key, values.tier));
    const bytes =
      content.kind === 'bytes' ? content.bytes : Buffer.from(content.records.map((r) => JSON.stringify(r)).join('\n') + (content.records.length ? '\n' : ''));
    if (values.out) writeFileSync(values.out, bytes);
    else process.stdout.write(bytes);
    if (values.out) process.stderr.write(`${key}: ${bytes.byteLength} bytes → ${values.out}\n`);
    return 0;
  } finally {
    await storage.close();
  }
}

async function rehydrateCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { tier: { type: 'string' }, to: { type: 'string', default: 'hot' }, priority: { type: 'string', default: 'Standard' } },
  });
  const [file, key] = positionals;
  if (!key) throw new UsageError('rehydrate needs PIPELINE.yaml and KEY');
  if (!['hot', 'cool', 'cold'].includes(values.to!)) throw new UsageError('--to must be hot, cool or cold');
  if (!['Standard', 'High'].includes(values.priority!)) throw new UsageError('--priority must be Standard or High');
  const storage = await openStorage(load(file));
  try {
    await rehydrateStored(storage, await findRow(storage, key, values.tier), values.to as 'hot', values.priority as 'Standard');
    process.stderr.write(`${key}: rehydration to ${values.to} requested (${values.priority}); reads work once it completes\n`);
    return 0;
  } finally {
    await storage.close();
  }
}

/**
 * `npm start`: the embedded default. Its pipeline ships with the package; its data (the sample
 * input, the tiers, the catalog) live under the current directory. The sample is generated once,
 * where the pipeline reads it, so a second run replays the same input onto the same keys.
 */
async function demo(): Promise<number> {
  const config = loadConfigFile(`${packageRoot}pipelines/demo.yaml`, pipelineSchema).config;
  if (config.source.type === 'file' && !/[*?[]/.test(config.source.path) && !existsSync(config.source.path)) {
    process.stderr.write(`generating the sample ${config.source.path} (deterministic, first run only)…\n`);
    await generate([config.source.path]);
  }
  return run(config);
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command !== undefined && Object.hasOwn(commandUsage, command) && wantsHelp(rest)) {
      process.stdout.write(usageOf(command));
      return 0;
    }
    switch (command) {
      case 'run':
        return await run(load(rest[0]));
      case 'validate':
        return validate(rest[0]);
      case 'catalog':
        return await catalogLs(rest);
      case 'produce':
        return await produceCommand(rest);
      case 'replay':
        return await replayCommand(load(rest[0]), rest[0]!, rest.slice(1));
      case 'status':
        return await statusCommand(load(rest[0]), rest.slice(1));
      case 'get':
        return await getCommand(rest);
      case 'rehydrate':
        return await rehydrateCommand(rest);
      case 'migrate':
        return await migrateCommand(rest, load);
      case 'gc':
        return await gcCommand(rest);
      case 'age':
        return await ageCommand(rest, load);
      case 'generate':
        return await generate(rest);
      case 'demo':
        return await demo();
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(usage);
        return 0;
      case '--version':
      case '-V':
      case 'version':
        process.stdout.write(`earthmem ${version()}\n`);
        return 0;
      case undefined:
        throw new UsageError('missing COMMAND');
      default:
        throw new UsageError(`unknown command: ${command}`);
    }
  } catch (error) {
    if (error instanceof UsageError || isParseArgsError(error)) {
      const text = error instanceof UsageError && error.usage !== undefined ? error.usage : command && Object.hasOwn(commandUsage, command) ? usageOf(command) : usage;
      process.stderr.write(`earthmem${command && Object.hasOwn(commandUsage, command) ? ` ${command}` : ''}: ${redact(error.message)}\n\n${text}`);
      return 2;
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`earthmem: ${redact(error.message)}\n`);
      return 1;
    }
    const retriable = error instanceof EarthMemoryError && error.retriable ? ' (retriable)' : '';
    process.stderr.write(`earthmem: ${describeError(error)}${retriable}\n`);
    // Stacks and causes as Node prints them: third-party errors may hold connection strings.
    if (process.env.EARTHMEM_DEBUG) process.stderr.write(`${redact(inspect(error, { depth: 6 }))}\n`);
    return 1;
  }
}
