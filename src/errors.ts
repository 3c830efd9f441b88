/**
 * Error classes with stable codes (vitest style). Every message names the thing at fault
 * (file, node, field, value) and, where it can, what to do. The CLI maps codes to exit status.
 */
export type R2RErrorCode =
  | 'R2R_INVALID_GRAPH'
  | 'R2R_SHAPE_MISMATCH'
  | 'R2R_UNSUPPORTED_LAYER'
  | 'R2R_INVALID_WEIGHTS'
  | 'R2R_CHECKPOINT'
  | 'R2R_MODEL_FORMAT'
  | 'R2R_TRANSFORM'
  | 'R2R_ENGINE_UNAVAILABLE'
  | 'R2R_ENGINE'
  | 'R2R_DATA'
  | 'R2R_TRAINING_DIVERGED'
  | 'R2R_USAGE'
  | 'R2R_NOT_EXACT'
  | 'R2R_WEIGHT_VALUES'
  | 'R2R_RUN_EXISTS'
  | 'R2R_TOO_LARGE'
  | 'R2R_IO';

export class R2RError extends Error {
  readonly code: R2RErrorCode;
  constructor(code: R2RErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'R2RError';
  }
}

/** The graph is malformed: unknown input, cycle, duplicate name, bad attribute. */
export class InvalidGraphError extends R2RError {
  constructor(message: string) { super('R2R_INVALID_GRAPH', message); this.name = 'InvalidGraphError'; }
}
/** Shapes do not agree (at an add, a concat, a weight). */
export class ShapeMismatchError extends R2RError {
  constructor(message: string) { super('R2R_SHAPE_MISMATCH', message); this.name = 'ShapeMismatchError'; }
}
/** A node kind that a transform or engine does not handle; never silently defaulted. */
export class UnsupportedLayerError extends R2RError {
  constructor(message: string) { super('R2R_UNSUPPORTED_LAYER', message); this.name = 'UnsupportedLayerError'; }
}
/** Weights missing, extra, or of the wrong shape for the graph. */
export class InvalidWeightsError extends R2RError {
  constructor(message: string) { super('R2R_INVALID_WEIGHTS', message); this.name = 'InvalidWeightsError'; }
}
/** A checkpoint file is missing, truncated or inconsistent. */
export class CheckpointError extends R2RError {
  constructor(message: string, options?: { cause?: unknown }) { super('R2R_CHECKPOINT', message, options); this.name = 'CheckpointError'; }
}
/** A model file of another format (ONNX, ...) is malformed, truncated or not that format. */
export class ModelFormatError extends R2RError {
  constructor(message: string, options?: { cause?: unknown }) { super('R2R_MODEL_FORMAT', message, options); this.name = 'ModelFormatError'; }
}
/** A transform cannot be applied as asked (odd R2R amount, input group, ...). */
export class TransformError extends R2RError {
  constructor(message: string) { super('R2R_TRANSFORM', message); this.name = 'TransformError'; }
}
/** The requested engine is not installed or not built. */
export class EngineUnavailableError extends R2RError {
  constructor(message: string, options?: { cause?: unknown }) { super('R2R_ENGINE_UNAVAILABLE', message, options); this.name = 'EngineUnavailableError'; }
}
/** Data files missing, truncated or corrupt. */
export class DataError extends R2RError {
  constructor(message: string, options?: { cause?: unknown }) { super('R2R_DATA', message, options); this.name = 'DataError'; }
}
/** Bad command-line or API usage. */
export class UsageError extends R2RError {
  constructor(message: string) { super('R2R_USAGE', message); this.name = 'UsageError'; }
}

/** A weight is NaN or infinite, or a batch norm's moving variance is negative (a corrupt checkpoint). */
export class WeightValuesError extends R2RError {
  constructor(message: string) { super('R2R_WEIGHT_VALUES', message); this.name = 'WeightValuesError'; }
}
/** A run directory already holds a run that this call would replace. */
export class RunExistsError extends R2RError {
  constructor(message: string) { super('R2R_RUN_EXISTS', message); this.name = 'RunExistsError'; }
}
/** A network, batch or transform would need more memory than the limit allows. */
export class TooLargeError extends R2RError {
  constructor(message: string) { super('R2R_TOO_LARGE', message); this.name = 'TooLargeError'; }
}
/** A file or directory cannot be read or written where asked (a file where a directory must be, ...). */
export class FileError extends R2RError {
  constructor(message: string, options?: { cause?: unknown }) { super('R2R_IO', message, options); this.name = 'FileError'; }
}

/** Exit status per code, so scripts can tell failures apart. */
export const EXIT_CODES: Record<R2RErrorCode, number> = {
  R2R_USAGE: 2,
  R2R_INVALID_GRAPH: 3,
  R2R_SHAPE_MISMATCH: 3,
  R2R_UNSUPPORTED_LAYER: 3,
  R2R_INVALID_WEIGHTS: 4,
  R2R_CHECKPOINT: 4,
  R2R_MODEL_FORMAT: 4,
  R2R_TRANSFORM: 5,
  R2R_NOT_EXACT: 6,
  R2R_ENGINE_UNAVAILABLE: 7,
  R2R_ENGINE: 7,
  R2R_DATA: 8,
  R2R_TRAINING_DIVERGED: 9,
  R2R_WEIGHT_VALUES: 4,
  R2R_RUN_EXISTS: 10,
  R2R_TOO_LARGE: 11,
  R2R_IO: 12,
};
