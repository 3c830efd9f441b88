/**
 * A graph built on TensorFlow.js: weights as tf variables, a forward pass interpreted node by
 * node, training steps through `tf.variableGrads`, and the engine's own optimizers.
 */
import type { Scalar, Tensor, Tensor4D, Variable } from '@tensorflow/tfjs';
import { DataError, R2RError, ShapeMismatchError, UnsupportedLayerError, UsageError } from '../../errors.ts';
import { analyzeGraph, paramSpecs, type GraphInfo } from '../../ir/graph.ts';
import { resolveWindow, shapeToString, sizeOf, type Window2d } from '../../ir/shapes.ts';
import type { Graph, Node, Weights } from '../../ir/types.ts';
import { validateWeights } from '../../ir/weights.ts';
import { Rng } from '../../rng.ts';
import type {
  Batch, BuildOptions, EngineModel, ForwardOptions, OptimizerConfig, OptimizerState, StepResult,
} from '../engine.ts';
import * as tf from '@tensorflow/tfjs';
import { activate, type TfjsBackendName } from './backend.ts';
import * as ops from './ops.ts';
import { TfjsOptimizer, checkLearningRate, type TrainableParam } from './optimizers.ts';

/**
 * Runs `fn` in a tf scope and disposes every tensor it made. Results must be plain JS values:
 * `tf.tidy` itself would walk a returned Float32Array element by element looking for tensors.
 */
function scoped<T>(fn: () => T): T {
  let out!: T;
  tf.tidy(() => { out = fn(); });
  return out;
}

/** Batch statistics one training forward produced, for the moving-statistics update. */
interface BatchStats { node: string; momentum: number; mean: Tensor; unbiasedVar: Tensor }

export class TfjsModel implements EngineModel {
  readonly graph: Graph;
  private readonly info: GraphInfo;
  private readonly vars = new Map<string, Variable>();
  private readonly trainable: TrainableParam[] = [];
  private readonly windows = new Map<string, Window2d>();
  private readonly numClasses: number;
  private readonly dropoutRng: Rng;
  private optimizer?: TfjsOptimizer;
  private disposed = false;

  constructor(graph: Graph, weights: Weights, private readonly backend: TfjsBackendName, opts: BuildOptions = {}) {
    this.info = analyzeGraph(graph);
    validateWeights(graph, weights, 'weights', this.info);
    this.graph = graph;
    // Token models give per-token logits [T, V]; the loss treats every position as an example.
    this.numClasses = this.info.tokens ? this.info.outputShape[1] : this.info.outputShape.length === 1 ? this.info.outputShape[0] : 0;
    if (!this.numClasses) throw new ShapeMismatchError(`tfjs engine: output node '${graph.output}' must give flat logits [K], got ${shapeToString(this.info.outputShape)}`);
    this.dropoutRng = new Rng(opts.seed ?? 0);
    for (const node of graph.nodes) {
      if (node.kind === 'conv2d' || node.kind === 'maxPool' || node.kind === 'avgPool') {
        const [h, w] = this.info.nodes.get(node.name)!.inputShapes[0];
        const k = node.kind === 'conv2d' ? node.kernelSize : node.poolSize;
        this.windows.set(node.name, resolveWindow(h, w, k, node.strides, node.padding));
      }
    }
    activate(backend);
    for (const [key, spec] of paramSpecs(graph, this.info)) {
      const t = weights[key];
      const v = tf.tidy(() => tf.variable(tf.tensor(t.data, t.shape), spec.trainable));
      this.vars.set(key, v);
      if (spec.trainable) this.trainable.push({ name: key, variable: v });
    }
  }

  // ---- forward ------------------------------------------------------------------------------

  private param(node: Node, name: string): Variable { return this.vars.get(`${node.name}/${name}`)!; }

  /** Logits of `x` (already shaped [N, ...inputShape]); pushes BN batch statistics to `stats`. */
  private run(x: Tensor, training: boolean, stats?: BatchStats[]): Tensor {
    const outs = new Map<string, Tensor>();
    for (const node of this.graph.nodes) {
      const ins = node.inputs.map((i) => outs.get(i)!);
      try {
        outs.set(node.name, node.kind === 'input' || node.kind === 'tokenInput' ? x : this.node(node, ins, training, stats));
      } catch (e) {
        if (e instanceof R2RError) throw e;
        throw new R2RError('R2R_ENGINE', `tfjs engine (${this.backend}): node '${node.name}' (${node.kind}) failed on input ${ins.map((t) => shapeToString(t.shape)).join(', ')}: ${(e as Error).message}`, { cause: e });
      }
    }
    return outs.get(this.graph.output)!;
  }

  private node(node: Node, ins: Tensor[], training: boolean, stats?: BatchStats[]): Tensor {
    const x = ins[0];
    switch (node.kind) {
      case 'conv2d': {
        const y = ops.conv2d(x as Tensor4D, this.param(node, 'kernel') as Tensor as Tensor4D, node.strides, this.windows.get(node.name)!);
        return node.useBias ? tf.add(y, this.param(node, 'bias')) : y;
      }
      case 'dense': return ops.dense(x, this.param(node, 'kernel'), node.useBias ? this.param(node, 'bias') : undefined);
      case 'embedding': return ops.embedding(x, this.param(node, 'embeddings'));
      case 'positionEmbedding': return ops.positionEmbedding(x, this.param(node, 'embeddings'));
      case 'layerNorm': return ops.layerNorm(x, this.param(node, 'gamma'), this.param(node, 'beta'), node.epsilon);
      case 'attention': {
        const p = (name: string) => this.param(node, name);
        const b = (name: string) => (node.useBias ? p(name) : undefined);
        return ops.attention(x, {
          queryKernel: p('queryKernel'), keyKernel: p('keyKernel'), valueKernel: p('valueKernel'), outputKernel: p('outputKernel'),
          queryBias: b('queryBias'), keyBias: b('keyBias'), valueBias: b('valueBias'), outputBias: b('outputBias'),
        }, node.heads, node.keyDim, node.causal);
      }
      case 'batchNorm': {
        const r = ops.batchNorm(x, {
          gamma: this.param(node, 'gamma'), beta: this.param(node, 'beta'),
          movingMean: this.param(node, 'movingMean'), movingVariance: this.param(node, 'movingVariance'),
        }, node.epsilon, training, stats !== undefined);
        if (stats && r.mean && r.unbiasedVar) stats.push({ node: node.name, momentum: node.momentum, mean: r.mean, unbiasedVar: r.unbiasedVar });
        return r.y;
      }
      case 'activation': return ops.activation(x, node.fn, node.alpha);
      case 'maxPool': return ops.maxPool(x as Tensor4D, node.poolSize, node.strides, this.windows.get(node.name)!);
      case 'avgPool': return ops.avgPool(x as Tensor4D, node.poolSize, node.strides, this.windows.get(node.name)!);
      case 'globalAvgPool': return tf.mean(x, [1, 2]);
      case 'flatten': return tf.reshape(x, [x.shape[0], -1]);
      case 'add': return ins.length === 2 ? tf.add(ins[0], ins[1]) : tf.addN(ins);
      case 'concat': return tf.concat(ins, -1);
      case 'dropout': {
        if (!training || node.rate === 0) return x;
        // Masks come from the model's seeded generator, so a seed reproduces a run exactly.
        const keep = 1 / (1 - node.rate);
        const mask = new Float32Array(x.size);
        for (let i = 0; i < mask.length; i++) mask[i] = this.dropoutRng.next() < node.rate ? 0 : keep;
        return tf.mul(x, tf.tensor(mask, x.shape));
      }
      case 'input': case 'tokenInput': throw new UnsupportedLayerError(`tfjs engine: node '${node.name}' is a second input; graphs have exactly one`);
      default: throw new UnsupportedLayerError(`tfjs engine: node '${(node as Node).name}' has kind ${JSON.stringify((node as Node).kind)}, which the tfjs engine does not support`);
    }
  }

  // ---- batches ------------------------------------------------------------------------------

  private begin(what: string): void {
    if (this.disposed) throw new UsageError(`tfjs engine: ${what} called on a disposed model`);
    activate(this.backend);
  }

  private input(batch: Batch, what: string): Tensor {
    const need = batch.n * sizeOf(this.info.inputShape);
    if (!Number.isInteger(batch.n) || batch.n < 1) throw new ShapeMismatchError(`tfjs engine ${what}: batch size must be a positive integer, got ${batch.n}`);
    if (this.info.tokens) {
      const ids = batch.tokens;
      const { length: t, vocab } = this.info.tokens;
      if (!ids) throw new UsageError(`tfjs engine ${what}: the graph reads token ids (tokenInput '${this.info.inputName}') but the batch has no tokens`);
      if (ids.length !== need) throw new ShapeMismatchError(`tfjs engine ${what}: batch.tokens has ${ids.length} ids, but ${batch.n} sequences of ${t} need ${need}`);
      for (let i = 0; i < ids.length; i++) {
        if (!(ids[i] >= 0 && ids[i] < vocab)) throw new DataError(`tfjs engine ${what}: token ${ids[i]} at position ${i} is outside the vocabulary [0, ${vocab})`);
      }
      return tf.tensor2d(ids, [batch.n, t], 'int32');
    }
    if (batch.x.length !== need) throw new ShapeMismatchError(`tfjs engine ${what}: batch.x has ${batch.x.length} values, but ${batch.n} examples of ${shapeToString(this.info.inputShape)} need ${need}`);
    return tf.tensor(batch.x, [batch.n, ...this.info.inputShape]);
  }

  private labels(batch: Batch, what: string): Int32Array {
    const l = batch.labels;
    if (!l) throw new UsageError(`tfjs engine ${what}: the batch has no labels`);
    const per = this.info.tokens ? this.info.tokens.length : 1;
    if (l.length !== batch.n * per) throw new DataError(`tfjs engine ${what}: ${l.length} labels for ${batch.n} examples${per > 1 ? ` of ${per} tokens (one target per token)` : ''}`);
    for (let i = 0; i < l.length; i++) {
      if (!(l[i] >= 0 && l[i] < this.numClasses)) throw new DataError(`tfjs engine ${what}: label ${l[i]} of example ${i} is outside [0, ${this.numClasses})`);
    }
    return l;
  }

  async forward(batch: Batch, opts: ForwardOptions): Promise<Float32Array> {
    this.begin('forward');
    return scoped(() => {
      const logits = this.run(this.input(batch, 'forward'), opts.training);
      return Float32Array.from(logits.dataSync() as Float32Array);
    });
  }

  /** Training-mode loss and gradients; keeps the batch statistics when `stats` is given. */
  private lossAndGrads(batch: Batch, what: string, stats?: BatchStats[]): { loss: Tensor; correct: Tensor; grads: Map<string, Tensor> } {
    const labels = this.labels(batch, what);
    const x = this.input(batch, what);
    const lab = tf.tensor1d(labels, 'int32');
    const oneHot = tf.oneHot(lab, this.numClasses);
    let logits: Tensor | undefined;
    let value: Scalar, grads: Record<string, Tensor>;
    try {
      ({ value, grads } = tf.variableGrads(() => {
        const out = tf.reshape(this.run(x, true, stats), [-1, this.numClasses]);
        logits = tf.keep(out);
        return ops.crossEntropy(out, oneHot) as Scalar;
      }, this.trainable.map((p) => p.variable)));
    } catch (e) {
      logits?.dispose();
      if (e instanceof R2RError) throw e;
      // The forward pass names its node; a failure here is in the loss or the backward pass.
      throw new R2RError('R2R_ENGINE', `tfjs engine (${this.backend}) ${what}: loss or backward pass failed: ${(e as Error).message}`, { cause: e });
    }
    const correct = ops.correctCount(logits!, lab);
    logits!.dispose();
    const byName = new Map<string, Tensor>();
    // A parameter the loss does not depend on (a node whose output nothing reads) gets no entry
    // from tf.variableGrads; its gradient is zero, as in the torch engine.
    for (const p of this.trainable) byName.set(p.name, grads[p.variable.name] ?? tf.zerosLike(p.variable));
    return { loss: value, correct, grads: byName };
  }

  async gradients(batch: Batch): Promise<{ loss: number; grads: Weights }> {
    this.begin('gradients');
    return scoped(() => {
      const r = this.lossAndGrads(batch, 'gradients');
      const grads: Weights = {};
      for (const [name, g] of r.grads) grads[name] = { shape: [...g.shape], data: Float32Array.from(g.dataSync() as Float32Array) };
      return { loss: r.loss.dataSync()[0], grads };
    });
  }

  setOptimizer(config: OptimizerConfig, state?: OptimizerState): void {
    this.begin('setOptimizer');
    const next = new TfjsOptimizer(config, this.trainable, state);
    this.optimizer?.dispose();
    this.optimizer = next;
  }

  setLearningRate(lr: number): void {
    checkLearningRate(lr);
    if (!this.optimizer) throw new UsageError('tfjs engine: setLearningRate before setOptimizer; set the optimizer first');
    this.optimizer.setLearningRate(lr);
  }

  async trainStep(batch: Batch): Promise<StepResult> {
    this.begin('trainStep');
    const opt = this.optimizer;
    if (!opt) throw new UsageError('tfjs engine: trainStep needs an optimizer; call setOptimizer first');
    const stats: BatchStats[] = [];
    try {
      return scoped(() => {
        const r = this.lossAndGrads(batch, 'trainStep', stats);
        opt.apply(r.grads);
        for (const s of stats) {
          const mm = this.vars.get(`${s.node}/movingMean`)!, mv = this.vars.get(`${s.node}/movingVariance`)!;
          // Keras convention: moving = momentum * moving + (1 - momentum) * batch.
          mm.assign(tf.add(tf.mul(mm, s.momentum), tf.mul(s.mean, 1 - s.momentum)));
          mv.assign(tf.add(tf.mul(mv, s.momentum), tf.mul(s.unbiasedVar, 1 - s.momentum)));
        }
        const loss = r.loss.dataSync()[0];
        return { loss, correct: r.correct.dataSync()[0] };
      });
    } finally {
      for (const s of stats) { s.mean.dispose(); s.unbiasedVar.dispose(); }
    }
  }

  async evaluate(batch: Batch): Promise<StepResult> {
    this.begin('evaluate');
    return scoped(() => {
      const labels = this.labels(batch, 'evaluate');
      const logits = tf.reshape(this.run(this.input(batch, 'evaluate'), false), [-1, this.numClasses]);
      const lab = tf.tensor1d(labels, 'int32');
      const loss = ops.crossEntropy(logits, tf.oneHot(lab, this.numClasses));
      return { loss: loss.dataSync()[0], correct: ops.correctCount(logits, lab).dataSync()[0] };
    });
  }

  // ---- weights and state --------------------------------------------------------------------

  async getWeights(): Promise<Weights> {
    this.begin('getWeights');
    const w: Weights = {};
    for (const [key, v] of this.vars) w[key] = { shape: [...v.shape], data: Float32Array.from(v.dataSync() as Float32Array) };
    return w;
  }

  async setWeights(weights: Weights): Promise<void> {
    this.begin('setWeights');
    validateWeights(this.graph, weights, 'setWeights', this.info);
    for (const [key, v] of this.vars) {
      const t = weights[key];
      tf.tidy(() => v.assign(tf.tensor(t.data, t.shape)));
    }
  }

  async getOptimizerState(): Promise<OptimizerState | undefined> {
    this.begin('getOptimizerState');
    return this.optimizer?.getState();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    activate(this.backend);
    this.optimizer?.dispose();
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
  }

}
