// The bench's caller, a process of its own (see caller.ts): one POST /shoot per message,
// timed from the request to the parsed answer, as a caller measures it.

interface ShootAsk {
  id: number;
  url: string;
  command: string[];
}

process.on('message', ({ id, url, command }: ShootAsk) => {
  const started = performance.now();
  void (async () => {
    const response = await fetch(`${url}/shoot`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ command, timeout: 10_000 }),
    });
    const body = (await response.json()) as { exitCode?: number; error?: string };
    const ms = performance.now() - started;
    if (response.status !== 200 || body.exitCode !== 0) {
      throw new Error(`shoot ${command.join(' ')}: ${response.status} ${JSON.stringify(body)}`);
    }
    return ms;
  })().then(
    (ms) => process.send!({ id, ms }),
    (error: unknown) => process.send!({ id, error: String(error) }),
  );
});
