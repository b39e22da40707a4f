/**
 * The rehearsal's backbone: RegNetY-200MF + GSM (`mcore-regnety002`'s backbone, 2,815,598 parameters)
 * with seeded random weights, as safetensors in torch layout, the file `mcore features --backbone` and
 * `mcore train --backbone` read. ImageNet weights (timm's `regnety_002`, imported with `mcore import`)
 * are not on these machines; random weights cost the same to run. The GSM gates and BatchNorm statistics
 * are randomised too (their init is the identity and unit statistics, which would be a special case).
 *
 *   npx tsx bench/scale/backbone.ts OUT.safetensors
 */
import { useBackend } from '../../src/backend.ts';
import { modelConfig } from '../../src/model/config.ts';
import { disposeParams, initParams } from '../../src/model/params.ts';
import { backboneSpecs } from '../../src/model/regnet.ts';
import { saveWeights } from '../../src/model/weights.ts';
import { createRng } from '../../src/rng.ts';
import { randomizeIdentityParts } from '../random-params.ts';

const out = process.argv[2];
if (!out) throw new Error('usage: backbone.ts OUT.safetensors');
await useBackend('cpu');
const specs = backboneSpecs(modelConfig('mcore-regnety002').backbone, 'backbone');
const params = initParams(specs, createRng(0));
randomizeIdentityParts(params, specs);
await saveWeights(out, params, specs, { note: 'mcore bench/scale: random RegNetY-200MF + GSM (seed 0)' });
const count = Object.values(params).reduce((s, p) => s + p.size, 0);
disposeParams(params);
process.stdout.write(`wrote ${out}: ${Object.keys(specs).length} tensors, ${count} values\n`);
