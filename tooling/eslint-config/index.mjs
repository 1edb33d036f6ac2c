// Shared flat config: type-aware typescript-eslint, `any` and floating promises are
// errors, and imports may not reach into another workspace package's files or across apps.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

/** @param {string} tsconfigRootDir the package directory (pass import.meta.dirname) */
export function eslintConfig(tsconfigRootDir) {
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
        'no-restricted-imports': [
          'error',
          {
            patterns: [
              {
                group: ['@seed/*/src/*', '@seed/*/dist/*'],
                message: 'import a package through its index',
              },
              {
                regex: '^(\\.\\./)+apps/',
                message: 'apps never import each other; share code through packages/*',
              },
            ],
          },
        ],
      },
    },
    prettier,
  );
}
