import { parseArgs } from 'node:util';
import type { Admin } from 'kafkajs';
import { connectChecked, createKafka, toSourceError } from '../../connectors/kafka/client.js';
import type { KafkaSourceConfig } from '../../connectors/kafka/config.js';
import { KafkaSource } from '../../connectors/kafka/source.js';
import { ConfigError } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { createCatalog } from '../pipeline/connectors.js';
import { runPipeline } from '../pipeline/run.js';
import type { PipelineConfig } from '../pipeline/schema.js';
import { formatBytes, progressLine, summaryText } from './format.js';
import { UsageError } from './usage.js';

type Offsets = Map<string, number>;
const key = (topic: string, partition: number) => `${topic}:${partition}`;

/** Connects an admin client; a refused certificate or password becomes a typed, non-retriable error. */
async function connect(source: KafkaSourceConfig, admin: Admin): Promise<void> {
  try {
    await connectChecked(source, admin);
  } catch (error) {
    throw toSourceError(error, { stage: 'admin' }, `connecting to Kafka at ${source.brokers.join(',')}`);
  }
}

function kafkaSourceOf(config: PipelineConfig, file: string): KafkaSourceConfig {
  if (config.source.type !== 'kafka') {
    throw new ConfigError(`${file}: this command needs a kafka source (source.type is ${config.source.type})`);
  }
  return config.source;
}

function parseTime(text: string, flag: string): number {
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms)) throw new UsageError(`${flag}: expected RFC 3339 or epoch milliseconds, got ${JSON.stringify(text)}`);
  return ms;
}

/** `{"topic": {"0": 42}}` → offsets per topic:partition. */
function parseOffsets(text: string, flag: string): Offsets {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UsageError(`${flag}: expected JSON like {"observations": {"0": 42, "1": 17}}`);
  }
  const out: Offsets = new Map();
  for (const [topic, partitions] of Object.entries(json as Record<string, Record<string, number>>)) {
    for (const [partition, offset] of Object.entries(partitions)) {
      if (!Number.isInteger(offset) || offset < 0) throw new UsageError(`${flag}: offset of ${topic}[${partition}] must be a non-negative integer`);
      out.set(key(topic, Number(partition)), offset);
    }
  }
  return out;
}

async function offsetsAt(admin: Admin, topics: string[], at: 'low' | 'high' | number): Promise<Offsets> {
  const out: Offsets = new Map();
  for (const topic of topics) {
    if (typeof at === 'number') {
      for (const p of await admin.fetchTopicOffsetsByTimestamp(topic, at)) out.set(key(topic, p.partition), Number(p.offset));
    } else {
      for (const p of await admin.fetchTopicOffsets(topic)) out.set(key(topic, p.partition), Number(at === 'low' ? p.low : p.high));
    }
  }
  return out;
}

/**
 * `earthmem replay PIPELINE.yaml --from-beginning | --from-timestamp T | --offsets JSON [--until T]`:
 * re-reads a range of the topics through the pipeline with its own consumer group (the live group
 * is never touched) and stops at the range's end. Objects already in the catalog are rebuilt
 * whole, so they land byte-identical at the same keys.
 */
export async function replayCommand(config: PipelineConfig, file: string, args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      'from-beginning': { type: 'boolean', default: false },
      'from-timestamp': { type: 'string' },
      offsets: { type: 'string' },
      until: { type: 'string' },
      'until-offsets': { type: 'string' },
      group: { type: 'string' },
    },
  });
  const source = kafkaSourceOf(config, file);
  const starts = [values['from-beginning'], values['from-timestamp'] !== undefined, values.offsets !== undefined].filter(Boolean).length;
  if (starts !== 1) throw new UsageError('replay needs exactly one of --from-beginning, --from-timestamp T, --offsets JSON');
  const log = (line: string) => process.stderr.write(`${redact(line)}\n`);
  const admin = createKafka(source, log).admin();
  await connect(source, admin);
  let start: Offsets;
  let stop: Offsets;
  const groupId = values.group ?? `${source.group_id}.replay.${Date.now()}`;
  try {
    const low = await offsetsAt(admin, source.topics, 'low');
    const high = await offsetsAt(admin, source.topics, 'high');
    if (values.offsets !== undefined) start = new Map([...low, ...parseOffsets(values.offsets, '--offsets')]);
    else if (values['from-timestamp'] !== undefined) start = await offsetsAt(admin, source.topics, parseTime(values['from-timestamp'], '--from-timestamp'));
    else start = low;
    if (values['until-offsets'] !== undefined) stop = new Map([...high, ...parseOffsets(values['until-offsets'], '--until-offsets')]);
    else if (values.until !== undefined) stop = await offsetsAt(admin, source.topics, parseTime(values.until, '--until'));
    else stop = high;
  } finally {
    await admin.disconnect();
  }
  const total = [...stop].reduce((n, [k, s]) => n + Math.max(0, s - (start.get(k) ?? 0)), 0);
  process.stderr.write(`replaying ${total.toLocaleString('en-US')} messages of ${source.topics.join(', ')} with group ${groupId}\n`);
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort('draining after SIGINT'));
  process.once('SIGTERM', () => controller.abort('draining after SIGTERM'));
  const tty = process.stderr.isTTY === true;
  const summary = await runPipeline(config, {
    source: new KafkaSource(source, { log, replay: { groupId, start, stop } }),
    signal: controller.signal,
    onProgress: tty ? (s) => process.stderr.write(`\r\x1b[2K${progressLine(s)}`) : undefined,
    log,
  });
  if (tty) process.stderr.write('\r\x1b[2K');
  process.stdout.write(`${redact(summaryText(summary))}\nalready durable (rebuilt or skipped): ${summary.recordsAlreadyDurable}\n`);
  const cleanup = createKafka(source, log).admin();
  await connect(source, cleanup);
  await cleanup.deleteGroups([groupId]).catch((error: Error) => log(`could not delete replay group ${groupId}: ${error.message}`));
  await cleanup.disconnect();
  return summary.complete ? 0 : 1;
}

/** `earthmem status PIPELINE.yaml [--json]`: lag per partition (Kafka) and what each tier holds. */
export async function statusCommand(config: PipelineConfig, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false } } });
  const partitions: { topic: string; partition: number; committed: number | null; high: number; lag: number }[] = [];
  if (config.source.type === 'kafka') {
    const source = config.source;
    const admin = createKafka(source, (line) => process.stderr.write(`${line}\n`)).admin();
    await connect(source, admin);
    try {
      const high = await offsetsAt(admin, source.topics, 'high');
      const low = await offsetsAt(admin, source.topics, 'low');
      const committed: Offsets = new Map();
      for (const t of await admin.fetchOffsets({ groupId: source.group_id, topics: source.topics })) {
        for (const p of t.partitions) if (Number(p.offset) >= 0) committed.set(key(t.topic, p.partition), Number(p.offset));
      }
      for (const [k, h] of [...high].sort()) {
        const [topic, partition] = [k.slice(0, k.lastIndexOf(':')), Number(k.slice(k.lastIndexOf(':') + 1))];
        const c = committed.get(k) ?? null;
        partitions.push({ topic, partition, committed: c, high: h, lag: h - (c ?? low.get(k) ?? 0) });
      }
    } finally {
      await admin.disconnect();
    }
  }
  const catalog = await createCatalog(config.catalog);
  const tiers = new Map<string, { objects: number; rows: number; bytes: number }>();
  try {
    for (const row of await catalog.list()) {
      const t = tiers.get(row.tier) ?? { objects: 0, rows: 0, bytes: 0 };
      t.objects++;
      t.rows += row.rows;
      t.bytes += row.bytes;
      tiers.set(row.tier, t);
    }
  } finally {
    await catalog.close();
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ partitions, tiers: Object.fromEntries(tiers) })}\n`);
    return 0;
  }
  if (partitions.length > 0) {
    process.stdout.write(`group ${(config.source as KafkaSourceConfig).group_id}\nTOPIC                PARTITION   COMMITTED        END        LAG\n`);
    for (const p of partitions) {
      process.stdout.write(`${p.topic.padEnd(20)} ${String(p.partition).padStart(9)} ${String(p.committed ?? '-').padStart(11)} ${String(p.high).padStart(10)} ${String(p.lag).padStart(10)}\n`);
    }
    process.stdout.write(`total lag ${partitions.reduce((n, p) => n + p.lag, 0)}\n\n`);
  }
  process.stdout.write('TIER      OBJECTS        ROWS       BYTES\n');
  for (const [tier, t] of tiers) {
    process.stdout.write(`${tier.padEnd(8)} ${String(t.objects).padStart(8)} ${String(t.rows).padStart(11)} ${formatBytes(t.bytes).padStart(11)}\n`);
  }
  return 0;
}
