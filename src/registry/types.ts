/** Domain records of the model registry. */
import type { InputType } from './input-types.ts';

export const RUNTIMES = ['js', 'onnx', 'spark', 'python', 'command', 'image'] as const;
export type Runtime = (typeof RUNTIMES)[number];

export interface Application {
  name: string;
  inputType: InputType;
  defaultOutput: string;
  latencySloMicros: number;
  /** When the version queue is full: answer with the default output instead of 503. */
  overloadDefault: boolean;
  policy: string;
  policyParams: Record<string, unknown>;
  createdAt: number;
}

export interface ModelVersion {
  name: string;
  version: string;
  inputType: InputType;
  labels: string[];
  runtime: Runtime;
  /** For `command`: the program to run; for `image`: the container image; otherwise informational. */
  containerName: string;
  /** Path of the copied artifact inside the data directory ('' when the model has none). */
  artifactPath: string;
  artifactHash: string;
  /** 0 = adaptive. */
  batchSize: number;
  replicas: number;
  /** Cores per replica (fractional allowed); 0 = no limit. */
  cpus: number;
  /** MiB per replica; 0 = no limit. */
  memoryMb: number;
  createdAt: number;
}

export interface Link { appName: string; modelName: string }

/** The whole registry, as loaded from a store. */
export interface RegistrySnapshot {
  apps: Application[];
  versions: ModelVersion[];
  currentVersions: Record<string, string>;
  links: Link[];
  /** Per model: autoscaling settings as stored (validated by the autoscaler). */
  autoscaling: Record<string, Record<string, unknown>>;
}

export function versionKey(name: string, version: string): string {
  return `${name}:${version}`;
}
