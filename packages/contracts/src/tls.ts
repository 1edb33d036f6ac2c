import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { z } from 'zod';

/**
 * Every gRPC connection between Seed's parts is TLS with a client certificate from the
 * platform's one CA. A part finds its certificate in one folder with cert-manager's
 * Secret keys (a mounted `kubernetes.io/tls` Secret), and is known by the certificate's
 * subject CN (docs/security.md): a CN is what both cert-manager (`commonName`) and
 * openssl set without extra configuration, and what the services log.
 */
export const TLS_FILE_NAMES = { cert: 'tls.crt', key: 'tls.key', ca: 'ca.crt' } as const;

export interface TlsDirectory {
  certFile: string;
  keyFile: string;
  caFile: string;
  /** The subject CN of the certificate found at start-up: who this part is. */
  identity: string;
}

/**
 * Checks a certificate folder once, at start-up, so a wrong mount is a message naming the
 * file rather than a handshake failure later. Throws an Error saying what is wrong.
 */
export function readTlsDirectory(dir: string): TlsDirectory {
  const file = (name: string) => path.join(dir, name);
  const read = (name: string): Buffer => {
    try {
      return readFileSync(file(name));
    } catch (error) {
      throw new Error(`cannot read ${file(name)}: ${(error as Error).message}`, { cause: error });
    }
  };
  const parsed = <T>(name: string, what: string, parse: (pem: Buffer) => T): T => {
    const pem = read(name);
    try {
      return parse(pem);
    } catch (error) {
      throw new Error(`${file(name)} is not a PEM ${what}`, { cause: error });
    }
  };
  const cert = parsed(TLS_FILE_NAMES.cert, 'certificate', (pem) => new X509Certificate(pem));
  const ca = parsed(TLS_FILE_NAMES.ca, 'certificate', (pem) => new X509Certificate(pem));
  const key = parsed(TLS_FILE_NAMES.key, 'private key', (pem) => createPrivateKey(pem));
  if (!cert.checkPrivateKey(key)) {
    throw new Error(`${file(TLS_FILE_NAMES.key)} is not the key of ${file(TLS_FILE_NAMES.cert)}`);
  }
  if (!cert.verify(ca.publicKey)) {
    throw new Error(
      `${file(TLS_FILE_NAMES.cert)} (${cert.subject}) is not signed by ${file(TLS_FILE_NAMES.ca)} (${ca.subject})`,
    );
  }
  if (Date.parse(cert.validTo) < Date.now()) {
    throw new Error(`${file(TLS_FILE_NAMES.cert)} expired on ${cert.validTo}`);
  }
  const identity = commonName(cert.subject);
  if (identity === undefined) {
    throw new Error(`${file(TLS_FILE_NAMES.cert)} has no subject CN to identify it`);
  }
  return {
    certFile: file(TLS_FILE_NAMES.cert),
    keyFile: file(TLS_FILE_NAMES.key),
    caFile: file(TLS_FILE_NAMES.ca),
    identity,
  };
}

/** An environment variable naming a certificate folder, checked when it is parsed. */
export const tlsDirectorySchema = z
  .string({ error: 'required: a folder with tls.crt, tls.key and ca.crt (a mounted TLS Secret)' })
  .transform((dir, ctx) => {
    try {
      return readTlsDirectory(dir);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });

function commonName(subject: string): string | undefined {
  return subject
    .split('\n')
    .find((line) => line.startsWith('CN='))
    ?.slice('CN='.length);
}

type CaListener = Parameters<grpc.experimental.CertificateProvider['addCaCertificateListener']>[0];
type IdentityListener = Parameters<
  grpc.experimental.CertificateProvider['addIdentityCertificateListener']
>[0];

/**
 * The folder's files for grpc-js, re-read every `reloadMs`: a renewed certificate
 * (cert-manager swaps the Secret's files) is used for new connections without a restart.
 * Unlike grpc-js's FileWatcherCertificateProvider, the files are read at once and handed
 * over before the server listens: its first read is asynchronous, and a server drops
 * every connection that arrives before it lands (seconds on a loaded machine).
 */
class TlsFilesProvider implements grpc.experimental.CertificateProvider {
  readonly #ca = new Set<CaListener>();
  readonly #identity = new Set<IdentityListener>();
  #files: { cert: Buffer; key: Buffer; ca: Buffer };
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly tls: TlsDirectory,
    private readonly reloadMs: number,
  ) {
    this.#files = this.read();
  }

  addCaCertificateListener(listener: CaListener): void {
    this.#ca.add(listener);
    // After the caller has registered itself: grpc-js adds its watcher after this call.
    process.nextTick(() => listener({ caCertificate: this.#files.ca }));
    this.watch();
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.#ca.delete(listener);
    this.watch();
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#identity.add(listener);
    process.nextTick(() => listener(this.identity()));
    this.watch();
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#identity.delete(listener);
    this.watch();
  }

  private identity() {
    return { certificate: this.#files.cert, privateKey: this.#files.key };
  }

  private read() {
    return {
      cert: readFileSync(this.tls.certFile),
      key: readFileSync(this.tls.keyFile),
      ca: readFileSync(this.tls.caFile),
    };
  }

  /** Polls while anyone listens; the timer never keeps a process alive. */
  private watch(): void {
    const listened = this.#ca.size + this.#identity.size > 0;
    if (listened && this.#timer === undefined) {
      this.#timer = setInterval(() => this.reload(), this.reloadMs).unref();
    } else if (!listened && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  private reload(): void {
    let files;
    try {
      files = this.read();
      // A certificate and key from two generations (read mid-swap) would stop the server.
      if (!new X509Certificate(files.cert).checkPrivateKey(createPrivateKey(files.key))) return;
    } catch {
      return; // mid-swap or gone: keep serving what was read last, try again next time
    }
    const previous = this.#files;
    this.#files = files;
    if (!files.ca.equals(previous.ca)) {
      for (const listener of this.#ca) listener({ caCertificate: files.ca });
    }
    if (!files.cert.equals(previous.cert) || !files.key.equals(previous.key)) {
      for (const listener of this.#identity) listener(this.identity());
    }
  }
}

/** The folder's certificate, key and CA for grpc-js, re-read every `reloadMs`. */
export function watchTlsDirectory(
  tls: TlsDirectory,
  reloadMs: number,
): grpc.experimental.CertificateProvider {
  return new TlsFilesProvider(tls, reloadMs);
}

/** Channel credentials presenting the folder's certificate and trusting only its CA. */
export function platformChannelCredentials(
  tls: TlsDirectory,
  reloadMs: number,
): grpc.ChannelCredentials {
  const files = watchTlsDirectory(tls, reloadMs);
  return grpc.experimental.createCertificateProviderChannelCredentials(files, files);
}

/** The caller's identity: the CN of a client certificate that the platform CA verified. */
export function peerIdentity(call: {
  getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null;
}): string | undefined {
  const certificate = call.getAuthContext()?.sslPeerCertificate;
  const cn = certificate?.subject.CN;
  return typeof cn === 'string' && cn !== '' ? cn : undefined;
}
