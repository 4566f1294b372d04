/**
 * A bounded, non-blocking front for a line sink: callers enqueue lines and return at once; the
 * queue is written in one batch on the next turn of the event loop. When more than `maxBytes` are
 * queued, new lines are dropped and counted instead of growing memory or slowing client traffic.
 */
import type { LineSink } from './sink';

export interface BufferedWriterStats {
  written: number;
  dropped: number;
  queued_bytes: number;
}

export interface BufferedWriter {
  /** Queues one line (ending in '\n'); false when it was dropped (queue full or closed). */
  push(line: string): boolean;
  /** Resolves when everything queued so far has been handed to the sink. */
  flush(): Promise<void>;
  stats(): BufferedWriterStats;
  close(): Promise<void>;
}

export interface BufferedWriterDeps {
  onWritten?(n: number): void;
  onDropped?(n: number): void;
  /** Defaults to setImmediate. */
  schedule?(fn: () => void): void;
}

export function createBufferedWriter(
  sink: LineSink,
  maxBytes: number,
  deps: BufferedWriterDeps = {},
): BufferedWriter {
  const schedule = deps.schedule ?? ((fn: () => void) => void setImmediate(fn));
  let queue: string[] = [];
  let queuedBytes = 0;
  let scheduled = false;
  let closed = false;
  let waiters: (() => void)[] = [];
  const st = { written: 0, dropped: 0 };

  const drop = (n: number): void => {
    st.dropped += n;
    deps.onDropped?.(n);
  };

  const run = (): void => {
    scheduled = false;
    const batch = queue;
    queue = [];
    queuedBytes = 0;
    if (batch.length > 0) {
      if (sink.write(batch.join(''))) {
        st.written += batch.length;
        deps.onWritten?.(batch.length);
      } else {
        drop(batch.length);
      }
    }
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };

  const kick = (): void => {
    if (scheduled) return;
    scheduled = true;
    schedule(run);
  };

  return {
    push(line) {
      // UTF-16 length: a cheap upper bound of what the line costs in memory.
      if (closed || queuedBytes + line.length > maxBytes) {
        drop(1);
        return false;
      }
      queue.push(line);
      queuedBytes += line.length;
      kick();
      return true;
    },
    flush() {
      if (!scheduled) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
    stats: () => ({ ...st, queued_bytes: queuedBytes }),
    async close() {
      if (scheduled) await new Promise<void>((resolve) => waiters.push(resolve));
      closed = true;
      await sink.close();
    },
  };
}
