/** A grpc-js client of the V2 service, from our own grpc_service.proto, on a test server's gRPC port. */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS, PROTO_PATH } from '../../src/grpc/grpc-server.ts';

export type V2Client = grpc.Client & Record<string, (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: any) => void) => void>;

export function v2GrpcClient(port: number): V2Client {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS)) as any;
  return new pkg.inference.GRPCInferenceService(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as V2Client;
}
