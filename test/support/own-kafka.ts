/**
 * A Kafka broker of the test's own (KRaft, PLAINTEXT, one node) on free ports in a temp folder,
 * with the jars of the shared `.services/cache` (read-only): a fault test can kill it and start it
 * again without touching the shared broker.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { openSync, writeFileSync } from 'node:fs';
import { freePort } from './relay.js';
import { join, resolve } from 'node:path';
import { kcat } from './kafka.js';
import { tempDir } from './fixtures.js';

const JARS = resolve(process.env.EARTHMEM_MAIN ?? '/work/main', '.services/cache/kafka-4.1.1');

export interface OwnKafka {
  brokers: string;
  /** SIGKILL: the broker is gone at once, its clients see connection refused. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and data, and waits until it answers. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export async function ownKafka(): Promise<OwnKafka> {
  const dir = tempDir('own-kafka');
  const [port, controller] = [await freePort(), await freePort()];
  const props = join(dir, 'server.properties');
  writeFileSync(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controller}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      `log.dirs=${join(dir, 'data')}`,
      'num.partitions=2',
      'default.replication.factor=1',
      'min.insync.replicas=1',
      'auto.create.topics.enable=true',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'transaction.state.log.num.partitions=1',
      'share.coordinator.state.topic.replication.factor=1',
      'share.coordinator.state.topic.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      // The cleaner's default 128 MiB buffer does not fit the small heap; nothing here is compacted.
      'log.cleaner.enable=false',
      '',
    ].join('\n'),
  );
  const jvm = ['-Xms128m', '-Xmx256m', '-XX:+UseG1GC', `-Dkafka.logs.dir=${dir}`, '-cp', `${JARS}/*`];
  const clusterId = randomBytes(16).toString('base64url').replace(/^[-_]/, 'A').slice(0, 22);
  execFileSync('java', [...jvm, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', props], { stdio: 'ignore' });
  const brokers = `127.0.0.1:${port}`;
  let pid: number | undefined;
  const start = async () => {
    const out = openSync(join(dir, 'out.log'), 'a');
    // detached: its own session (setsid), so a signal to the test's process group leaves it alone.
    const child = spawn('java', [...jvm, 'kafka.Kafka', props], { stdio: ['ignore', out, out], detached: true });
    child.unref();
    pid = child.pid;
    const deadline = Date.now() + 90_000;
    for (;;) {
      try {
        if (execFileSync(kcat(), ['-b', brokers, '-L', '-m', '3'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).includes('broker 1 at')) return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`own Kafka broker on ${brokers} did not start within 90 s: see ${join(dir, 'out.log')}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  const end = async (signal: NodeJS.Signals) => {
    if (pid === undefined) return;
    const target = pid;
    pid = undefined;
    try {
      process.kill(target, signal);
    } catch {
      return; // already gone
    }
    for (let i = 0; i < 120; i++) {
      try {
        process.kill(target, 0);
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    process.kill(target, 'SIGKILL');
  };
  // A test process that ends without its after() hook does not leave the broker behind.
  process.once('exit', () => {
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
  });
  await start();
  return { brokers, start, kill: () => end('SIGKILL'), stop: () => end('SIGTERM') };
}

