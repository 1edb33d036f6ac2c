// Cloud Hypervisor's published OpenAPI document, loaded on first use, with its component
// schemas compiled by ajv: what @seed/clh-client's tests and the shoot pool's Cloud
// Hypervisor driver tests check requests against. The spec lives beside the repository in
// shared/specs (CI lays a copy there too); CLH_OPENAPI_SPEC points elsewhere.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';

const SPEC_PATH =
  process.env.CLH_OPENAPI_SPEC ??
  path.resolve(__dirname, '../../../../shared/specs/cloud-hypervisor.openapi.yaml');

export type JsonSchema = Record<string, unknown>;

interface MediaContent {
  schema?: { $ref?: string };
}

export interface Operation {
  operationId?: string;
  requestBody?: { required?: boolean; content?: Record<string, MediaContent> };
  responses: Record<string, { description?: string; content?: Record<string, MediaContent> }>;
}

export interface OpenApiDocument {
  openapi: string;
  info: { version: string };
  servers: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, JsonSchema> };
}

interface LoadedSpec {
  spec: OpenApiDocument;
  published: Ajv;
  closed: Ajv;
}

let loaded: LoadedSpec | undefined;

function loadedSpec(): LoadedSpec {
  if (loaded === undefined) {
    const spec = readSpec();
    loaded = {
      spec,
      published: compiler(spec.components.schemas),
      closed: compiler(closeObjects(spec.components.schemas) as Record<string, unknown>),
    };
  }
  return loaded;
}

/** The Cloud Hypervisor API document. */
export function clhSpec(): OpenApiDocument {
  return loadedSpec().spec;
}

function readSpec(): OpenApiDocument {
  let text: string;
  try {
    text = readFileSync(SPEC_PATH, 'utf8');
  } catch (error) {
    throw new Error(
      `cannot read the Cloud Hypervisor spec at ${SPEC_PATH} (set CLH_OPENAPI_SPEC)`,
      {
        cause: error,
      },
    );
  }
  return parse(text) as OpenApiDocument;
}

/** The operation the spec lists for a path (`/vm.create`) and an HTTP method. */
export function clhSpecOperation(specPath: string, method: string): Operation | undefined {
  return clhSpec().paths[specPath]?.[method.toLowerCase()];
}

function schemaName(content: Record<string, MediaContent> | undefined): string | undefined {
  const ref = content?.['application/json']?.schema?.$ref;
  if (ref === undefined) return undefined;
  const match = /^#\/components\/schemas\/(.+)$/.exec(ref);
  if (!match) throw new Error(`unexpected $ref ${ref}`);
  return match[1];
}

/** The schema the spec names for an operation's JSON request body. */
export function clhRequestSchemaName(operation: Operation): string | undefined {
  return schemaName(operation.requestBody?.content);
}

/** The schema the spec names for an operation's 200 reply. */
export function clhResponseSchemaName(operation: Operation): string | undefined {
  return schemaName(operation.responses['200']?.content);
}

/**
 * The spec's object schemas do not forbid unknown fields, so a misspelt field name would
 * pass them unnoticed. The closed variant adds `additionalProperties: false` to every
 * object schema that lists its properties: a body valid there uses only the spec's names.
 */
function closeObjects(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closeObjects);
  if (typeof schema !== 'object' || schema === null) return schema;
  const copy: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) copy[key] = closeObjects(value);
  if (copy.properties !== undefined && copy.additionalProperties === undefined) {
    copy.additionalProperties = false;
  }
  return copy;
}

// ajv-formats knows int32 and int64; the spec also uses these, checked as their ranges.
const INTEGER_FORMATS: Record<string, [number, number]> = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
};

function compiler(schemas: Record<string, unknown>): Ajv {
  // OpenAPI 3.0 schemas are not quite JSON Schema: `strict: false` lets its keywords
  // (`deprecated`, `example`) through; ajv 8 understands OpenAPI's `nullable: true` itself.
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  for (const [name, [min, max]] of Object.entries(INTEGER_FORMATS)) {
    ajv.addFormat(name, {
      type: 'number',
      validate: (value: number) => Number.isInteger(value) && value >= min && value <= max,
    });
  }
  ajv.addSchema({ $id: 'clh.json', components: { schemas } });
  return ajv;
}

function validatorOf(ajv: Ajv, name: string): ValidateFunction {
  const validate = ajv.getSchema(`clh.json#/components/schemas/${name}`);
  if (validate === undefined) throw new Error(`the spec has no schema ${name}`);
  return validate;
}

/**
 * Why `value` does not match the spec's schema `name` (closed by default: no unknown
 * fields), or undefined when it does.
 */
export function clhSchemaProblems(
  name: string,
  value: unknown,
  mode: 'closed' | 'published' = 'closed',
): string | undefined {
  const { closed, published } = loadedSpec();
  const validate = validatorOf(mode === 'closed' ? closed : published, name);
  if (validate(value)) return undefined;
  return (validate.errors ?? [])
    .map((error) => `${error.instancePath || '/'} ${error.message ?? ''}`)
    .join('; ');
}
