/** Logs are JSON lines that carry the node id and never the secrets, even when a caller logs them. */
import { Writable } from 'node:stream';
import { createLogger } from './log';

test('secrets and context tokens are redacted; the node id is on every line', () => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = createLogger({ level: 'info', nodeId: 'n7', destination });
  logger.info({ contextSecret: 'top-secret-value-1', config: { contextSecret: 'top-secret-value-2', authToken: 'top-secret-value-3' } }, 'starting');
  logger.info({ req: { headers: { authorization: 'Bearer top-secret-value-4', 'x-dynamo-context': 'top-secret-value-5' } } }, 'request');
  logger.debug('not at info');

  expect(lines).toHaveLength(2);
  for (const line of lines) {
    const parsed = JSON.parse(line) as Record<string, unknown>;
    expect(parsed.nodeId).toBe('n7');
    expect(line).not.toMatch(/top-secret-value/);
  }
  expect(lines[0]).toContain('[redacted]');
});
