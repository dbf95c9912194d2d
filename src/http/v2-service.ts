/**
 * The V2 (Open Inference Protocol) operations over the query processor, shared by both V2
 * transports: REST on the query port (v2-api.ts) and gRPC (../grpc/grpc-server.ts). Each
 * transport parses its own wire format into an InferRequest of typed tensors and shapes its own
 * answers and errors; what a name means (an application first, else a model), how versions pin,
 * readiness, metadata and inference are decided here, once.
 *
 * Errors are V2Errors (400, 404, 503, ...) or the processor's ServingErrors; each transport maps
 * them to its own status (v2Status / grpcCode in ../v2/errors.ts).
 */
import { readFileSync } from 'node:fs';
import type { InferTrace, QueryProcessor } from '../query/query-processor.ts';
import type { RegistryService } from '../registry/registry-service.ts';
import type { Application } from '../registry/types.ts';
import { V2Error, badRequest } from '../v2/errors.ts';
import {
  buildInferResponse, modelMetadata, serverMetadata, unknownModel,
  type InferRequest, type InferResponse, type ModelMetadata, type ServerMetadata,
} from '../v2/request.ts';
import { onnxTensors } from './onnx-metadata.ts';
import { HTTP_STATUS } from './status.ts';
import { inputMetadata, modelOutputsToTensor, tensorToEncodedInputs, tensorsToInputs } from './v2-inputs.ts';
import type { ModelOutput } from '../query/output.ts';

export const V2_SERVER_NAME = 'clipper-ts';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export const V2_SERVER_VERSION = packageVersion();

export interface V2ServiceOptions {
  /** Most inputs (rows) one request may carry, as the Clipper API's input_batch. */
  maxInputs: number;
}

export interface Readiness {
  ready: boolean;
  /** Why not, when not ready. */
  reason?: string;
}

export interface V2Service {
  serverMetadata(extensions: readonly string[]): ServerMetadata;
  /** Throws 404 for an unknown name or version. */
  metadata(name: string, version: string | undefined): ModelMetadata;
  /** Throws 404 for an unknown name or version; otherwise whether a replica serves it. */
  readiness(name: string, version: string | undefined): Readiness;
  /**
   * One inference: through the application `name` (its SLO, default output and policy), or, when
   * no application has that name, on the model `name` directly (the model SLO, no default output).
   */
  infer(name: string, version: string | undefined, request: InferRequest, trace?: InferTrace): Promise<InferResponse>;
}

export function createV2Service(processor: QueryProcessor, registry: RegistryService, opts: V2ServiceOptions): V2Service {
  /** The model whose versions an application's `/versions/{v}` names: its first linked model. */
  function appModel(a: Application): string | undefined {
    return registry.linkedModels(a.name)[0];
  }

  /** The version a target resolves to (checking a pinned one exists); undefined when there is none. */
  function resolveVersion(name: string, version: string | undefined): { app?: Application; model?: string; version?: string } {
    const a = registry.getApp(name);
    const model = a ? appModel(a) : registry.hasModel(name) ? name : undefined;
    if (!a && model === undefined) throw unknownModel(name, version);
    if (version !== undefined) {
      if (model === undefined || registry.getVersion(model, version) === undefined) throw unknownModel(name, version);
      return { app: a, model, version };
    }
    return { app: a, model, version: model === undefined ? undefined : registry.currentVersion(model) };
  }

  function metadata(name: string, version: string | undefined): ModelMetadata {
    const r = resolveVersion(name, version);
    const versions = r.model === undefined ? [] : registry.versionsOf(r.model).map((v) => v.version).sort();
    if (r.app) {
      return modelMetadata({ name, versions, platform: 'clipper-application', inputs: [inputMetadata(r.app.inputType)] });
    }
    const v = registry.getVersion(r.model!, r.version ?? versions[versions.length - 1]!);
    // An ONNX model describes its own tensors; other runtimes are described by their input type.
    const onnx = v && onnxTensors(v, registry);
    if (onnx) return modelMetadata({ name, versions, platform: 'clipper-onnx', inputs: onnx.inputs, outputs: onnx.outputs });
    return modelMetadata({ name, versions, platform: v ? `clipper-${v.runtime}` : 'clipper', inputs: v ? [inputMetadata(v.inputType)] : [] });
  }

  function readiness(name: string, version: string | undefined): Readiness {
    const r = resolveVersion(name, version);
    if (r.model === undefined || r.version === undefined) return { ready: false, reason: `'${name}' is not ready: no model is linked to application ${name}` };
    const key = `${r.model}:${r.version}`;
    const replicas = processor.queueStats().find((q) => q.model === key)?.replicas ?? 0;
    if (replicas === 0) return { ready: false, reason: `'${name}' is not ready: no replica of ${key} is running` };
    return { ready: true };
  }

  async function infer(name: string, version: string | undefined, request: InferRequest, trace?: InferTrace): Promise<InferResponse> {
    const a = registry.getApp(name);
    if (!a && !registry.hasModel(name)) throw unknownModel(name, version);
    if (version !== undefined) resolveVersion(name, version);
    const inputType = a ? a.inputType : registry.requireVersion(name, version).inputType;
    if (request.outputs !== undefined && request.outputs.length > 1) {
      throw badRequest(`'${name}' has one output; the request asks for ${request.outputs.length}`);
    }
    const outputName = request.outputs?.[0]?.name ?? 'output';

    const asRecords = request.parameters?.content_type === 'pd';
    const encoded = tensorToEncodedInputs(request.inputs, inputType, asRecords, opts.maxInputs);
    const inputs = encoded ? { encoded } : { values: tensorsToInputs(request.inputs, name, inputType, asRecords, opts.maxInputs) };
    const target = a ? { app: name, version } : { model: name, version };
    const answers = await processor.infer(target, inputs, { trace });

    const outputs: ModelOutput[] = [];
    const defaults: number[] = [];
    let explanation: string | undefined;
    const used = new Set<string>();
    for (let i = 0; i < answers.length; i++) {
      const p = answers[i]!;
      if ('error' in p) {
        const status = HTTP_STATUS[p.error] ?? 400;
        throw new V2Error(status, answers.length === 1 ? (p.cause ?? p.error) : `input ${i}: ${p.cause ?? p.error}`);
      }
      outputs.push(p.output);
      for (const m of p.models) used.add(m);
      if (p.isDefault) {
        defaults.push(i);
        explanation ??= p.explanation;
      }
    }
    const only = used.size === 1 ? [...used][0]! : undefined;
    const modelVersion = version ?? (only === undefined ? undefined : only.slice(only.indexOf(':') + 1));
    const parameters = defaults.length ? { default: defaults, default_explanation: explanation ?? '' } : undefined;
    return buildInferResponse({ modelName: name, modelVersion, id: request.id, parameters, outputs: [modelOutputsToTensor(outputName, outputs)] });
  }

  return {
    serverMetadata: (extensions) => serverMetadata(V2_SERVER_NAME, V2_SERVER_VERSION, extensions),
    metadata,
    readiness,
    infer,
  };
}
