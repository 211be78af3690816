/**
 * The cluster's self-signed API certificate. Clients pin its SHA-256 fingerprint, written
 * the way PVE shows it (`AA:BB:...`), or trust it as a CA.
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

export async function generateApiCertificate(clusterName: string, hosts: readonly string[]): Promise<ApiCertificate> {
  const names = [...new Set(['localhost', '127.0.0.1', ...hosts])];
  const pems = await generate([{ name: 'commonName', value: `${clusterName} simulated PVE` }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 2 * 365 * 86400 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: names.map((n) => (isIP(n) ? { type: 7 as const, ip: n } : { type: 2 as const, value: n })) },
    ],
  });
  return { key: pems.private, cert: pems.cert, fingerprint: new X509Certificate(pems.cert).fingerprint256 };
}
