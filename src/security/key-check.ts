/**
 * Whether a presented key opens a name on the query transports (REST and gRPC): an application
 * with keys needs one of its keys. A model linked only to applications with keys needs a key of
 * one of them, so querying the model directly is no way around an application's keys; a model
 * linked to an open application (or to none) is open, as anyone can reach it through that one.
 */
import type { RegistryService } from '../registry/registry-service.ts';
import type { AppKeys } from './app-keys.ts';

/**
 * Why the key does not open `name` (`how` says how to send one), or undefined when it does.
 * Without a registry, `name` is an application (the Clipper routes name nothing else).
 */
export function keyRefusal(keys: AppKeys, registry: Pick<RegistryService, 'getApp' | 'listApps' | 'linkedModels'> | undefined, name: string, presented: string | undefined, how: string): string | undefined {
  if (registry && registry.getApp(name) === undefined) {
    const linked = registry.listApps().filter((a) => registry.linkedModels(a.name).includes(name)).map((a) => a.name);
    const via = linked.filter((a) => keys.isProtected(a));
    if (via.length > 0 && via.length === linked.length) {
      if (via.some((a) => keys.check(a, presented) === 'ok')) return undefined;
      const apps = via.length > 1 ? `applications ${via.join(', ')}, which need a key` : `application ${via[0]}, which needs a key`;
      return `model ${name} is linked to ${apps}: ${presented === undefined || presented === '' ? how : 'the key is not valid for any of them'}`;
    }
  }
  const result = keys.check(name, presented);
  if (result === 'missing') return `application ${name} needs a key: ${how}`;
  if (result === 'wrong') return `the key is not valid for application ${name}`;
  return undefined;
}
