/**
 * Rejects with a retriable error if `promise` has not settled within `ms`. The promise itself
 * goes on (callers that may see it settle late must tolerate that).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  promise.catch(() => undefined);
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`${message} (${ms} ms)`), { retriable: true })), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
