/** A Spark ML stage class this library cannot evaluate. The message names the Spark class. */
export class UnsupportedStageError extends Error {
  readonly sparkClass: string;
  constructor(sparkClass: string, detail?: string) {
    super(`unsupported Spark ML stage ${sparkClass}${detail ? `: ${detail}` : ''}`);
    this.name = 'UnsupportedStageError';
    this.sparkClass = sparkClass;
  }
}

/** The path (directory or zip) does not hold a Spark ML model saved with model.save(path). */
export class NotASparkModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotASparkModelError';
  }
}

/** A failure that concerns one row only (bad or missing value, unseen label, skipped row). */
export class RowError extends Error {
  readonly column: string | undefined;
  constructor(message: string, column?: string) {
    super(message);
    this.name = 'RowError';
    this.column = column;
  }
}
