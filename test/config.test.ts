import { describe, expect, it } from 'vitest';
import { configKeys, resolveConfig } from '../src/config.ts';
import { McoreError } from '../src/errors.ts';
import { expectMcoreError } from './helpers/errors.ts';

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
      reconWeight: 0,
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

describe('resolveConfig: ranges and --set keys', () => {
  it('refuses sizes out of range with the key at fault', () => {
    for (const [set, key] of [
      ['model.imageSize=100000', 'model.imageSize'],
      ['model.frames=2', 'model.frames'],
      ['train.epochs=0', 'train.epochs'],
      ['train.lr=1e300', 'train.lr'],
      ['train.batchPairs=1.5', 'train.batchPairs'],
    ] as const) {
      const err = (() => {
        try {
          resolveConfig({}, [set]);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(McoreError);
      expect((err as McoreError).code).toBe('E_CONFIG');
      expect((err as McoreError).message).toContain(`at ${key}`);
    }
    expect(resolveConfig({}, ['model.imageSize=1024']).model.imageSize).toBe(1024);
  });

  it('accepts only known keys and names the known ones', () => {
    expectMcoreError(
      () => resolveConfig({}, ['train.epoch=5']),
      'E_CONFIG',
      "unknown key 'train.epoch'",
      'known under train: mode, epochs,',
    );
    expectMcoreError(() => resolveConfig({}, ['train.epochs.x=5']), 'E_CONFIG', "'train.epochs' is a value");
    expect(configKeys()).toContain('model.backbone.widths');
    expect(configKeys()).toContain('loss.tau');
  });

  it('never touches Object.prototype through --set or a config file', () => {
    for (const set of [
      '__proto__.toString=1',
      '__proto__.polluted=1',
      'constructor.prototype.polluted=1',
      'model.__proto__.polluted=1',
      'train.prototype=1',
    ]) {
      expectMcoreError(() => resolveConfig({}, [set]), 'E_CONFIG', 'prototype');
    }
    expectMcoreError(
      () => resolveConfig(JSON.parse('{"model": {"__proto__": {"polluted": 1}}}'), []),
      'E_CONFIG',
      "'__proto__' is not a configuration key",
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.hasOwn(Object.prototype, 'polluted')).toBe(false);
    expect(String({})).toBe('[object Object]');
  });
});
