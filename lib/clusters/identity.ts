/**
 * How a cluster's VMs are recognised: the cluster tag every VM carries, the naming-policy
 * service of each member, and the operation IDs that created them. cluster-up finds a
 * half-built cluster by these, cluster-down destroys only what carries the tag.
 */
import { join, resolve } from 'node:path';

export type MemberRole = 'control-plane' | 'worker';

/** The tag that marks every VM of the cluster, and nothing else. */
export function clusterTag(cluster: string): string {
  return `cluster-${cluster}`;
}

/** Role tags, so a cluster's VMs can be told apart in the PVE GUI. */
export const ROLE_TAG: Record<MemberRole, string> = { 'control-plane': 'k8s-control-plane', worker: 'k8s-worker' };

/** The naming policy's `{service}` of a member: `lab-cp1`, `lab-w3`. */
export function memberService(cluster: string, role: MemberRole, index: number): string {
  return `${cluster}-${role === 'control-plane' ? 'cp' : 'w'}${index}`;
}

/** Operation IDs of cluster-up runs for a cluster; VMs they cloned carry it in their description. */
export function clusterUpOperationPrefix(environment: string, cluster: string): string {
  return `cluster-up/${environment}/${cluster}/`;
}

/**
 * Where the worker keeps a cluster's secrets (machine configs, talosconfig, kubeconfig):
 * `<secrets_dir>/<environment>/<cluster>`, readable by the worker's user only.
 */
export function clusterSecretsDir(secretsDir: string, environment: string, cluster: string): string {
  return resolve(join(secretsDir, environment, cluster));
}
