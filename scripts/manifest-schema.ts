/**
 * Writes docs/manifest.schema.json: the JSON Schema of a manifest, generated from the zod schema the
 * loader uses (src/data/manifest.ts `manifestJsonSchema`). test/data/manifest-schema.test.ts fails when
 * the committed file differs from what this writes; run it after changing the schema:
 *
 *   npx tsx scripts/manifest-schema.ts
 */
import path from 'node:path';
import { manifestJsonSchema } from '../src/data/manifest.ts';
import { writeFileAtomic } from '../src/io/atomic.ts';

export const SCHEMA_FILE = path.resolve(import.meta.dirname, '../docs/manifest.schema.json');

/** The file's text: the schema as 2-space JSON and a final newline. */
export function schemaText(): string {
  return `${JSON.stringify(manifestJsonSchema(), null, 2)}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await writeFileAtomic(SCHEMA_FILE, schemaText());
  process.stdout.write(`wrote ${SCHEMA_FILE}\n`);
}
