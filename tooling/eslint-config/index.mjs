// Shared flat config: type-aware typescript-eslint, `any` and floating promises are
// errors, and imports may not reach into another workspace package's files or across apps.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

const PACKAGE_BOUNDARIES = [
  {
    group: ['@seed/*/src/*', '@seed/*/dist/*'],
    message: 'import a package through its index',
  },
  {
    regex: '^(\\.\\./)+apps/',
    message: 'apps never import each other; share code through packages/*',
  },
];

// An app's edges: wiring (main, *.app, *.module, config, metrics), transports (HTTP
// controllers and routes, gRPC handlers) and adapters to the outside (*.repository,
// *.client, *.hypervisor). Everything else in an app's src is its domain.
const APP_EDGES = [
  'src/main.ts',
  'src/config.ts',
  'src/metrics.ts',
  'src/**/*.app.ts',
  'src/**/*.module.ts',
  'src/**/*.controller.ts',
  'src/**/*.route.ts',
  'src/**/*.grpc.ts',
  'src/grpc/**',
  'src/**/*.repository.ts',
  'src/**/*.client.ts',
  'src/**/*.hypervisor.ts',
];

/**
 * Domain modules know nothing of how they are reached: no web or RPC framework, and no
 * HTTP status in a value or a type (a domain result or error kind is mapped to one at
 * the edge).
 */
const domainRules = {
  'no-restricted-imports': [
    'error',
    {
      patterns: [
        ...PACKAGE_BOUNDARIES,
        {
          group: ['@nestjs/*', 'fastify', '@fastify/*', '@grpc/grpc-js'],
          message:
            'domain modules are framework-free: reach them from a controller, route or gRPC handler',
        },
      ],
    },
  ],
  'no-restricted-syntax': [
    'error',
    {
      selector: 'Property[key.name=/^(status|statusCode)$/] > Literal[value>=100][value<600]',
      message: "an HTTP status is the edge's to choose: return a result or error kind",
    },
    {
      selector: 'TSLiteralType > Literal[value>=100][value<600]',
      message: "an HTTP status is the edge's to choose: type a result or error kind",
    },
  ],
};

/** @param {string} tsconfigRootDir the package directory (pass import.meta.dirname) */
export function eslintConfig(tsconfigRootDir) {
  const isApp = /[\\/]apps[\\/][^\\/]+$/.test(tsconfigRootDir);
  return tseslint.config(
    { ignores: ['dist/**', 'coverage/**', '*.config.*'] },
    js.configs.recommended,
    ...tseslint.configs.recommendedTypeChecked,
    {
      languageOptions: {
        parserOptions: { projectService: true, tsconfigRootDir },
      },
      rules: {
        '@typescript-eslint/no-explicit-any': 'error',
        '@typescript-eslint/no-floating-promises': 'error',
        '@typescript-eslint/no-unused-vars': [
          'error',
          { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
        ],
        'no-restricted-imports': ['error', { patterns: PACKAGE_BOUNDARIES }],
      },
    },
    ...(isApp ? [{ files: ['src/**/*.ts'], ignores: APP_EDGES, rules: domainRules }] : []),
    // In-memory stand-ins implement async ports synchronously, throwing as the real part rejects.
    { files: ['test/**/in-memory-*.ts'], rules: { '@typescript-eslint/require-await': 'off' } },
    prettier,
  );
}
