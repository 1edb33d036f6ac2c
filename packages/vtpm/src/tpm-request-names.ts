export {
  AGE_RECIPIENT,
  LABEL_TPM,
  NODE_AGENT_FIELD_MANAGER,
  TPM_KEYS,
  TPM_REQUEST,
  readTpmReport,
  tpmRequestName,
} from '@seed/contracts';

/** Seed's own objects (k8s-model's `seed.loom.farm/managed-by=seed`). */
export const LABEL_MANAGED_BY_SEED = 'seed.loom.farm/managed-by=seed';
export const LABEL_INSTANCE = 'seed.loom.farm/instance';
