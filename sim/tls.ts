/**
 * The cluster's TLS, as PVE sets it up: one cluster CA (`pve-root-ca.pem`) and, per node, its
 * own `pve-ssl.pem` signed by that CA. Clients either trust the CA or pin each node's leaf
 * fingerprint, written the way PVE shows it (`AA:BB:...`), so the two differ from node to node.
 */
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { generate } from 'selfsigned';

export interface ApiCertificate {
  key: string;
  cert: string;
  /** SHA-256 of the DER certificate, colon-separated upper-case hex. */
  fingerprint: string;
}

export interface ClusterCertificates {
  /** The cluster CA's certificate (PEM), what `tls.ca_file` names. */
  caPem: string;
  /** Each node's own certificate, by node name. */
  nodes: ReadonlyMap<string, ApiCertificate>;
}

const validity = () => new Date(Date.now() + 2 * 365 * 86400 * 1000);
const keyOptions = { keyType: 'ec', curve: 'P-256', algorithm: 'sha256' } as const;

function altNames(names: readonly string[]) {
  return [...new Set(names)].map((n) => (isIP(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n }));
}

/** The CA and one certificate per node whose names are the node name, `localhost` and the listening host. */
export async function generateClusterCertificates(
  clusterName: string,
  host: string,
  nodeNames: readonly string[],
): Promise<ClusterCertificates> {
  const ca = await generate(
    [
      { name: 'commonName', value: 'Proxmox Virtual Environment' },
      { name: 'organizationName', value: 'PVE Cluster Manager CA' },
      { shortName: 'OU', value: `${clusterName} simulated` },
    ],
    {
      ...keyOptions,
      notAfterDate: validity(),
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      ],
    },
  );
  const nodes = new Map<string, ApiCertificate>();
  for (const name of nodeNames) {
    const leaf = await generate(
      [
        { name: 'commonName', value: name },
        { name: 'organizationName', value: 'PVE Cluster Node' },
      ],
      {
        ...keyOptions,
        notAfterDate: validity(),
        ca: { key: ca.private, cert: ca.cert },
        extensions: [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
          { name: 'extKeyUsage', serverAuth: true },
          { name: 'subjectAltName', altNames: altNames(['localhost', '127.0.0.1', host, name]) },
        ],
      },
    );
    nodes.set(name, { key: leaf.private, cert: leaf.cert, fingerprint: new X509Certificate(leaf.cert).fingerprint256 });
  }
  return { caPem: ca.cert, nodes };
}
