// Operational transformation for plain text, the browser's twin of parley.collab.ot
// (TextOperation and OtClient). An operation is its wire form, an ot.js-style array: a
// positive integer retains, a string inserts, a negative integer deletes, all counted in
// UTF-16 code units. Operations here are always normalized as the server normalizes them, so
// both sides agree on every transform, insert ties included.

/** Builds a normalized operation; zero-length parts are ignored. */
class Builder {
  constructor() {
    this.ops = [];
  }

  retain(n) {
    if (n <= 0) return this;
    const last = this.ops[this.ops.length - 1];
    if (typeof last === 'number' && last > 0) this.ops[this.ops.length - 1] = last + n;
    else this.ops.push(n);
    return this;
  }

  insert(s) {
    if (!s) return this;
    const ops = this.ops;
    const last = ops[ops.length - 1];
    if (typeof last === 'string') {
      ops[ops.length - 1] = last + s;
    } else if (typeof last === 'number' && last < 0) {
      // An insert never follows a delete: the same edit has one form on both sides.
      const before = ops[ops.length - 2];
      if (typeof before === 'string') ops[ops.length - 2] = before + s;
      else ops.splice(ops.length - 1, 0, s);
    } else {
      ops.push(s);
    }
    return this;
  }

  delete(n) {
    if (n <= 0) return this;
    const last = this.ops[this.ops.length - 1];
    if (typeof last === 'number' && last < 0) this.ops[this.ops.length - 1] = last - n;
    else this.ops.push(-n);
    return this;
  }

  build() {
    return this.ops;
  }
}

export function builder() {
  return new Builder();
}

const isRetain = (c) => typeof c === 'number' && c > 0;
const isDelete = (c) => typeof c === 'number' && c < 0;
const isInsert = (c) => typeof c === 'string';
const length = (c) => (isInsert(c) ? c.length : Math.abs(c));

export function baseLength(op) {
  let n = 0;
  for (const c of op) if (!isInsert(c)) n += Math.abs(c);
  return n;
}

export function targetLength(op) {
  let n = 0;
  for (const c of op) if (!isDelete(c)) n += length(c);
  return n;
}

export function isNoop(op) {
  return op.length === 0 || (op.length === 1 && isRetain(op[0]));
}

export function apply(op, text) {
  if (baseLength(op) !== text.length) {
    throw new Error(`cannot apply: base length ${baseLength(op)}, text length ${text.length}`);
  }
  let result = '';
  let index = 0;
  for (const c of op) {
    if (isRetain(c)) {
      result += text.slice(index, index + c);
      index += c;
    } else if (isInsert(c)) {
      result += c;
    } else {
      index -= c;
    }
  }
  return result;
}

/** Walks an operation, taking its components in parts. */
class Cursor {
  constructor(op) {
    this.op = op;
    this.index = 0;
    this.head = op[0];
  }

  next() {
    this.index += 1;
    this.head = this.op[this.index];
  }

  take(n) {
    const c = this.head;
    if (n === length(c)) {
      this.next();
    } else if (isInsert(c)) {
      this.head = c.slice(n);
    } else {
      this.head = c > 0 ? c - n : c + n;
    }
  }
}

/** The single operation with the effect of `a` followed by `b`. */
export function compose(a, b) {
  if (targetLength(a) !== baseLength(b)) {
    throw new Error(`cannot compose: target length ${targetLength(a)}, base length ${baseLength(b)}`);
  }
  const out = builder();
  const first = new Cursor(a);
  const second = new Cursor(b);
  while (first.head !== undefined || second.head !== undefined) {
    if (isDelete(first.head)) {
      out.delete(-first.head);
      first.next();
      continue;
    }
    if (isInsert(second.head)) {
      out.insert(second.head);
      second.next();
      continue;
    }
    const x = first.head;
    const y = second.head;
    const n = Math.min(length(x), length(y));
    if (isRetain(x)) {
      if (isRetain(y)) out.retain(n);
      else out.delete(n);
    } else if (isRetain(y)) {
      out.insert(x.slice(0, n));
    }
    first.take(n);
    second.take(n);
  }
  return out.build();
}

/**
 * For `a` and `b` made concurrently on one text: [a', b'] with b then a' equal to a then b'.
 * On an insert tie `a`'s text comes first; as on the server, `a` is the client's operation.
 */
export function transform(a, b) {
  if (baseLength(a) !== baseLength(b)) {
    throw new Error(`cannot transform: base lengths ${baseLength(a)} and ${baseLength(b)}`);
  }
  const aPrime = builder();
  const bPrime = builder();
  const left = new Cursor(a);
  const right = new Cursor(b);
  while (left.head !== undefined || right.head !== undefined) {
    if (isInsert(left.head)) {
      aPrime.insert(left.head);
      bPrime.retain(left.head.length);
      left.next();
      continue;
    }
    if (isInsert(right.head)) {
      aPrime.retain(right.head.length);
      bPrime.insert(right.head);
      right.next();
      continue;
    }
    const x = left.head;
    const y = right.head;
    const n = Math.min(length(x), length(y));
    if (isRetain(x) && isRetain(y)) {
      aPrime.retain(n);
      bPrime.retain(n);
    } else if (isDelete(x) && isRetain(y)) {
      aPrime.delete(n);
    } else if (isRetain(x) && isDelete(y)) {
      bPrime.delete(n);
    }
    left.take(n);
    right.take(n);
  }
  return [aPrime.build(), bPrime.build()];
}

/**
 * Where `index` in a text lands after `op`. Text inserted exactly at the index goes after it
 * unless `stickRight`, so a caret stays put while someone types at the same place.
 */
export function transformIndex(op, index, stickRight = false) {
  let position = 0;
  let result = index;
  for (const c of op) {
    if (position > index || (position === index && !stickRight && isInsert(c))) break;
    if (isRetain(c)) {
      position += c;
    } else if (isInsert(c)) {
      result += c.length;
    } else {
      result -= Math.min(-c, index - position);
      position -= c;
    }
  }
  return result;
}

/**
 * The operation turning `before` into `after`: one replaced span between a common prefix and
 * suffix. `caret`, the caret in `after`, places the span where the user edited ("a|a" + "a"
 * is an insert at 1, not at the end), since every edit ends at the caret.
 */
export function diff(before, after, caret = null) {
  let end = 0;
  const kept = caret === null ? -1 : after.length - caret;
  if (kept >= 0 && kept <= before.length && after.endsWith(before.slice(before.length - kept))) {
    end = kept;
  }
  const limit = Math.min(before.length, after.length) - end;
  let start = 0;
  while (start < limit && before.charCodeAt(start) === after.charCodeAt(start)) start += 1;
  while (
    end < Math.min(before.length, after.length) - start &&
    before.charCodeAt(before.length - 1 - end) === after.charCodeAt(after.length - 1 - end)
  ) {
    end += 1;
  }
  // Never split a surrogate pair: the server refuses an operation that cuts one.
  if (start > 0 && isHigh(before.charCodeAt(start - 1))) start -= 1;
  if (end > 0 && isLow(before.charCodeAt(before.length - end))) end -= 1;
  return builder()
    .retain(start)
    .delete(before.length - start - end)
    .insert(after.slice(start, after.length - end))
    .retain(end)
    .build();
}

const isHigh = (code) => code >= 0xd800 && code <= 0xdbff;
const isLow = (code) => code >= 0xdc00 && code <= 0xdfff;

/**
 * The client side of OT against the server that orders all operations: at most one
 * operation in flight, later edits gathered in one buffer. Each method returns the next state
 * with what to do; states are plain immutable objects, as in OtClient.java.
 */
export const OtClient = {
  synced() {
    return Object.freeze({ outstanding: null, buffer: null });
  },

  /** The user changed the local text (already applied) by `op`: returns { state, send }. */
  applyClient(state, op) {
    if (state.outstanding === null) {
      return { state: Object.freeze({ outstanding: op, buffer: null }), send: op };
    }
    const buffer = state.buffer === null ? op : compose(state.buffer, op);
    return { state: Object.freeze({ outstanding: state.outstanding, buffer }), send: null };
  },

  /** Someone else's operation came from the server: returns { state, apply } for the local text. */
  applyServer(state, op) {
    if (state.outstanding === null) return { state, apply: op };
    const [outstanding, first] = transform(state.outstanding, op);
    if (state.buffer === null) {
      return { state: Object.freeze({ outstanding, buffer: null }), apply: first };
    }
    const [buffer, second] = transform(state.buffer, first);
    return { state: Object.freeze({ outstanding, buffer }), apply: second };
  },

  /** The operation in flight was acknowledged: returns { state, send }. */
  serverAck(state) {
    if (state.outstanding === null) throw new Error('an acknowledgement arrived but nothing is in flight');
    if (state.buffer === null) return { state: OtClient.synced(), send: null };
    return { state: Object.freeze({ outstanding: state.buffer, buffer: null }), send: state.buffer };
  },

  /** Local edits not yet in the server's text, as one operation (or null). */
  pending(state) {
    if (state.outstanding === null) return null;
    return state.buffer === null ? state.outstanding : compose(state.outstanding, state.buffer);
  },
};
