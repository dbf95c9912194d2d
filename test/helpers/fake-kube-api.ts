/** The in-repo Kubernetes API server for tests: see fake-kube/server.ts. */
export { FakeKubeApi, type RecordedRequest } from './fake-kube/server.ts';
export type { Obj } from './fake-kube/store.ts';
