/**
 * How every process of the project reaches Temporal (worker, API, registration): one place
 * that turns `temporal:` from the configuration into the SDK's connection options.
 */
import { readFileSync } from 'node:fs';
import type { TLSConfig } from '@temporalio/client';
import type { AppConfig } from './schema.js';

export interface TemporalConnectOptions {
  address: string;
  tls?: TLSConfig;
}

export function temporalConnectOptions(temporal: AppConfig['temporal']): TemporalConnectOptions {
  const tls = temporal.tls;
  if (!tls) return { address: temporal.address };
  const read = (path: string) => readFileSync(path);
  return {
    address: temporal.address,
    tls: {
      ...(tls.ca_file ? { serverRootCACertificate: read(tls.ca_file) } : {}),
      ...(tls.cert_file && tls.key_file
        ? { clientCertPair: { crt: read(tls.cert_file), key: read(tls.key_file) } }
        : {}),
      ...(tls.server_name ? { serverNameOverride: tls.server_name } : {}),
    },
  };
}
