import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config.ts';
import { McoreError } from '../src/errors.ts';

describe('resolveConfig', () => {
  it('fills every default from the tiny variant', () => {
    const cfg = resolveConfig();
    expect(cfg.variant).toBe('mcore-tiny');
    expect(cfg.model.backbone.widths).toEqual([8, 16, 24, 32]);
    expect(cfg.loss).toEqual({
      contrastive: 'token',
      tasWeights: [1, 2],
      contWeight: 10,
      aqaWeight: 1,
      qualityWeight: 0,
    });
    expect(cfg.train.lr).toBe(1e-3);
    expect(cfg.eval.exemplars).toBe(10);
  });

  it('takes the full variant and --set overrides (JSON values and bare words)', () => {
    const cfg = resolveConfig({ variant: 'mcore-regnety002' }, [
      'train.epochs=3',
      'loss.contrastive=stage',
      'model.decoder.layers=2',
    ]);
    expect(cfg.model.backbone.widths).toEqual([24, 56, 152, 368]);
    expect(cfg.train.epochs).toBe(3);
    expect(cfg.loss.contrastive).toBe('stage');
    expect(cfg.model.decoder.layers).toBe(2);
  });

  it('reports every problem with its dotted path at once', () => {
    try {
      resolveConfig({ train: { epochs: -1, bogus: 1 } }, ['loss.contrastive=maybe']);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(McoreError);
      const msg = (e as McoreError).message;
      expect(msg).toContain('train.epochs');
      expect(msg).toContain('bogus');
      expect(msg).toContain('loss.contrastive');
      expect((e as McoreError).code).toBe('E_CONFIG');
    }
  });

  it('rejects an unknown variant and a malformed override', () => {
    expect(() => resolveConfig({ variant: 'resnet' })).toThrow(/unknown model variant 'resnet'/);
    expect(() => resolveConfig({}, ['epochs'])).toThrow(/key=value/);
    expect(() => resolveConfig({}, ['loss.tasWeights=[1,2,3]'])).toThrow(/one weight per transition/);
  });
});
