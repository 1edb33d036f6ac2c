import { eslintConfig } from '@seed/eslint-config';

export default [{ ignores: ['src/generated/**'] }, ...eslintConfig(import.meta.dirname)];
