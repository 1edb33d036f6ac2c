import { ApiException } from '@kubernetes/client-node';
import { KubeCallError } from './logs/instance-logs';

/** The `message` of a Kubernetes Status body, else the body itself. */
export function statusMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    if (typeof parsed.message === 'string') return parsed.message;
  } catch {
    // not JSON: the text is the message
  }
  return body.trim().slice(0, 500) || 'no message';
}

export async function kubeCall<T>(request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (error) {
    if (error instanceof ApiException) {
      const body = typeof error.body === 'string' ? error.body : JSON.stringify(error.body);
      throw new KubeCallError(statusMessage(body ?? ''), error.code);
    }
    throw new KubeCallError((error as Error).message);
  }
}
