import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/load.js';
import { pipelineSchema, type PipelineConfig } from '../../src/pipeline/schema.js';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `earthmem-${prefix}-`));
}

/** The demo pipeline pointed at a test's own input and output folder. */
export function demoConfig(input: string, data: string, edit: (yaml: string) => string = (y) => y): PipelineConfig {
  const text = edit(readFileSync('pipelines/demo.yaml', 'utf8'));
  return parseConfigText(text, 'pipelines/demo.yaml', pipelineSchema, { EARTHMEM_DEMO_INPUT: input, EARTHMEM_DATA: data });
}
