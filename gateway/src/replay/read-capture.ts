/**
 * Reads capture files for replay: pgward captures (JSON Lines, streamed) and packet captures
 * (pcap/pcapng, imported in memory by capture/pcap.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { PgwardError, ErrorCodes } from '../errors';
import type { CaptureRecord } from '../capture/format';
import { importPcap, isPacketCapture } from '../capture/pcap';

export interface CaptureSource {
  /** The file's base name (decision keys use it). */
  name: string;
  header: unknown;
  records: AsyncIterable<CaptureRecord> | Iterable<CaptureRecord>;
  warnings: string[];
}

export interface ReadOptions {
  serverPort?: number;
  /** Bytes of the file consumed so far (for a progress bar). */
  onBytes?(n: number): void;
}

function bad(file: string, msg: string): PgwardError {
  return new PgwardError(ErrorCodes.REPLAY_INPUT, `${file}: ${msg}`);
}

export async function openCapture(file: string, opts: ReadOptions = {}): Promise<CaptureSource> {
  const name = path.basename(file);
  let fd: fs.promises.FileHandle;
  try {
    fd = await fs.promises.open(file, 'r');
  } catch (err) {
    throw bad(file, (err as Error).message);
  }
  const head = Buffer.alloc(4);
  try {
    await fd.read(head, 0, 4, 0);
  } finally {
    await fd.close();
  }
  if (isPacketCapture(head)) {
    const buf = await fs.promises.readFile(file);
    const imp = importPcap(buf, opts.serverPort !== undefined ? { serverPort: opts.serverPort } : {});
    opts.onBytes?.(buf.length);
    return { name, header: imp.header, records: imp.records, warnings: imp.warnings };
  }
  const lines = readLines(file, opts.onBytes);
  const it = lines[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) throw bad(file, 'empty file');
  let header: unknown;
  try {
    header = JSON.parse(first.value.text);
  } catch {
    throw bad(file, 'not a pgward capture or a pcap/pcapng file');
  }
  async function* records(): AsyncGenerator<CaptureRecord> {
    for (let r = await it.next(); !r.done; r = await it.next()) {
      const { text, line } = r.value;
      if (text.length === 0) continue;
      let rec: unknown;
      try {
        rec = JSON.parse(text);
      } catch {
        throw bad(file, `line ${line}: not JSON`);
      }
      if (rec === null || typeof rec !== 'object' || typeof (rec as { conn?: unknown }).conn !== 'string') {
        throw bad(file, `line ${line}: not a capture record`);
      }
      yield rec as CaptureRecord;
    }
  }
  return { name, header, records: records(), warnings: [] };
}

/** Lines of a file, streamed in 1 MiB chunks. */
async function* readLines(
  file: string,
  onBytes?: (n: number) => void,
): AsyncGenerator<{ text: string; line: number }> {
  const stream = fs.createReadStream(file, { highWaterMark: 1 << 20 });
  let rest = '';
  let line = 0;
  const decoder = new TextDecoder('utf-8');
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    onBytes?.(chunk.length);
    const text = rest + decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      line++;
      yield { text: text.slice(start, nl), line };
      start = nl + 1;
    }
    rest = text.slice(start);
  }
  rest += decoder.decode();
  if (rest.length > 0) yield { text: rest, line: line + 1 };
}
