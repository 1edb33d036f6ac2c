// A throwaway certificate authority for a local cluster. openssl issues the
// certificates, as node:crypto cannot sign X.509 certificates.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

// EC keys: generated instantly, unlike RSA, and fine for TLS.
const NEW_KEY = [
  '-newkey',
  'ec',
  '-pkeyopt',
  'ec_paramgen_curve:prime256v1',
  '-nodes',
  '-days',
  '7',
];

// Our own config, so the system openssl.cnf cannot add or change extensions.
const OPENSSL_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

export interface CertificateRequest {
  /** File name stem: `<name>.crt` and `<name>.key` in the authority's directory. */
  name: string;
  /** The subject's CN: a Kubernetes user name for client certificates. */
  commonName: string;
  /** The subject's O entries: Kubernetes groups for client certificates. */
  organizations?: string[];
  /** Server certificates: the IP addresses and DNS names it serves. */
  ipAddresses?: string[];
  dnsNames?: string[];
  usage: 'client' | 'server' | 'client-and-server';
}

export interface IssuedCertificate {
  certPath: string;
  keyPath: string;
}

export class CertificateAuthority {
  private constructor(
    readonly dir: string,
    readonly certPath: string,
    readonly keyPath: string,
    readonly certPem: string,
  ) {}

  /** A new CA whose files live in `dir` (`ca.crt`, `ca.key`). */
  static async create(dir: string, commonName: string): Promise<CertificateAuthority> {
    const configPath = path.join(dir, 'openssl.cnf');
    await writeFile(configPath, OPENSSL_CONFIG);
    const certPath = path.join(dir, 'ca.crt');
    const keyPath = path.join(dir, 'ca.key');
    await run('openssl', [
      'req',
      '-x509',
      '-config',
      configPath,
      '-extensions',
      'ca',
      ...NEW_KEY,
      '-subj',
      `/CN=${commonName}`,
      '-keyout',
      keyPath,
      '-out',
      certPath,
    ]);
    return new CertificateAuthority(dir, certPath, keyPath, await readFile(certPath, 'utf8'));
  }

  async issue(request: CertificateRequest): Promise<IssuedCertificate> {
    const certPath = path.join(this.dir, `${request.name}.crt`);
    const keyPath = path.join(this.dir, `${request.name}.key`);
    const subject = [
      `/CN=${request.commonName}`,
      ...(request.organizations ?? []).map((organization) => `/O=${organization}`),
    ].join('');
    const extendedUsage = {
      client: 'clientAuth',
      server: 'serverAuth',
      'client-and-server': 'serverAuth,clientAuth',
    }[request.usage];
    const names = [
      ...(request.ipAddresses ?? []).map((ip) => `IP:${ip}`),
      ...(request.dnsNames ?? []).map((dns) => `DNS:${dns}`),
    ];
    // `req -CA` (OpenSSL >= 3.0) creates the key and signs the certificate in one step.
    await run('openssl', [
      'req',
      '-x509',
      '-config',
      path.join(this.dir, 'openssl.cnf'),
      '-extensions',
      'leaf',
      ...NEW_KEY,
      '-CA',
      this.certPath,
      '-CAkey',
      this.keyPath,
      '-subj',
      subject,
      '-addext',
      `extendedKeyUsage=${extendedUsage}`,
      ...(names.length > 0 ? ['-addext', `subjectAltName=${names.join(',')}`] : []),
      '-keyout',
      keyPath,
      '-out',
      certPath,
    ]);
    return { certPath, keyPath };
  }
}
