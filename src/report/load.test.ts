import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadRun, loadSuite, teacherRef } from './load.ts';
import { SYNTHETIC_SUITE, syntheticRecords, writeSyntheticSuite } from './synthetic.ts';

const root = mkdtempSync(join(tmpdir(), 'r2r-load-'));
after(() => rmSync(root, { recursive: true, force: true }));

const epoch = (e: number, valAcc: number, extra: Record<string, unknown> = {}) => JSON.stringify({ type: 'epoch', epoch: e, step: e * 10, lr: 1e-3, trainLoss: 1, trainAcc: valAcc, valLoss: 1, valAcc, flops: e * 100, macsPerExample: 10, params: 5, arch: 'a', wallSeconds: e, ...extra });

describe('loadSuite', () => {
  test('finds every run of a suite, roles by name and teacher link, teacher first', () => {
    const dir = join(root, 'suite');
    writeSyntheticSuite(dir);
    const s = loadSuite(dir);
    assert.equal(s.runs.length, SYNTHETIC_SUITE.length);
    const role = Object.fromEntries(s.runs.map((r) => [r.name, r.role]));
    assert.deepEqual(role, { 'NCT-WidenTeacher': 'teacher', 'NCT-Scratch-Widen': 'scratch', 'NCT-R2WiderR': 'student', 'NCT-RandPadWiden': 'student', 'FTT-R2WiderR': 'run' });
    assert.equal(s.runs[0].name, 'NCT-WidenTeacher');
    // Both spellings of the reference (a relative directory, a bare name) resolve to the teacher's name.
    assert.equal(s.runs.find((r) => r.name === 'NCT-R2WiderR')!.teacher, 'NCT-WidenTeacher');
    assert.equal(s.runs.find((r) => r.name === 'NCT-RandPadWiden')!.teacher, 'NCT-WidenTeacher');
    const r2r = s.runs.find((r) => r.name === 'NCT-R2WiderR')!;
    assert.equal(r2r.epochs.length, 6);
    assert.equal(r2r.transforms.length, 1);
    assert.equal(r2r.transforms[0].epoch, 0);
    assert.deepEqual(s.warnings, []);
  });

  test('a run directory is a suite of one', () => {
    const [runDir] = writeSyntheticSuite(join(root, 'one'), [SYNTHETIC_SUITE[1]]);
    const s = loadSuite(runDir);
    assert.equal(s.runs.length, 1);
    assert.equal(s.runs[0].role, 'scratch');
  });

  test('loads a teacher that lives outside the suite (shared teacher cache)', () => {
    const base = join(root, 'cache');
    writeSyntheticSuite(join(base, 'teachers'), [SYNTHETIC_SUITE[0]]);
    const student = { ...SYNTHETIC_SUITE[2], teacher: undefined };
    const [sdir] = writeSyntheticSuite(join(base, 'suite'), [student]);
    // Point the student at a checkpoint inside the teacher's run directory, as a trainer might.
    writeFileSync(join(sdir, 'run.json'), JSON.stringify({ name: student.name, config: { teacherCheckpoint: join(base, 'teachers', 'NCT-WidenTeacher', 'checkpoints', 'epoch-6') }, engine: 'x', startedAt: '', status: 'completed' }));
    const s = loadSuite(join(base, 'suite'));
    assert.deepEqual(s.runs.map((r) => [r.name, r.role]), [['NCT-WidenTeacher', 'teacher'], ['NCT-R2WiderR', 'student']]);
    assert.equal(s.runs[1].teacher, 'NCT-WidenTeacher');
  });

  test('a copied suite whose teacher cache folder is gone still links students to the teacher in it (runner names: <name>-<12 hex>)', () => {
    const dir = join(root, 'copied');
    const [, sdir] = writeSyntheticSuite(dir, [SYNTHETIC_SUITE[0], { ...SYNTHETIC_SUITE[2], teacher: undefined }]);
    // As the experiment runner writes it, after the results were copied away from its cache.
    writeFileSync(join(sdir, 'run.json'), JSON.stringify({ name: 'NCT-R2WiderR', config: { teacher: { name: 'NCT-WidenTeacher', dir: 'results/.teachers/NCT-WidenTeacher-d218d315cb04', flops: 1 } }, engine: 'x', startedAt: '', status: 'completed' }));
    const s = loadSuite(dir);
    assert.equal(s.runs.find((r) => r.name === 'NCT-R2WiderR')!.teacher, 'NCT-WidenTeacher');
  });

  test('runs sharing a name are told apart by their directory', () => {
    const dir = join(root, 'dupes');
    writeSyntheticSuite(join(dir, 'a'), [SYNTHETIC_SUITE[1]]);
    writeSyntheticSuite(join(dir, 'b'), [SYNTHETIC_SUITE[1]]);
    const s = loadSuite(dir);
    assert.deepEqual(s.runs.map((r) => r.name), [`NCT-Scratch-Widen (${join('a', 'NCT-Scratch-Widen')})`, `NCT-Scratch-Widen (${join('b', 'NCT-Scratch-Widen')})`]);
    assert.equal(s.warnings.length, 2);
  });

  test('no runs: a DataError that says what to do', () => {
    mkdirSync(join(root, 'empty'));
    assert.throws(() => loadSuite(join(root, 'empty')), (e: Error & { code?: string }) => e.code === 'R2R_DATA' && /no runs found/.test(e.message) && /r2r experiment/.test(e.message));
    assert.throws(() => loadSuite(join(root, 'nope')), (e: Error & { code?: string }) => e.code === 'R2R_DATA' && /not a directory/.test(e.message));
  });
});

describe('loadRun tolerance', () => {
  test('resumed run: repeated epochs keep the later record; truncated last line skipped with a warning', () => {
    const dir = join(root, 'resumed');
    mkdirSync(dir);
    writeFileSync(join(dir, 'metrics.jsonl'), [epoch(1, 0.3), epoch(2, 0.4), epoch(3, 0.45), '', epoch(3, 0.5), epoch(4, 0.55), '{"type":"epoch","epo'].join('\n'));
    const r = loadRun(dir);
    assert.deepEqual(r.epochs.map((e) => [e.epoch, e.valAcc]), [[1, 0.3], [2, 0.4], [3, 0.5], [4, 0.55]]);
    assert.equal(r.name, 'resumed');
    assert.ok(r.warnings.some((w) => /metrics\.jsonl:7: truncated last line/.test(w)), r.warnings.join('\n'));
    assert.ok(r.warnings.some((w) => /run\.json: missing/.test(w)));
  });

  test('a corrupt line in the middle is reported, not fatal; unknown record types are skipped', () => {
    const dir = join(root, 'corrupt');
    mkdirSync(dir);
    writeFileSync(join(dir, 'metrics.jsonl'), [epoch(1, 0.3), 'garbage', JSON.stringify({ type: 'note', text: 'x' }), epoch(2, 0.4)].join('\n') + '\n');
    const r = loadRun(dir);
    assert.equal(r.epochs.length, 2);
    assert.ok(r.warnings.some((w) => /:2: not JSON/.test(w)));
    assert.ok(r.warnings.some((w) => /:3: not an epoch or transform record \(type "note"\)/.test(w)));
  });

  test('percentages are scaled to fractions', () => {
    const dir = join(root, 'percent');
    mkdirSync(dir);
    writeFileSync(join(dir, 'metrics.jsonl'), [epoch(1, 30), epoch(2, 45.5)].join('\n'));
    assert.deepEqual(loadRun(dir).epochs.map((e) => e.valAcc), [0.3, 0.455]);
  });

  test('a student that continues its teacher\'s epoch numbering is a student', () => {
    const dir = join(root, 'continued');
    mkdirSync(dir);
    writeFileSync(join(dir, 'metrics.jsonl'), [epoch(7, 0.5), epoch(8, 0.6)].join('\n'));
    assert.equal(loadRun(dir).role, 'student');
  });

  test('no metrics.jsonl: a DataError naming the file', () => {
    assert.throws(() => loadRun(join(root, 'missing')), (e: Error & { code?: string }) => e.code === 'R2R_DATA' && /missing[/\\]metrics\.jsonl/.test(e.message));
  });

  test('synthetic records: transform at the right place, cumulative FLOPs increasing', () => {
    const recs = syntheticRecords(SYNTHETIC_SUITE[4]);
    const kinds = recs.map((r) => (r.type === 'transform' ? `T${r.epoch}` : `E${r.epoch}`));
    assert.deepEqual(kinds, ['E1', 'E2', 'E3', 'T3', 'E4', 'E5', 'E6']);
    const flops = recs.filter((r) => r.type === 'epoch').map((r) => r.flops);
    assert.ok(flops.every((f, i) => i === 0 || f > flops[i - 1]));
  });
});

test('teacherRef: any key naming a teacher, string or object', () => {
  assert.equal(teacherRef({ teacher: 'T' }), 'T');
  assert.equal(teacherRef({ teacherRun: 'runs/x/T' }), 'runs/x/T');
  assert.equal(teacherRef({ teacher: { name: 'T', epochs: 3 } }), 'T');
  assert.equal(teacherRef({ model: 'resnet' }), undefined);
  assert.equal(teacherRef(undefined), undefined);
});

test('names and keys from files (__proto__, constructor) load and render as plain data, never reaching Object.prototype', async () => {
  const suite = join(root, 'proto-suite');
  for (const [dir, name] of [['a', '__proto__'], ['b', 'constructor'], ['c', 'toString']]) {
    mkdirSync(join(suite, dir), { recursive: true });
    // JSON text, so '__proto__' is an own key as a crafted file would have it.
    writeFileSync(join(suite, dir, 'run.json'), `{"name":${JSON.stringify(name)},"engine":"e","startedAt":"t","status":"completed","__proto__":{"polluted":1},"config":{"__proto__":{"polluted":2},"constructor":{"polluted":3},"teacher":{"__proto__":"x"}}}`);
    writeFileSync(join(suite, dir, 'metrics.jsonl'), [epoch(1, 0.5).replace('{', '{"__proto__":{"polluted":4},'), epoch(2, 0.6)].join('\n') + '\n');
  }
  const s = loadSuite(suite);
  assert.deepEqual(s.runs.map((r) => r.name).sort(), ['__proto__', 'constructor', 'toString']);
  for (const r of s.runs) assert.deepEqual(r.epochs.map((e) => e.valAcc), [0.5, 0.6]);
  const { renderReport } = await import('./report.ts');
  const out = await renderReport(s);
  for (const n of ['__proto__', 'constructor', 'toString']) assert.ok(out.html.includes(n), n);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
