/**
 * How an instance proves to the shoot pool who it is: a projected service-account token
 * for this audience, which the kubelet keeps fresh in the file below (k8s-model renders
 * the volume; seed-shoot sends the file's content as a bearer token; the shoot pool checks
 * it with a TokenReview for this audience).
 */
export const SHOOT_TOKEN_AUDIENCE = 'seed-shoot';
/** Where the instance's container has the token: outside /run, which NixOS mounts over. */
export const SHOOT_TOKEN_DIR = '/seed/shoot-token';
export const SHOOT_TOKEN_FILE = `${SHOOT_TOKEN_DIR}/token`;
/** The variable naming that file in the instance (seed-shoot reads it). */
export const ENV_SHOOT_TOKEN_FILE = 'SEED_SHOOT_TOKEN_FILE';
/** The shortest life the API server allows; the kubelet renews it at 80 %. */
export const SHOOT_TOKEN_EXPIRATION_SECONDS = 600;
