/**
 * A Talos node's address, from what its QEMU guest agent reports: the first IPv4 address of a
 * host interface. Loopback, link-local and the virtual interfaces Kubernetes adds later (CNI,
 * kube-proxy, containers) are not the node's address, and neither is a shared VIP.
 */
export interface AgentInterface {
  name: string;
  'ip-addresses'?: { 'ip-address': string; 'ip-address-type': 'ipv4' | 'ipv6'; prefix: number }[];
}

const VIRTUAL_INTERFACE = /^(lo|cni|flannel|cilium|kube-|docker|veth|lxc|vxlan|tunl|cali|dummy)/;

export function nodeAddress(
  interfaces: readonly AgentInterface[],
  exclude: readonly string[] = [],
): string | undefined {
  for (const iface of interfaces) {
    if (VIRTUAL_INTERFACE.test(iface.name)) continue;
    for (const a of iface['ip-addresses'] ?? []) {
      const ip = a['ip-address'];
      if (a['ip-address-type'] !== 'ipv4' || /^(127\.|169\.254\.)/.test(ip) || exclude.includes(ip)) continue;
      return ip;
    }
  }
  return undefined;
}

/** Every IPv4 address the agent reports, for messages. */
export function reportedAddresses(interfaces: readonly AgentInterface[]): string[] {
  return interfaces.flatMap((i) =>
    (i['ip-addresses'] ?? []).filter((a) => a['ip-address-type'] === 'ipv4').map((a) => `${i.name} ${a['ip-address']}`),
  );
}
