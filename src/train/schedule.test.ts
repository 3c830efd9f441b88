import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lrAt, parseLrDrop, parseTransformSpec } from './schedule.ts';

describe('schedules', () => {
  it('parses transforms with method, amount and options', () => {
    assert.deepEqual(parseTransformSpec('widen@25:r2r:1.5'), { epoch: 25, spec: 'widen@25:r2r:1.5', transform: { transform: 'widen', method: 'r2r', factor: 1.5 } });
    assert.deepEqual(parseTransformSpec('deepen@25:r2r').transform, { transform: 'deepen', method: 'r2r' });
    assert.deepEqual(parseTransformSpec('deepen@0:r2r:2').transform, { transform: 'deepen', method: 'r2r', perStage: 2 });
    assert.deepEqual(parseTransformSpec('widen@0:netmorph').transform, { transform: 'widen', method: 'netmorph', factor: 1.5 });
    assert.deepEqual(parseTransformSpec('widen@3:RandPad:+8:at=conv1:init=he:scale=0.5:seed=4').transform,
      { transform: 'widen', method: 'random', add: 8, at: 'conv1', init: { method: 'he', scale: 0.5 }, seed: 4 });
    assert.deepEqual(parseTransformSpec('widen@0:netmorph:1.5:zero=consumers').transform, { transform: 'widen', method: 'netmorph', factor: 1.5, netmorphZeroSide: 'consumers' });
    assert.deepEqual(parseTransformSpec('deepen@1:net2net:after=relu1').transform, { transform: 'deepen', method: 'net2net', after: 'relu1' });
  });

  it('parses the transformer kinds: heads, mlp, width, and deepen by blocks', () => {
    assert.deepEqual(parseTransformSpec('heads@500:r2r:+2'), { epoch: 500, spec: 'heads@500:r2r:+2', transform: { transform: 'heads', method: 'r2r', add: 2 } });
    assert.deepEqual(parseTransformSpec('heads@500:netmorph:2:zero=consumers:at=h0_attn').transform, { transform: 'heads', method: 'netmorph', factor: 2, at: 'h0_attn', netmorphZeroSide: 'consumers' });
    assert.deepEqual(parseTransformSpec('mlp@500:r2r').transform, { transform: 'mlp', method: 'r2r', factor: 2 });
    assert.deepEqual(parseTransformSpec('mlp@9:net2net:+16:seed=3').transform, { transform: 'mlp', method: 'net2net', add: 16, seed: 3 });
    assert.deepEqual(parseTransformSpec('width@1500:net2net:2').transform, { transform: 'width', method: 'net2net', factor: 2 });
    assert.deepEqual(parseTransformSpec('deepen@1000:r2r:+1').transform, { transform: 'deepen', method: 'r2r', perStage: 1 });
    assert.deepEqual(parseTransformSpec('deepen@1000:netmorph:2:position=0:init=copy').transform, { transform: 'deepen', method: 'netmorph', perStage: 2, position: 0, init: { method: 'copy' } });
  });

  it('rejects malformed transforms with a message that shows the syntax', () => {
    for (const [s, why] of [['widen25', /cannot parse/], ['widen@1:foo', /unknown widen method 'foo'/], ['deepen@1:foo', /unknown deepen method 'foo'/], ['heads@1:r2r:+2:after=x', /unknown option 'after' for heads/], ['width@1:r2r:2:noise=0.1', /unknown option 'noise' for width/], ['mlp@1:r2r:+0', /positive integer/],
      ['widen@1:r2r:0.5', /factor must be > 1/], ['deepen@1:r2r:1.5', /positive integer/], ['widen@1:r2r:1.5:bogus=1', /unknown option 'bogus'/],
      ['widen@1:r2r:1.5:init=xavier', /init must be one of/], ['widen@1:r2r:1.5:seed=0.5', /seed must be an integer, got '0\.5'/],
      ['widen@1:r2r:1.5:noise=-1', /noise must be >= 0, got '-1'/], ['deepen@1:r2r:scale=-2', /scale must be >= 0/], ['widen@1:r2r:1.5:__proto__=1', /unknown option '__proto__'/]] as const) {
      assert.throws(() => parseTransformSpec(s), (e: unknown) => (e as { code?: string }).code === 'R2R_USAGE' && why.test((e as Error).message) && /widen@25:r2r:1\.5/.test((e as Error).message), s);
    }
  });

  it('learning-rate drops apply after their epoch', () => {
    const drops = [parseLrDrop('/5@25'), parseLrDrop('/2@30')];
    assert.equal(lrAt(1e-3, drops, 24), 1e-3);
    assert.equal(lrAt(1e-3, drops, 25), 1e-3 / 5);
    assert.equal(lrAt(1e-3, drops, 30), 1e-3 / 10);
    assert.equal(lrAt(3e-3, [parseLrDrop('/5@0')], 0), 3e-3 / 5);
    assert.throws(() => parseLrDrop('5@25'), /write \/<factor>@<epoch>/);
  });
});
