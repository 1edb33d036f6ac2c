// A throwaway certificate authority for a local cluster. openssl issues the
// certificates, as node:crypto cannot sign X.509 certificates.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
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

/**
 * Issues a certificate into its own folder laid out as a cert-manager Secret
 * (`tls.crt`, `tls.key`, `ca.crt`): what a Seed service's `SEED_TLS_DIR` names.
 */
export async function issueTlsDir(
  ca: CertificateAuthority,
  dir: string,
  request: CertificateRequest,
): Promise<string> {
  const issued = await ca.issue(request);
  const out = path.join(dir, request.name);
  await mkdir(out, { recursive: true });
  await copyFile(issued.certPath, path.join(out, 'tls.crt'));
  await copyFile(issued.keyPath, path.join(out, 'tls.key'));
  await copyFile(ca.certPath, path.join(out, 'ca.crt'));
  return out;
}

/** The certificate folders of a local platform, by identity (docs/security.md). */
export interface PlatformCertificates {
  ca: CertificateAuthority;
  /** The reconciler's server certificate, for 127.0.0.1 and localhost. */
  reconciler: string;
  builder: string;
  operator: string;
  reader: string;
}

/** A new platform CA in `dir` and every part's certificate folder beside it. */
export async function createPlatformCertificates(dir: string): Promise<PlatformCertificates> {
  await mkdir(dir, { recursive: true });
  const ca = await CertificateAuthority.create(dir, 'seed-platform-ca');
  const client = (name: string) =>
    issueTlsDir(ca, dir, { name, commonName: name, usage: 'client' });
  return {
    ca,
    reconciler: await issueTlsDir(ca, dir, {
      name: 'reconciler',
      commonName: 'reconciler',
      ipAddresses: ['127.0.0.1'],
      dnsNames: ['localhost'],
      usage: 'server',
    }),
    builder: await client('builder'),
    operator: await client('operator'),
    reader: await client('reader'),
  };
}
