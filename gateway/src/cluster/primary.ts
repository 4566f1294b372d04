/**
 * `pgward serve --workers N` (N > 1): the primary forks N workers that share the client listener
 * (Node.js `cluster`; on Linux the primary accepts and hands each connection to a worker in turn).
 * It serves no client itself. It routes what crosses workers:
 *
 * - cancels: a key names its worker (cancel-key.ts); a worker that receives another worker's key
 *   sends it here and it is delivered there; a key naming another replica goes to the peers, and
 *   forwards from peers (peer-channel.ts, listened to here) go to the worker the key names;
 * - metrics: worker 0's sidecar asks for the sum over all workers (prom-client AggregatorRegistry);
 * - reloads and capture on/off: asked of worker 0's sidecar, run in every worker; readiness holds only while
 *   every worker reports the same revision;
 * - signals: SIGTERM/SIGINT drain every worker (each runs lifecycle/drain.ts), SIGHUP reloads each;
 * - output: workers' stdout and stderr come here through pipes and are written whole line by whole
 *   line, so audit, decision and statement records on stdout never interleave.
 */
import cluster, { type Worker } from 'node:cluster';
import fs from 'node:fs';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import type { Config } from '../config';
import { CancelKeyLayout } from './cancel-key';
import { readyToCommit } from './gated-engine';
import {
  isPgwardMessage,
  WORKER_INDEX_ENV,
  WORKERS_ENV,
  type PrimaryToWorker,
  type WorkerOp,
  type WorkerToPrimary,
} from './messages';
import { forwardToPeers, peerSecret, startPeerServer } from './peer-channel';

export interface PrimaryHandle {
  stop(signal: string): Promise<void>;
  reload(): void;
}

/** Writes complete lines only; keeps a partial line until its end arrives. */
function pipeLines(from: Readable, to: NodeJS.WriteStream): () => void {
  let rest = '';
  from.setEncoding('utf8');
  from.on('data', (chunk: string) => {
    const s = rest + chunk;
    const end = s.lastIndexOf('\n');
    if (end < 0) {
      rest = s;
      return;
    }
    rest = s.slice(end + 1);
    if (!to.write(s.slice(0, end + 1))) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  return () => {
    if (rest !== '') to.write(rest + '\n');
    rest = '';
  };
}

export async function runPrimary(config: Config, workers: number, logger: Logger): Promise<PrimaryHandle> {
  const c = config.cluster;
  const layout = new CancelKeyLayout({ peerBits: c.peer_bits, peerId: c.peer_id, workers, workerIndex: 0 });
  const secret = peerSecret(c, (f) => fs.readFileSync(f, 'utf8'));
  const aggregator = new AggregatorRegistry();
  const byIndex: Array<Worker | null> = new Array<Worker | null>(workers).fill(null);
  const revisions: Array<string | null> = new Array<string | null>(workers).fill(null);
  const prepared: Array<string | null> = new Array<string | null>(workers).fill(null);
  const commitIfReady = (revision: string): void => {
    if (!readyToCommit(revision, revisions, prepared)) return;
    for (const w of byIndex) send(w, { pgward: 'commit', revision });
  };
  let stopping = false;
  const listening = new Set<number>();
  let admin: string | null = null;
  let announced = false;

  const send = (w: Worker | null | undefined, m: PrimaryToWorker): void => {
    if (w?.isConnected()) w.send(m);
  };
  const publishRevisions = (): void => {
    for (const w of byIndex) send(w, { pgward: 'revisions', revisions: [...revisions] });
  };
  const deliver = (pid: number, key: Buffer, fromPeer: boolean): void => {
    const route = layout.route(key);
    if (route === null || route.peer !== layout.self.peer) return;
    send(byIndex[route.worker], { pgward: 'deliver', pid, key: key.toString('hex'), fromPeer });
  };
  const toPeers = (pid: number, key: Buffer): void => {
    if (secret !== null && c.peers.length > 0)
      void forwardToPeers(
        { peers: c.peers, secret, timeoutMs: c.peer_timeout_ms, logger },
        { processId: pid, secretKey: key },
      );
  };

  // Operations asked by worker 0's sidecar (reload, capture): every worker runs them, the answer
  // waits for all.
  let opSeq = 1;
  const ops = new Map<number, { results: unknown[]; left: number; done: (r: unknown[] | null) => void }>();
  const runAll = (op: WorkerOp): Promise<unknown[] | null> =>
    new Promise((done) => {
      if (byIndex.some((w) => w === null || !w.isConnected())) return done(null);
      const id = opSeq++;
      ops.set(id, { results: new Array<unknown>(workers).fill(null), left: workers, done });
      for (const w of byIndex) send(w, { pgward: 'all-run', id, op });
    });
  const opDone = (index: number, id: number, result: unknown): void => {
    const r = ops.get(id);
    if (!r) return;
    r.results[index] = result;
    if (--r.left > 0) return;
    ops.delete(id);
    r.done(r.results);
  };

  /**
   * A worker started again after a crash loads the bundle its source holds now. When that is not
   * what the others run (the file was replaced, the bundle server moved on, without a reload), the
   * instance would serve two policies and never be ready again: every worker reloads, so all
   * converge on the source's bundle through the usual prepare-and-commit.
   */
  const converge = (index: number, revision: string | null): void => {
    const others = revisions.filter((r, i) => i !== index && r !== null);
    if (revision === null || others.every((r) => r === revision)) return;
    logger.warn(
      { worker: index, revision, others: [...new Set(others)] },
      'a restarted worker loaded another revision: reloading every worker',
    );
    void runAll('reload').then((results) => {
      const failed =
        results === null
          ? 'not every worker is running'
          : results.find((r) => (r as { ok?: boolean }).ok === false);
      if (failed !== undefined)
        logger.error(
          { worker: index, result: failed },
          'reload after a worker restart failed: the instance stays unready',
        );
    });
  };

  const onMessage = (index: number, w: Worker, m: WorkerToPrimary): void => {
    switch (m.pgward) {
      case 'cancel': {
        const key = Buffer.from(m.key, 'hex');
        if (m.route.peer === layout.self.peer) deliver(m.pid, key, false);
        else toPeers(m.pid, key);
        return;
      }
      case 'cancel-peers':
        if (c.peer_bits === 0) toPeers(m.pid, Buffer.from(m.key, 'hex'));
        return;
      case 'metrics':
        aggregator.clusterMetrics().then(
          (text) => send(w, { pgward: 'metrics-result', id: m.id, text }),
          (err: Error) => {
            logger.warn({ err: err.message }, 'metrics aggregation failed');
            send(w, { pgward: 'metrics-result', id: m.id, text: null });
          },
        );
        return;
      case 'all':
        void runAll(m.op).then((results) => send(w, { pgward: 'all-result', id: m.id, results }));
        return;
      case 'all-done':
        opDone(index, m.id, m.result);
        return;
      case 'revision':
        revisions[index] = m.revision;
        if (prepared[index] === m.revision) prepared[index] = null;
        publishRevisions();
        return;
      case 'prepared':
        prepared[index] = m.revision;
        commitIfReady(m.revision);
        return;
      case 'listening':
        if (announced) converge(index, m.revision);
        listening.add(index);
        if (m.admin !== null) admin = m.admin;
        if (listening.size === workers && !announced) {
          announced = true;
          // The one line that says the instance serves (what worker 0 logs alone without workers).
          logger.info(
            { listen: m.listen, admin, upstream: config.upstream.address, bundle: m.revision, workers },
            'pgward listening',
          );
        }
        return;
    }
  };

  cluster.setupPrimary({ silent: true });
  const fork = (index: number): void => {
    const w = cluster.fork({ [WORKER_INDEX_ENV]: String(index), [WORKERS_ENV]: String(workers) });
    byIndex[index] = w;
    const flushOut = w.process.stdout ? pipeLines(w.process.stdout, process.stdout) : () => undefined;
    const flushErr = w.process.stderr ? pipeLines(w.process.stderr, process.stderr) : () => undefined;
    w.on('message', (m: unknown) => {
      if (isPgwardMessage<WorkerToPrimary>(m)) onMessage(index, w, m);
    });
    // A send to a worker whose channel is closing (it is exiting: a drain, a crash) fails after
    // isConnected() said yes; Node reports it as the worker's 'error' event, which without a
    // listener would end the primary with exit 1 in the middle of a clean drain.
    w.on('error', (err: Error) => logger.warn({ worker: index, err: err.message }, 'worker channel error'));
    w.on('exit', (code, signal) => {
      flushOut();
      flushErr();
      byIndex[index] = null;
      revisions[index] = null;
      prepared[index] = null;
      publishRevisions();
      // An operation waiting for this worker will not complete: answer it as failed.
      for (const [id, r] of ops) {
        ops.delete(id);
        r.done(null);
      }
      if (stopping) return;
      if (!announced) {
        // A worker that cannot start (a bad bundle, a taken port) would fail again: stop as one process does.
        logger.fatal({ worker: index, code, signal }, 'pgward failed to start');
        stopping = true;
        for (const o of byIndex) o?.process.kill('SIGKILL');
        process.exit(1);
      }
      logger.error({ worker: index, code, signal }, 'worker exited; starting it again');
      setTimeout(() => fork(index), 500).unref();
    });
  };
  for (let i = 0; i < workers; i++) fork(i);

  const peerServer =
    c.peer_listen !== undefined && secret !== null
      ? await startPeerServer({
          listen: c.peer_listen,
          secret,
          timeoutMs: c.peer_timeout_ms,
          logger,
          deliver: (f) => deliver(f.processId, f.secretKey, true),
        })
      : null;
  logger.info({ workers, peer_listen: peerServer ? peerServer.port : null }, 'pgward primary started');

  return {
    async stop(signal: string): Promise<void> {
      if (stopping) return;
      stopping = true;
      const exits = byIndex
        .filter((w): w is Worker => w !== null)
        .map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.isDead()) return resolve();
              w.once('exit', () => resolve());
              try {
                w.process.kill(signal === 'SIGINT' ? 'SIGINT' : 'SIGTERM');
              } catch {
                // It exited in between: its 'exit' resolves.
              }
            }),
        );
      await Promise.all(exits);
      peerServer?.close();
      logger.info('all workers stopped');
    },
    reload(): void {
      for (const w of byIndex) if (w && !w.isDead()) w.process.kill('SIGHUP');
    },
  };
}
