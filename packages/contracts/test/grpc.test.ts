import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import * as grpc from '@grpc/grpc-js';
import {
  createReconcilerClient,
  reconcilerService,
  type ApplyGenerationResponse__Output,
} from '../src';

const run = promisify(execFile);
const PACKAGE = path.resolve(__dirname, '..');

async function filesUnder(dir: string): Promise<Record<string, string>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files: Record<string, string> = {};
  for (const entry of entries.filter((e) => e.isFile())) {
    const full = path.join(entry.parentPath, entry.name);
    files[path.relative(dir, full)] = await readFile(full, 'utf8');
  }
  return files;
}

describe('the seed.v1 gRPC contract', () => {
  it('has checked-in types generated from the current .proto files', async () => {
    const out = await mkdtemp(path.join(tmpdir(), 'seed-proto-'));
    try {
      const generator = path.join(PACKAGE, 'node_modules/.bin/proto-loader-gen-types');
      const protos = ['proto/seed/v1/reconciler.proto', 'proto/seed/v1/shoot.proto'];
      await run(
        generator,
        [
          '--longs=Number',
          '--enums=String',
          '--defaults',
          '--oneofs',
          '--grpcLib=@grpc/grpc-js',
          `--outDir=${out}`,
          ...protos,
        ],
        { cwd: PACKAGE },
      );
      expect(await filesUnder(path.join(PACKAGE, 'src/generated'))).toEqual(await filesUnder(out));
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('carries an ApplyGeneration call over loopback', async () => {
    const server = new grpc.Server();
    server.addService(reconcilerService(), {
      ApplyGeneration: (
        call: grpc.ServerUnaryCall<{ generation: string; instances: unknown[] }, unknown>,
        callback: grpc.sendUnaryData<unknown>,
      ) => {
        callback(null, {
          changed: call.request.instances.length > 0,
          generation: call.request.generation,
        });
      },
      GetStatus: (_call: unknown, callback: grpc.sendUnaryData<unknown>) =>
        callback({ code: grpc.status.NOT_FOUND, details: 'unknown flake' }),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    const client = createReconcilerClient(`127.0.0.1:${port}`);
    try {
      const reply = await new Promise<ApplyGenerationResponse__Output>((resolve, reject) =>
        client.applyGeneration(
          {
            flakeUri: 'github:a/b',
            generation: 'abcdef012345',
            instances: [{ name: 'web', metaJson: '{}', image: '/nix/store/x' }],
          },
          (error, response) => (error ? reject(error) : resolve(response!)),
        ),
      );
      expect(reply).toEqual({ changed: true, generation: 'abcdef012345' });
      const missing = await new Promise<grpc.ServiceError>((resolve) =>
        client.getStatus({ flakeUri: 'x' }, (error) => resolve(error!)),
      );
      expect(missing.code).toBe(grpc.status.NOT_FOUND);
      expect(missing.details).toBe('unknown flake');
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});
