"""The Kafka peer of `npm run bench:kafka`: what a user would write instead of earth-memory.

A confluent-kafka group consumer reads the topic from the beginning, parses each message as
JSON, and every BATCH records builds a pyarrow table and writes it as Parquet (zstd) to OUT_DIR,
then commits the offsets (at-least-once, like earth-memory). No validation, no geometry, no
catalog: a floor for the work, not the same work.

Usage: kafka_pyarrow.py BROKERS TOPIC GROUP RECORDS OUT_DIR [BATCH]. Prints one JSON line:
records read, files and bytes written, wall seconds from before subscribing to the last commit,
and this process's peak RSS (KiB).
"""
import json
import os
import resource
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Consumer, KafkaException

brokers, topic, group, records, out_dir = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
batch_size = int(sys.argv[6]) if len(sys.argv) > 6 else 100_000
os.makedirs(out_dir, exist_ok=True)

consumer = Consumer({
    "bootstrap.servers": brokers,
    "group.id": group,
    "auto.offset.reset": "earliest",
    "enable.auto.commit": False,
})
started = time.perf_counter()
consumer.subscribe([topic])
rows, count, files, written = [], 0, 0, 0


def flush():
    global rows, files, written
    path = os.path.join(out_dir, f"part-{files:05d}.parquet")
    pq.write_table(pa.Table.from_pylist(rows), path, compression="zstd")
    written += os.path.getsize(path)
    files += 1
    rows = []
    consumer.commit(asynchronous=False)


deadline = started + 600
while count < records:
    if time.perf_counter() > deadline:
        sys.exit(f"read only {count} of {records} records in 600 s")
    for message in consumer.consume(num_messages=10_000, timeout=1.0):
        if message.error():
            raise KafkaException(message.error())
        rows.append(json.loads(message.value()))
        count += 1
        if len(rows) >= batch_size:
            flush()
if rows:
    flush()
seconds = time.perf_counter() - started
consumer.close()
print(json.dumps({"records": count, "files": files, "bytes": written, "seconds": seconds, "maxRssKiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
