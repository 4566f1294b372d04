/**
 * One evaluation of a compiled policy, through the module's exports (OPA's wasm ABI 1.2
 * `opa_eval`) instead of the SDK's `LoadedPolicy.evaluate`: the input's JSON text is written
 * straight into the instance's linear memory (no intermediate byte array, no copy), and the
 * result's JSON text is read where `opa_eval` left it and parsed only once per distinct text —
 * a policy answers most documents with one of a few decisions, byte for byte the same.
 *
 * It does what the SDK's ABI 1.2 fast path does (@open-policy-agent/opa-wasm 1.10, `evaluate`):
 * the input at `dataHeapPtr`, memory grown first when it does not fit, `opa_eval(0, entrypoint,
 * dataAddr, inputAddr, inputLen, heapPtr, 0)` (format 0: JSON), the result a NUL-terminated JSON
 * text. It reads the SDK instance's fields for that (`wasmInstance`, `mem`, `dataAddr`,
 * `dataHeapPtr`, `minorVersion`); an SDK that does not have them, or a module older than ABI 1.2,
 * gets the SDK's own `evaluate` (`direct` tells which; a unit test pins it for the SDK we ship).
 */
import type { LoadedPolicy } from '@open-policy-agent/opa-wasm';
import { parseDecision, type ParsedDecision } from './decision';
import { deepFreeze } from '../sql/frozen';
import { GenerationalCache } from './generational-cache';

interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

/** The fields of the SDK's LoadedPolicy this module reads (opa-wasm 1.10, src/opa.js). */
interface PolicyInternals {
  minorVersion?: unknown;
  mem?: WasmMemory;
  wasmInstance?: { exports?: { opa_eval?: unknown } };
  dataAddr?: unknown;
  dataHeapPtr?: unknown;
}

type OpaEval = (
  reserved: number,
  entrypoint: number,
  dataAddr: number,
  inputAddr: number,
  inputLen: number,
  heapPtr: number,
  format: number,
) => number;

const PAGE = 64 * 1024;
/** Distinct result texts kept with their parsed decision (the ones in use survive: GenerationalCache). */
const MAX_RESULTS = 256;
/** Longer result texts are parsed every time (a decision quoting its input, say). */
const MAX_RESULT_TEXT = 4096;

export class WasmEvaluator {
  /** Whether evaluations go through the exports (false: the SDK's evaluate). */
  readonly direct: boolean;
  private readonly opaEval: OpaEval | null;
  private readonly internals: PolicyInternals;
  /** A Buffer over the linear memory, made again when the memory grows (its buffer changes). */
  private buffer: ArrayBuffer | null = null;
  private bytes: Buffer = Buffer.alloc(0);
  private readonly results = new GenerationalCache<ParsedDecision>(MAX_RESULTS);
  private readonly encoder = new TextEncoder();

  constructor(
    private readonly policy: LoadedPolicy,
    private readonly entrypoint: number,
  ) {
    const p = policy as unknown as PolicyInternals;
    this.internals = p;
    const opaEval = p.wasmInstance?.exports?.opa_eval;
    this.direct =
      typeof p.minorVersion === 'number' &&
      p.minorVersion >= 2 &&
      typeof opaEval === 'function' &&
      typeof p.mem === 'object' &&
      p.mem !== null &&
      // Not instanceof: the memory may come from another realm (a vm context, Jest).
      Object.prototype.toString.call(p.mem.buffer) === '[object ArrayBuffer]' &&
      typeof p.dataAddr === 'number' &&
      typeof p.dataHeapPtr === 'number';
    this.opaEval = this.direct ? (opaEval as OpaEval) : null;
  }

  /**
   * The decision for the input JSON text `text`, validated (parseDecision) and deeply frozen: the
   * same object for every evaluation that gave the same result text. Throws what the module or the
   * SDK throws (a trap, an abort); the caller recreates the instance then.
   */
  evaluate(text: string): ParsedDecision {
    if (this.opaEval === null) {
      const raw = this.policy.evaluate(this.encoder.encode(text).buffer, this.entrypoint);
      return deepFreeze(parseDecision(raw));
    }
    const p = this.internals;
    const mem = p.mem!;
    const inputAddr = p.dataHeapPtr as number;
    let bytes = this.view(mem);
    // UTF-8 takes at most 3 bytes per UTF-16 unit; count exactly only when that bound does not fit.
    if (inputAddr + text.length * 3 > bytes.length) {
      const need = inputAddr + Buffer.byteLength(text, 'utf8') - bytes.length;
      if (need > 0) mem.grow(Math.ceil(need / PAGE));
      bytes = this.view(mem);
    }
    const inputLen = bytes.write(text, inputAddr, 'utf8');
    // UTF-8 is never shorter than UTF-16 units: fewer bytes means a cut input, which opa_eval would
    // evaluate as an undefined input rather than refuse.
    if (inputLen < text.length) throw new Error('the input was not written whole into the policy memory');
    // An address (unsigned) above 2 GiB comes back from wasm as a negative i32.
    const addr =
      this.opaEval(0, this.entrypoint, p.dataAddr as number, inputAddr, inputLen, inputAddr + inputLen, 0) >>>
      0;
    // The evaluation may have grown the memory (a new buffer).
    bytes = this.view(mem);
    const end = bytes.indexOf(0, addr);
    if (end < 0) throw new Error('the policy result is not NUL-terminated');
    if (end - addr > MAX_RESULT_TEXT)
      return deepFreeze(parseDecision(JSON.parse(bytes.toString('utf8', addr, end))));
    const result = bytes.toString('latin1', addr, end);
    let parsed = this.results.get(result);
    if (parsed === undefined) {
      // latin1 keeps one char per byte: exact as a key; the decision is parsed from the UTF-8 text.
      parsed = deepFreeze(parseDecision(JSON.parse(bytes.toString('utf8', addr, end))));
      this.results.set(result, parsed);
    }
    return parsed;
  }

  private view(mem: WasmMemory): Buffer {
    const buf = mem.buffer;
    if (buf !== this.buffer) {
      this.buffer = buf;
      this.bytes = Buffer.from(buf);
    }
    return this.bytes;
  }
}
