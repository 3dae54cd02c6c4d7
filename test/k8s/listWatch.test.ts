/**
 * The kubelet's list+watch loop recovers from every way a watch ends, which a real apiserver does
 * not produce on demand, so a scripted HTTP server plays the apiserver here: a watch that closes
 * cleanly is resumed from the last resourceVersion seen (no list), a 410 Gone event and an HTTP
 * 500 each lead to a fresh list, and stop() ends a watch that is still open.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

import type { V1Pod } from '@kubernetes/client-node';

import { freePort } from '../support/ports';
import { loadClientNode } from './kubeApi';
import { ListWatch } from './listWatch';
import { waitFor } from './testing';

const pod = (name: string, resourceVersion: string): V1Pod => ({ metadata: { name, namespace: 'default', uid: name, resourceVersion } });

/** The script: what each successive request gets. */
type Step = { list: { resourceVersion: string; items: V1Pod[] } } | { watch: Array<{ type: string; object: unknown }>; then: 'close' | 'hang' } | { status: number };

let server: Server | undefined;
const hanging: ServerResponse[] = [];

afterAll(async () => {
  for (const response of hanging) response.destroy();
  await new Promise((resolveClose) => (server === undefined ? resolveClose(undefined) : server.close(resolveClose)));
});

test('a clean close resumes the watch; 410 and HTTP 500 lead to a fresh list; stop ends an open watch', async () => {
  const script: Step[] = [
    { list: { resourceVersion: '10', items: [pod('a', '5')] } },
    { watch: [{ type: 'ADDED', object: pod('b', '11') }], then: 'close' },
    { watch: [{ type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old resource version' } }], then: 'hang' },
    { list: { resourceVersion: '20', items: [pod('b', '20')] } },
    { status: 500 },
    { list: { resourceVersion: '30', items: [pod('b', '20'), pod('c', '30')] } },
    { watch: [{ type: 'DELETED', object: pod('a', '31') }, { type: 'BOOKMARK', object: { metadata: { resourceVersion: '35' } } }], then: 'hang' },
  ];
  const requests: string[] = [];
  const port = await freePort();
  server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const isWatch = url.searchParams.get('watch') === 'true';
    requests.push(isWatch ? `watch rv=${url.searchParams.get('resourceVersion')} bookmarks=${url.searchParams.get('allowWatchBookmarks')}` : 'list');
    const step = script.shift();
    if (step === undefined || 'status' in step) {
      response.writeHead(step?.status ?? 500).end();
    } else if ('list' in step) {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'PodList', metadata: { resourceVersion: step.list.resourceVersion }, items: step.list.items }));
    } else {
      response.writeHead(200, { 'content-type': 'application/json' });
      for (const event of step.watch) response.write(`${JSON.stringify(event)}\n`);
      if (step.then === 'close') response.end();
      else hanging.push(response);
    }
  });
  await new Promise<void>((resolveListen) => server?.listen(port, '127.0.0.1', resolveListen));

  const k8s = await loadClientNode();
  const config = new k8s.KubeConfig();
  config.loadFromOptions({ clusters: [{ name: 'fake', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }], users: [{ name: 'nobody' }], contexts: [{ name: 'fake', cluster: 'fake', user: 'nobody' }], currentContext: 'fake' });
  const lists: string[][] = [];
  const events: string[] = [];
  const watch = new ListWatch<V1Pod>({
    name: 'pods',
    apis: { k8s, config },
    list: async () => {
      const body = (await (await fetch(`http://127.0.0.1:${port}/api/v1/pods`)).json()) as { metadata: { resourceVersion: string }; items: V1Pod[] };
      if (body.items === undefined) throw new Error('list failed');
      return { items: body.items, resourceVersion: body.metadata.resourceVersion };
    },
    watchPath: '/api/v1/pods',
    onList: (items) => lists.push(items.map((item) => item.metadata?.name ?? '')),
    onEvent: (type, object) => events.push(`${type} ${object.metadata?.name}`),
    log: () => undefined,
  });
  watch.start();
  await waitFor('the script played to its end', async () => (script.length === 0 && events.length === 2 ? true : undefined), { timeoutMs: 20_000 });
  await watch.stop();

  expect(requests).toEqual(['list', 'watch rv=10 bookmarks=true', 'watch rv=11 bookmarks=true', 'list', 'watch rv=20 bookmarks=true', 'list', 'watch rv=30 bookmarks=true']);
  expect(lists).toEqual([['a'], ['b'], ['b', 'c']]);
  expect(events).toEqual(['ADDED b', 'DELETED a']);
});
