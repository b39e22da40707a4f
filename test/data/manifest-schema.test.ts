import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { SCHEMA_FILE, schemaText } from '../../scripts/manifest-schema.ts';

describe('docs/manifest.schema.json', () => {
  it('equals the JSON Schema generated from the zod schema (regenerate: npx tsx scripts/manifest-schema.ts)', async () => {
    expect(await readFile(SCHEMA_FILE, 'utf8')).toBe(schemaText());
  });

  it('describes both manifest forms and every clip field the loader reads', () => {
    const schema = JSON.parse(schemaText());
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.anyOf).toHaveLength(2);
    const [object, array] = schema.anyOf;
    expect(object.required).toEqual(['stages', 'clips']);
    expect(object.additionalProperties).toBe(false);
    expect(array.type).toBe('array');
    const clip = schema.$defs.clip;
    expect(Object.keys(clip.properties)).toEqual([
      'key',
      'video',
      'frames',
      'score',
      'actionType',
      'difficulty',
      'judgeScores',
      'transitions',
      'transitionsUnit',
      'start',
      'end',
      'fps',
      'split',
    ]);
    expect(clip.required.sort()).toEqual(['actionType', 'score', 'split', 'transitions']);
    expect(clip.properties.split.enum).toEqual(['train', 'test']);
  });
});
