import { eslintConfig } from '@seed/eslint-config';

export default eslintConfig(import.meta.dirname);
