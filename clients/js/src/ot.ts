// Operational transformation for plain text: the package's twin of the server's
// parley.collab.ot.TextOperation and OtClient, and of DocumentEntity.transformIndex for
// cursors. docs/ot-vectors.json holds cases both implementations are tested against
// (test/ot.test.js here, OtVectorsTest on the server), so the two cannot drift apart.

import { ParleyError } from './errors.js';
import type { WireOperation } from './protocol.js';

/** Retains and deletes count UTF-16 code units; the server refuses lengths past a Java int. */
const MAX_LENGTH = 2 ** 31 - 1;

/**
 * One edit of a plain text, in the model of ot.js: a walk over the whole text that retains
 * (a positive integer), inserts (a string) or deletes (a negative integer), measured in UTF-16
 * code units, as a JavaScript string's `length` counts and as the server counts.
 *
 * Immutable and always normalized as the server normalizes: no empty components, adjacent
 * components of one kind merged, and an insert never directly after a delete (it goes first).
 * Equal effects therefore have equal components, and both sides break insert ties alike.
 * Text stays well-formed UTF-16: no insert holds a lone surrogate, and `apply` refuses an
 * operation that cuts a surrogate pair of the text.
 */
export class TextOperation {
  private constructor(
    /** The wire form's components: positive = retain, string = insert, negative = delete. */
    readonly components: readonly (number | string)[],
    /** Length of the text this operation applies to. */
    readonly baseLength: number,
    /** Length of the text it produces. */
    readonly targetLength: number,
  ) {}

  /** A builder that appends components and normalizes as it goes. */
  static builder(): OperationBuilder {
    return new OperationBuilder((components, base, target) => new TextOperation(components, base, target));
  }

  /** The operation that leaves a text of `length` code units as it is. */
  static identity(length: number): TextOperation {
    return TextOperation.builder().retain(length).build();
  }

  /**
   * Reads the wire form. Throws a `ParleyError` `bad_operation` for a component that is 0, not
   * an integer, out of range, an empty string or of another type, and for a lone surrogate.
   */
  static fromWire(wire: unknown): TextOperation {
    if (!Array.isArray(wire)) throw badOperation('an operation must be an array');
    const builder = TextOperation.builder();
    wire.forEach((component: unknown, i) => {
      if (typeof component === 'string') {
        if (component === '') throw badOperation(`component ${i} is an empty string; inserts must not be empty`);
        builder.insert(component);
      } else if (typeof component === 'number' && Number.isInteger(component)) {
        if (Math.abs(component) > MAX_LENGTH) throw badOperation(`component ${i} is ${component}; too large for a text length`);
        if (component > 0) builder.retain(component);
        else if (component < 0) builder.delete(-component);
        else throw badOperation(`component ${i} is 0; retains and deletes must not be zero`);
      } else {
        throw badOperation(`component ${i} is ${JSON.stringify(component) ?? typeof component}; expected an integer or a string`);
      }
    });
    return builder.build();
  }

  /**
   * The operation turning `before` into `after` as one replaced span between their common
   * prefix and suffix: what a text field's `input` event did, for an editor that keeps the
   * text in a `<textarea>`. `caret`, the caret's index in `after`, places an edit the texts
   * alone leave ambiguous where the user made it (typing "a" at 1 in "aa" is an insert at 1,
   * not at the end), since every edit ends at the caret. A surrogate pair is never split.
   */
  static diff(before: string, after: string, caret?: number): TextOperation {
    const shorter = Math.min(before.length, after.length);
    let end = 0;
    const kept = caret === undefined ? -1 : after.length - caret;
    // The text after the caret is what the edit left alone, when it is there in `before`.
    if (kept >= 0 && kept <= shorter && after.endsWith(before.slice(before.length - kept))) end = kept;
    let start = 0;
    while (start < shorter - end && before.charCodeAt(start) === after.charCodeAt(start)) start++;
    while (end < shorter - start && before.charCodeAt(before.length - 1 - end) === after.charCodeAt(after.length - 1 - end)) end++;
    if (start > 0 && isHigh(before.charCodeAt(start - 1))) start--;
    if (end > 0 && isLow(before.charCodeAt(before.length - end))) end--;
    return TextOperation.builder()
      .retain(start)
      .delete(before.length - start - end)
      .insert(after.slice(start, after.length - end))
      .retain(end)
      .build();
  }

  /** The wire form, e.g. `[3, "hi", -2]`; a fresh array. */
  toWire(): WireOperation {
    return [...this.components];
  }

  /** The operation in its wire form (what `doc_submit` and the pushes carry). */
  toJSON(): WireOperation {
    return this.toWire();
  }

  /** The wire form as JSON text. */
  toString(): string {
    return JSON.stringify(this.components);
  }

  /** True when applying it leaves every text it fits unchanged. */
  isNoop(): boolean {
    return this.components.length === 0 || (this.components.length === 1 && isRetain(this.components[0]));
  }

  /** Whether `other` has the same components and lengths. */
  equals(other: TextOperation): boolean {
    return this.components.length === other.components.length && this.components.every((c, i) => c === other.components[i]);
  }

  /**
   * Applies this operation to `text`. Throws `base_length_mismatch` if `text` is not
   * `baseLength` long, `bad_operation` if the operation cuts a surrogate pair.
   */
  apply(text: string): string {
    this.requireFits(text, 'apply');
    const parts: string[] = [];
    let index = 0;
    for (const c of this.components) {
      if (typeof c === 'string') {
        parts.push(c);
      } else if (c > 0) {
        parts.push(text.slice(index, index + c));
        index += c;
      } else {
        index -= c;
      }
    }
    return parts.join('');
  }

  /** The operation that undoes this one on `apply(text)`; `text` is what this one applies to. */
  invert(text: string): TextOperation {
    this.requireFits(text, 'invert');
    const inverse = TextOperation.builder();
    let index = 0;
    for (const c of this.components) {
      if (typeof c === 'string') {
        inverse.delete(c.length);
      } else if (c > 0) {
        inverse.retain(c);
        index += c;
      } else {
        inverse.insert(text.slice(index, index - c));
        index -= c;
      }
    }
    return inverse.build();
  }

  /** The single operation with the effect of this one followed by `next`. */
  compose(next: TextOperation): TextOperation {
    if (this.targetLength !== next.baseLength) {
      throw lengthMismatch(`cannot compose an operation of target length ${this.targetLength} with one of base length ${next.baseLength}`);
    }
    const composed = TextOperation.builder();
    const first = new Walk(this.components);
    const second = new Walk(next.components);
    while (first.head !== undefined || second.head !== undefined) {
      // The first's deletes touch text the second never sees, and the second's inserts text
      // the first never made: both pass straight through.
      if (isDelete(first.head)) {
        composed.delete(-first.head);
        first.next();
        continue;
      }
      if (typeof second.head === 'string') {
        composed.insert(second.head);
        second.next();
        continue;
      }
      const x = first.require();
      const y = second.require();
      const n = Math.min(length(x), length(y));
      if (isRetain(x)) {
        if (isRetain(y)) composed.retain(n);
        else composed.delete(n);
      } else if (isRetain(y)) {
        composed.insert((x as string).slice(0, n));
      }
      // Otherwise the second deletes text the first inserted: it never existed.
      first.take(n);
      second.take(n);
    }
    return composed.build();
  }

  /**
   * For `a` and `b` made concurrently on one text, `[aPrime, bPrime]` such that `b` then
   * `aPrime` and `a` then `bPrime` give the same text. When both insert at one place, `a`'s
   * text comes first: as on the server, the client's own operation is `a` and the one the
   * server applied already is `b`.
   */
  static transform(a: TextOperation, b: TextOperation): [TextOperation, TextOperation] {
    if (a.baseLength !== b.baseLength) {
      throw lengthMismatch(`cannot transform an operation of base length ${a.baseLength} against one of base length ${b.baseLength}`);
    }
    const aPrime = TextOperation.builder();
    const bPrime = TextOperation.builder();
    const left = new Walk(a.components);
    const right = new Walk(b.components);
    while (left.head !== undefined || right.head !== undefined) {
      if (typeof left.head === 'string') {
        aPrime.insert(left.head);
        bPrime.retain(left.head.length);
        left.next();
        continue;
      }
      if (typeof right.head === 'string') {
        aPrime.retain(right.head.length);
        bPrime.insert(right.head);
        right.next();
        continue;
      }
      const x = left.require() as number;
      const y = right.require() as number;
      const n = Math.min(length(x), length(y));
      if (x > 0 && y > 0) {
        aPrime.retain(n);
        bPrime.retain(n);
      } else if (x < 0 && y > 0) {
        aPrime.delete(n);
      } else if (x > 0 && y < 0) {
        bPrime.delete(n);
      }
      // Deleted by both: gone on either side, so neither result mentions it.
      left.take(n);
      right.take(n);
    }
    return [aPrime.build(), bPrime.build()];
  }

  /**
   * Where `index`, a position in the text this operation applies to, lands in the text it
   * produces: the server's rule for cursors (DocumentEntity.transformIndex). Text inserted
   * exactly at the index pushes it on; an index inside deleted text moves to where the
   * deletion was.
   */
  transformIndex(index: number): number {
    let remaining = index;
    let moved = index;
    for (const c of this.components) {
      if (typeof c === 'string') {
        moved += c.length;
      } else if (c > 0) {
        remaining -= c;
      } else {
        moved -= Math.min(remaining, -c);
        remaining += c;
      }
      if (remaining < 0) break;
    }
    return moved;
  }

  private requireFits(text: string, verb: string): void {
    if (text.length !== this.baseLength) {
      throw lengthMismatch(`cannot ${verb}: the operation has base length ${this.baseLength} but the text has length ${text.length}`);
    }
    let index = 0;
    for (const c of this.components) {
      requireNotInsidePair(text, index);
      if (typeof c !== 'string') index += Math.abs(c);
    }
    requireNotInsidePair(text, index);
  }
}

/**
 * Builds a normalized operation. Zero lengths and empty inserts are skipped, so algorithms
 * may emit them freely; negative lengths and lone surrogates are refused (`bad_operation`).
 */
export class OperationBuilder {
  private readonly components: (number | string)[] = [];
  private base = 0;
  private target = 0;

  /** @internal Only `TextOperation.builder()` makes one. */
  constructor(private readonly make: (components: readonly (number | string)[], base: number, target: number) => TextOperation) {}

  /** Keeps the next `n` UTF-16 units. */
  retain(n: number): this {
    requireLength(n, 'retain');
    if (n === 0) return this;
    this.base = add(this.base, n);
    this.target = add(this.target, n);
    const last = this.components.length - 1;
    if (isRetain(this.components[last])) this.components[last] = add(this.components[last] as number, n);
    else this.components.push(n);
    return this;
  }

  /** Inserts `s` at the current position. */
  insert(s: string): this {
    if (typeof s !== 'string') throw badOperation('an insert must be a string');
    if (s === '') return this;
    this.target = add(this.target, s.length);
    const components = this.components;
    const last = components.length - 1;
    if (typeof components[last] === 'string') {
      components[last] += s;
    } else if (isDelete(components[last])) {
      // Insert-then-delete and delete-then-insert mean the same: one order keeps equal
      // operations equal component by component.
      if (typeof components[last - 1] === 'string') components[last - 1] += s;
      else components.splice(last, 0, s);
    } else {
      components.push(s);
    }
    return this;
  }

  /** Deletes the next `n` UTF-16 units. */
  delete(n: number): this {
    requireLength(n, 'delete');
    if (n === 0) return this;
    this.base = add(this.base, n);
    const last = this.components.length - 1;
    if (isDelete(this.components[last])) this.components[last] = -add(-(this.components[last] as number), n);
    else this.components.push(-n);
    return this;
  }

  /** The operation built so far. */
  build(): TextOperation {
    for (const c of this.components) {
      if (typeof c === 'string') requireWellFormed(c);
    }
    return this.make(Object.freeze([...this.components]), this.base, this.target);
  }
}

/** Walks a component list, consuming components in parts. */
class Walk {
  head: number | string | undefined;
  private index = 0;

  constructor(private readonly components: readonly (number | string)[]) {
    this.next();
  }

  next(): void {
    this.head = this.components[this.index++];
  }

  require(): number | string {
    if (this.head === undefined) throw new Error('operation ended early although lengths matched');
    return this.head;
  }

  take(n: number): void {
    const head = this.require();
    if (n === length(head)) this.next();
    else if (typeof head === 'string') this.head = head.slice(n);
    else this.head = head > 0 ? head - n : head + n;
  }
}

/**
 * The client side of OT against a server that orders all operations (ot.js's client model,
 * the server's OtClient): at most one operation in flight, edits made meanwhile gathered in
 * one buffer, sent when the one in flight is acknowledged. States are immutable values; each
 * transition returns the next state and what the caller must do.
 */
export type OtState =
  | { readonly kind: 'synchronized' }
  | { readonly kind: 'awaitingConfirm'; readonly outstanding: TextOperation }
  | { readonly kind: 'awaitingWithBuffer'; readonly outstanding: TextOperation; readonly buffer: TextOperation };

/** The transitions of the client state machine described by {@link OtState}. */
export const OtClient = {
  /** The state with nothing in flight and nothing buffered. */
  synced(): OtState {
    return SYNCHRONIZED;
  },

  /** The user edited the local text (already applied there) by `op`: send `send`, if any. */
  applyClient(state: OtState, op: TextOperation): { state: OtState; send?: TextOperation } {
    switch (state.kind) {
      case 'synchronized':
        return { state: { kind: 'awaitingConfirm', outstanding: op }, send: op };
      case 'awaitingConfirm':
        return { state: { kind: 'awaitingWithBuffer', outstanding: state.outstanding, buffer: op } };
      case 'awaitingWithBuffer':
        return { state: { kind: 'awaitingWithBuffer', outstanding: state.outstanding, buffer: state.buffer.compose(op) } };
    }
  },

  /**
   * The server applied someone else's `op`: apply `apply` to the local text. The client's
   * pending edits go first in transform, as on the server, so both sides break ties alike.
   */
  applyServer(state: OtState, op: TextOperation): { state: OtState; apply: TextOperation } {
    switch (state.kind) {
      case 'synchronized':
        return { state, apply: op };
      case 'awaitingConfirm': {
        const [outstanding, apply] = TextOperation.transform(state.outstanding, op);
        return { state: { kind: 'awaitingConfirm', outstanding }, apply };
      }
      case 'awaitingWithBuffer': {
        const [outstanding, first] = TextOperation.transform(state.outstanding, op);
        const [buffer, apply] = TextOperation.transform(state.buffer, first);
        return { state: { kind: 'awaitingWithBuffer', outstanding, buffer }, apply };
      }
    }
  },

  /** The server acknowledged the operation in flight; the buffer, if any, is to be sent now. */
  serverAck(state: OtState): { state: OtState; send?: TextOperation } {
    switch (state.kind) {
      case 'synchronized':
        throw new Error('an acknowledgement arrived but no operation is in flight');
      case 'awaitingConfirm':
        return { state: SYNCHRONIZED };
      case 'awaitingWithBuffer':
        return { state: { kind: 'awaitingConfirm', outstanding: state.buffer }, send: state.buffer };
    }
  },

  /** The operation sent and not yet acknowledged: what to send again after a reconnect. */
  inFlight(state: OtState): TextOperation | undefined {
    return state.kind === 'synchronized' ? undefined : state.outstanding;
  },
};

const SYNCHRONIZED: OtState = Object.freeze({ kind: 'synchronized' });

const isRetain = (c: number | string | undefined): c is number => typeof c === 'number' && c > 0;
const isDelete = (c: number | string | undefined): c is number => typeof c === 'number' && c < 0;
const length = (c: number | string): number => (typeof c === 'string' ? c.length : Math.abs(c));
const isHigh = (unit: number) => unit >= 0xd800 && unit <= 0xdbff;
const isLow = (unit: number) => unit >= 0xdc00 && unit <= 0xdfff;

function requireNotInsidePair(text: string, index: number): void {
  if (index > 0 && index < text.length && isHigh(text.charCodeAt(index - 1)) && isLow(text.charCodeAt(index))) {
    throw badOperation(`the operation cuts the surrogate pair at code units ${index - 1}-${index}`);
  }
}

function requireWellFormed(s: string): void {
  for (let i = 0; i < s.length; i++) {
    const unit = s.charCodeAt(i);
    if (isHigh(unit) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) {
      i++;
    } else if (isHigh(unit) || isLow(unit)) {
      throw badOperation(`an insert holds a lone surrogate at code unit ${i}`);
    }
  }
}

function requireLength(n: number, kind: string): void {
  if (!Number.isInteger(n) || n < 0) throw badOperation(`cannot ${kind} the length ${n}`);
}

function add(a: number, b: number): number {
  if (a + b > MAX_LENGTH) throw badOperation('the operation is too long');
  return a + b;
}

function badOperation(message: string): ParleyError {
  return new ParleyError('bad_operation', message);
}

function lengthMismatch(message: string): ParleyError {
  return new ParleyError('base_length_mismatch', message);
}
