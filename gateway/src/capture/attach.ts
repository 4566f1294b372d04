/**
 * Wiring helpers for the composition root: hook a CaptureSink into the session observer (the
 * observer's optional onFrame is set only while capturing, so an idle capture costs nothing per
 * frame), and the controls the sidecar's /v1/capture endpoints use.
 */
import type { SessionObserver } from '../session/types';
import type { CaptureSink, CaptureStats } from './capture-sink';

export interface CaptureControls {
  start(): Promise<CaptureStats>;
  stop(): Promise<CaptureStats>;
  status(): CaptureStats;
}

export function attachCapture(observer: SessionObserver, sink: CaptureSink): CaptureControls {
  // The decoded message and SQL text go along: redaction reads them, never the frame again.
  const onFrame: NonNullable<SessionObserver['onFrame']> = (direction, frame, conn, message, sql, refusal) =>
    sink.onFrame(direction, frame, conn, message, sql, refusal);
  const closed = observer.onConnectionClosed;
  observer.onConnectionClosed = (outcome, conn) => {
    closed(outcome, conn);
    sink.onConnectionClosed(outcome, conn);
  };
  return {
    start: async () => {
      sink.start();
      observer.onFrame = onFrame;
      return sink.stats();
    },
    stop: async () => {
      delete observer.onFrame;
      await sink.stop();
      return sink.stats();
    },
    status: () => sink.stats(),
  };
}
