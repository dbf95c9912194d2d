/** Domain records of the model registry. */
import type { InputType } from './input-types.ts';

export const RUNTIMES = ['js', 'onnx', 'spark', 'python', 'command'] as const;
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
  /** For `command`: the program to run; otherwise informational (Clipper's container image). */
  containerName: string;
  /** Path of the copied artifact inside the data directory ('' when the model has none). */
  artifactPath: string;
  artifactHash: string;
  /** 0 = adaptive. */
  batchSize: number;
  replicas: number;
  createdAt: number;
}

export interface Link { appName: string; modelName: string }

/** The whole registry, as loaded from a store. */
export interface RegistrySnapshot {
  apps: Application[];
  versions: ModelVersion[];
  currentVersions: Record<string, string>;
  links: Link[];
}

export function versionKey(name: string, version: string): string {
  return `${name}:${version}`;
}
