/**
 * r2r's public API, chosen by hand (explicit named exports; types apart). Everything here is
 * engine-free except `getEngine` and `verifyTransform`, which take an engine.
 */

// Graph IR
export type {
  Graph, Node, NodeKind, NodeOf, Padding, ActivationFn, Tensor, Weights,
  InputNode, Conv2dNode, DenseNode, BatchNormNode, ActivationNode, PoolNode, GlobalAvgPoolNode,
  FlattenNode, AddNode, ConcatNode, DropoutNode,
  TokenInputNode, EmbeddingNode, PositionEmbeddingNode, LayerNormNode, AttentionNode,
} from './ir/types.ts';
export { analyzeGraph, paramSpecs, countParams, countMacs, getNode, architectureId } from './ir/graph.ts';
export type { GraphInfo, NodeInfo, ParamSpec } from './ir/graph.ts';
export { GraphBuilder } from './ir/builder.ts';
export { parseGraph, serializeGraph } from './ir/json.ts';
export { tensor, cloneWeights, validateWeights, checkWeightValues, initWeights } from './ir/weights.ts';
export { estimateSize, memoryLimit, assertFits } from './ir/budget.ts';
export type { SizeEstimate, MemoryLimit } from './ir/budget.ts';
export { resolveWindow } from './ir/shapes.ts';
export { Rng } from './rng.ts';

// Channel groups
export { analyzeChannelGroups, describeGroup } from './groups/analyze.ts';
export type { ChannelGroup, GroupConsumer, ChannelOp } from './groups/group.ts';

// Transforms
export { widen, deepen, morphKernel, widenMlp, addHeads, widenStream, deepenBlocks, applyTransform, mapOptimizerState } from './transforms/index.ts';
export type {
  WidenOptions, DeepenOptions, KernelMorphOptions, MlpOptions, HeadsOptions, WidthOptions, BlockDeepenOptions,
  TransformSpec, TransformResult, TransformReport,
  TensorMap, AxisMap, InitOptions, InitMethod,
} from './transforms/index.ts';

// Reference executor and exactness check
export { forwardReference } from './reference/execute.ts';
export { compareLogits } from './reference/compare.ts';
export { verifyTransform, randomBatch, randomTokens, EXACT_TOLERANCE } from './verify.ts';
export type { VerifyModeResult, VerifyOutcome } from './verify.ts';

// Model zoo
export { zooModel, ZOO } from './models/zoo.ts';
export { resnetCifar } from './models/resnet_cifar.ts';
export { smallConv } from './models/small_conv.ts';
export { mlp } from './models/mlp.ts';
export { gpt, gptParamCount, GPT_DEFAULTS } from './models/gpt.ts';
export type { GptOptions } from './models/gpt.ts';

// Engines
export { getEngine, ENGINE_NAMES } from './engines/registry.ts';
export type { EngineName, EngineOptions } from './engines/registry.ts';
export type { Engine, EngineModel, Batch, OptimizerConfig, OptimizerState, StepResult, BuildOptions } from './engines/engine.ts';

// Checkpoints
export { saveCheckpoint, loadCheckpoint, isCheckpoint } from './io/checkpoint.ts';
export type { Checkpoint } from './io/checkpoint.ts';
export { readSafetensors, writeSafetensors, encodeSafetensors, decodeSafetensors } from './io/safetensors.ts';
export { readOnnx, writeOnnx, readOnnxFile, writeOnnxFile, isOnnxPath, onnxExportProblems, ONNX_IMPORT_OPS, ONNX_EXPORT_OPSET } from './io/onnx/index.ts';
export type { ImportedModel, OnnxImportOptions, OnnxExportOptions } from './io/onnx/index.ts';

// Model files: TensorFlow.js layers models, and the format registry the CLI uses (r2r, tfjs, ...)
export { readTfjs, writeTfjs, tfjsExportProblems, tfjsOutputs } from './io/tfjs.ts';
export type { TfjsExportOptions } from './io/tfjs.ts';
export { registerFormat, modelFormats, getFormat, formatOfInput, formatOfOutput, singleFileFormat } from './io/formats.ts';
export type { ModelFile, ModelFormat } from './io/formats.ts';

// Errors
export {
  R2RError, InvalidGraphError, ShapeMismatchError, UnsupportedLayerError, InvalidWeightsError,
  CheckpointError, ModelFormatError, TransformError, EngineUnavailableError, DataError, UsageError,
  WeightValuesError, RunExistsError, TooLargeError, FileError, EXIT_CODES,
} from './errors.ts';
export type { R2RErrorCode } from './errors.ts';

// Data, training, experiments, reports
export { loadDataset, readCifar10, locateCifar10, CIFAR10_CLASSES, syntheticSets } from './data/index.ts';
export type { DataSpec, Dataset, Split } from './data/index.ts';
export { fetchCifar10 } from './data/fetch.ts';
export { readTextDataset, locateText, encodeText, decodeTokens, sampleWindows, vocabularyOf } from './data/text.ts';
export type { TextDataset } from './data/text.ts';
export { trainText } from './train/text_trainer.ts';
export type { TextTrainConfig, TextTrainOptions, TextTrainResult } from './train/text_trainer.ts';
export { sampleText } from './train/sample.ts';
export type { SampleOptions } from './train/sample.ts';
export { train, validateRunName } from './train/trainer.ts';
export type { TrainConfig, TrainOptions, TrainResult } from './train/trainer.ts';
export { parseTransformSpec, parseLrDrop } from './train/schedule.ts';
export { TRAIN_FLOPS_PER_FORWARD_MAC } from './train/metrics.ts';
export type { EpochRecord, TransformRecord, MetricsRecord, EvalRecord, RunInfo } from './train/metrics.ts';
export { RUNS, SUITES, PRESETS, findRun, suiteRuns } from './experiments/catalog.ts';
export { runExperiments } from './experiments/runner.ts';
export type { ExperimentOptions, ExperimentResult } from './experiments/runner.ts';
export { writeReport, renderReport } from './report/report.ts';
export { writeFilters } from './report/filters.ts';
