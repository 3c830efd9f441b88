import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PNG } from 'pngjs';
import { loadCheckpoint } from '../io/checkpoint.ts';
import type { Tensor } from '../ir/types.ts';
import { tensor } from '../ir/weights.ts';
import { COLORS, filterGrid, normalizedFilter, resolveCheckpoint, writeFilters, type CellLayout, type FilterGrid } from './filters.ts';
import { makeFilterCheckpoints } from './synthetic.ts';

const root = mkdtempSync(join(tmpdir(), 'r2r-filters-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** The filter image inside a cell (without its border), as RGB bytes, read from a decoded PNG. */
function cellPixels(png: PNG, c: CellLayout): number[] {
  const out: number[] = [];
  for (let y = c.y + 2; y < c.y + c.size[1] - 2; y++) for (let x = c.x + 2; x < c.x + c.size[0] - 2; x++) {
    const o = (y * png.width + x) * 4;
    out.push(png.data[o], png.data[o + 1], png.data[o + 2]);
  }
  return out;
}
const pixel = (png: PNG, x: number, y: number) => [...png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3)];

describe('filters PNG: widened vs trained (figure 4)', () => {
  let ck: ReturnType<typeof makeFilterCheckpoints>;
  let grid: FilterGrid;
  let png: PNG;
  const out = join(root, 'filters.png');
  before(() => {
    ck = makeFilterCheckpoints(root);
    grid = writeFilters([ck.widened, ck.trained], out, { teacher: ck.teacher });
    png = PNG.sync.read(readFileSync(out));
  });
  const cell = (panel: number, index: number) => grid.cells.find((c) => c.panel === panel && c.index === index)!;

  test('size: two panels of 32 filters, 7x7 upscaled to 56 px, 16 a row', () => {
    assert.equal(grid.old, 16);
    assert.equal(grid.scale, 8);
    assert.equal(png.width, grid.width);
    assert.equal(png.height, grid.height);
    assert.equal(grid.cells.length, 64);
    assert.deepEqual(cell(0, 0).size, [60, 60]);
    // 16 columns of 60 px with 6 px gaps and 8 px margins.
    assert.equal(png.width, 2 * 8 + 16 * 60 + 15 * 6);
    // Old and new filters on separate rows; the second panel below the first.
    assert.ok(cell(0, 16).y > cell(0, 15).y);
    assert.equal(cell(0, 16).x, cell(0, 0).x);
    assert.ok(cell(1, 0).y > cell(0, 31).y);
  });

  test('the old filters are the teacher\'s, drawn exactly as normalised', () => {
    const teacherKernel = readKernel(ck.widened);
    for (const f of [0, 5, 15]) {
      const { rgb } = normalizedFilter(teacherKernel, f);
      const px = cellPixels(png, cell(0, f));
      // Pixel (row 8*i + 3, col 8*j + 3) of the 56x56 image is tap (i, j).
      for (const [i, j] of [[0, 0], [3, 4], [6, 6]]) {
        const o = ((8 * i + 3) * 56 + (8 * j + 3)) * 3;
        assert.deepEqual(px.slice(o, o + 3), [...rgb.subarray((i * 7 + j) * 3, (i * 7 + j) * 3 + 3)], `filter ${f} tap ${i},${j}`);
      }
    }
  });

  test('new filters differ from the old ones and change with training', () => {
    // Right after the widen the new filters come in equal pairs and are not copies of old filters.
    assert.deepEqual(cellPixels(png, cell(0, 16)), cellPixels(png, cell(0, 24)));
    assert.notDeepEqual(cellPixels(png, cell(0, 16)), cellPixels(png, cell(0, 0)));
    // After training the pair symmetry is broken and every new filter looks different than before.
    assert.notDeepEqual(cellPixels(png, cell(1, 16)), cellPixels(png, cell(1, 24)));
    for (let f = 16; f < 32; f++) assert.notDeepEqual(cellPixels(png, cell(1, f)), cellPixels(png, cell(0, f)), `filter ${f}`);
  });

  test('old and new filters are visibly apart: grey vs orange borders, an orange line, a blue panel bar', () => {
    for (let f = 0; f < 32; f++) {
      const c = cell(0, f);
      assert.deepEqual(pixel(png, c.x, c.y), [...(f < 16 ? COLORS.oldBorder : COLORS.newBorder)], `filter ${f}`);
    }
    const lineY = cell(0, 16).y - 6 - 3;
    assert.deepEqual(pixel(png, png.width / 2, lineY + 1), [...COLORS.newLine]);
    const barY = cell(1, 0).y - (18 + 6) - 6 - 6; // above the second panel's label strip (18 px + gap)
    assert.deepEqual(pixel(png, 2, barY + 2), [...COLORS.panelBar]);
  });

  test('without --teacher, panels of different sizes take the smaller count as old', () => {
    const g = writeFilters([ck.teacher, ck.widened], join(root, 'tw.png'));
    assert.equal(g.old, 16);
    assert.equal(g.cells.filter((c) => c.isNew).length, 16);
    const same = writeFilters([ck.trained], join(root, 'one.png'));
    assert.equal(same.cells.filter((c) => c.isNew).length, 0);
    assert.equal(writeFilters([ck.trained], join(root, 'old.png'), { old: 20 }).cells.filter((c) => c.isNew).length, 12);
  });

  test('a run directory stands for its last checkpoint: final/, else the newest checkpoints/epoch-*', () => {
    const run = join(root, 'run');
    mkdirSync(join(run, 'checkpoints'), { recursive: true });
    cpSync(ck.teacher, join(run, 'checkpoints', 'epoch-0001'), { recursive: true });
    cpSync(ck.trained, join(run, 'checkpoints', 'epoch-0002'), { recursive: true });
    assert.equal(resolveCheckpoint(run), join(run, 'checkpoints', 'epoch-0002'));
    cpSync(ck.widened, join(run, 'final'), { recursive: true });
    assert.equal(resolveCheckpoint(run), join(run, 'final'));
    assert.equal(resolveCheckpoint(ck.teacher), ck.teacher);
    assert.equal(writeFilters([run], join(root, 'run.png')).checkpoints[0], join(run, 'final'));
  });

  test('each panel has a label strip: which run and checkpoint, which layer, old and new counts', () => {
    const name = (d: string) => d.split('/').slice(-2).join('/');
    assert.deepEqual(grid.labels, [
      `1: ${name(ck.widened)} - conv1, 32 filters (16 old, 16 new)`,
      `2: ${name(ck.trained)} - conv1, 32 filters (16 old, 16 new)`,
    ]);
    // The text is drawn: dark pixels in the strip above each panel's first row, none without labels.
    const dark = (y0: number, y1: number) => {
      let n = 0;
      for (let y = y0; y < y1; y++) for (let x = 0; x < png.width; x++) if (pixel(png, x, y).every((v, i) => v === COLORS.text[i])) n++;
      return n;
    };
    assert.ok(dark(8, cell(0, 0).y) > 100, 'panel 1 label');
    assert.ok(dark(cell(1, 0).y - 22, cell(1, 0).y) > 100, 'panel 2 label');
    const bare = writeFilters([ck.widened, ck.trained], join(root, 'bare.png'), { teacher: ck.teacher, labels: false });
    assert.equal(bare.cells[0].y, 8);
    assert.ok(grid.height > bare.height);
  });

  test('bad layers are refused with the conv layers listed', () => {
    assert.throws(() => writeFilters([ck.trained], join(root, 'x.png'), { layer: 'fc1' }), (e: Error & { code?: string }) => e.code === 'R2R_USAGE' && /'fc1' is a dense, not a conv2d; pick one of conv1/.test(e.message));
    assert.throws(() => writeFilters([ck.trained], join(root, 'x.png'), { layer: 'nope' }), /no layer 'nope'; its conv layers are conv1/);
  });
});

function readKernel(dir: string): Tensor {
  return loadCheckpoint(dir).weights['conv1/kernel'];
}

test('normalisation: each filter\'s own min..max to 0..255; a constant filter is mid-grey', () => {
  // 1x2 kernel, 3 input channels, 2 filters: filter 0 spans -1..3, filter 1 is all zero.
  const k = tensor([1, 2, 3, 2], [-1, 0, 0, 0, 1, 0, 3, 0, 2, 0, 1, 0]);
  assert.deepEqual([...normalizedFilter(k, 0).rgb], [0, 64, 128, 255, 191, 128]);
  assert.deepEqual([...normalizedFilter(k, 1).rgb], [128, 128, 128, 128, 128, 128]);
  // Grey for cin != 3: the mean over input channels.
  const g = tensor([1, 2, 2, 1], [0, 2, 4, 4]);
  assert.deepEqual([...normalizedFilter(g, 0).rgb], [0, 0, 0, 255, 255, 255]);
  const grid = filterGrid([{ label: 'k', node: 'c', kernel: k }], { scale: 3, labels: false });
  assert.deepEqual([grid.width, grid.height], [2 * 8 + 2 * (6 + 4) + 6, 2 * 8 + 3 + 4]);
});
