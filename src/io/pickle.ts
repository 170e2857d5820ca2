// A deliberately small pickle machine: it understands exactly what torch.save writes for a state dict
// (and a plain checkpoint dict around one), and nothing that could run code. Python's pickle can call any
// importable function; here GLOBAL resolves only an allow-list of names, and REDUCE "calls" only the few of
// them that build containers and tensors, each implemented below in plain JS. Any other opcode or global is
// refused with an error naming it, its byte offset and the file.
//
// It also writes the matching subset (protocol 2), which is all a PyTorch checkpoint needs.

/** A class or function named by GLOBAL; inert unless REDUCE knows it. */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A Python tuple (kept apart from lists so shapes and persistent ids are recognisable). */
export class PickleTuple {
  constructor(readonly items: PickleValue[]) {}
}

/** The persistent id torch.save writes for a storage: ('storage', <Storage class>, key, location, numel). */
export interface StorageRef {
  kind: 'storage';
  storageType: string; // e.g. "FloatStorage"
  key: string;
  location: string;
  numel: number;
}

/** What torch._utils._rebuild_tensor_v2 would build: a view into a storage. */
export interface TensorRef {
  kind: 'tensor';
  storage: StorageRef;
  storageOffset: number;
  size: number[];
  stride: number[];
  requiresGrad: boolean;
}

export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | PickleValue[]
  | PickleTuple
  | Map<PickleValue, PickleValue>
  | PickleGlobal
  | StorageRef
  | TensorRef;

export function isTensorRef(v: unknown): v is TensorRef {
  return typeof v === 'object' && v !== null && (v as TensorRef).kind === 'tensor';
}

/** Storage classes torch.save names in persistent ids (legacy typed storages). Inert markers only. */
export const STORAGE_CLASSES = [
  'FloatStorage',
  'HalfStorage',
  'BFloat16Storage',
  'DoubleStorage',
  'LongStorage',
  'IntStorage',
  'ShortStorage',
  'CharStorage',
  'ByteStorage',
  'BoolStorage',
] as const;

const CALLABLE_GLOBALS = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
]);
const ALLOWED_GLOBALS = new Set([...CALLABLE_GLOBALS, ...STORAGE_CLASSES.map((s) => `torch.${s}`)]);

// opcode bytes
const OP = {
  MARK: 0x28, // (
  STOP: 0x2e, // .
  BINFLOAT: 0x47, // G
  BININT: 0x4a, // J
  BININT1: 0x4b, // K
  BININT2: 0x4d, // M
  NONE: 0x4e, // N
  BINPERSID: 0x51, // Q
  REDUCE: 0x52, // R
  BINUNICODE: 0x58, // X
  EMPTY_LIST: 0x5d, // ]
  APPEND: 0x61, // a
  BUILD: 0x62, // b
  GLOBAL: 0x63, // c
  APPENDS: 0x65, // e
  BINGET: 0x68, // h
  LONG_BINGET: 0x6a, // j
  BINPUT: 0x71, // q
  LONG_BINPUT: 0x72, // r
  SETITEM: 0x73, // s
  TUPLE: 0x74, // t
  SETITEMS: 0x75, // u
  EMPTY_DICT: 0x7d, // }
  EMPTY_TUPLE: 0x29, // )
  PROTO: 0x80,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  LONG1: 0x8a,
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  STACK_GLOBAL: 0x93,
  MEMOIZE: 0x94,
  FRAME: 0x95,
} as const;

// names of opcodes we refuse, for the error message
const KNOWN_OPCODE_NAMES: Record<number, string> = {
  0x30: 'POP',
  0x31: 'POP_MARK',
  0x32: 'DUP',
  0x46: 'FLOAT',
  0x49: 'INT',
  0x4c: 'LONG',
  0x50: 'PERSID',
  0x53: 'STRING',
  0x54: 'BINSTRING',
  0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE',
  0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES',
  0x64: 'DICT',
  0x67: 'GET',
  0x69: 'INST',
  0x6c: 'LIST',
  0x6f: 'OBJ',
  0x70: 'PUT',
  0x81: 'NEWOBJ',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x8b: 'LONG4',
  0x8e: 'BINBYTES8',
  0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x92: 'NEWOBJ_EX',
  0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

function dictKey(k: PickleValue, where: () => string): PickleValue {
  if (k === null || typeof k === 'string' || typeof k === 'number' || typeof k === 'boolean' || typeof k === 'bigint') return k;
  throw new Error(`${where()}: dict key of this type is not supported`);
}

function toInt(v: PickleValue, what: string, where: () => string): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  throw new Error(`${where()}: ${what} must be an integer`);
}

function intTuple(v: PickleValue, what: string, where: () => string): number[] {
  if (!(v instanceof PickleTuple)) throw new Error(`${where()}: ${what} must be a tuple`);
  return v.items.map((x) => toInt(x, what, where));
}

/** Interpret the arguments of an allow-listed callable. */
function callGlobal(fn: PickleGlobal, args: PickleValue, where: () => string): PickleValue {
  if (!(args instanceof PickleTuple)) throw new Error(`${where()}: REDUCE arguments for ${fn.qualified} are not a tuple`);
  const a = args.items;
  switch (fn.qualified) {
    case 'collections.OrderedDict':
      if (a.length === 0) return new Map();
      throw new Error(`${where()}: collections.OrderedDict called with ${a.length} arguments (only OrderedDict() is read)`);
    case 'torch._utils._rebuild_tensor_v2': {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      if (a.length !== 6 && a.length !== 7) throw new Error(`${where()}: _rebuild_tensor_v2 takes 6 or 7 arguments, got ${a.length}`);
      const storage = a[0] as StorageRef;
      if (typeof storage !== 'object' || storage === null || (storage as StorageRef).kind !== 'storage') {
        throw new Error(`${where()}: _rebuild_tensor_v2's first argument is not a storage`);
      }
      const size = intTuple(a[2]!, 'tensor size', where);
      const stride = intTuple(a[3]!, 'tensor stride', where);
      if (size.length !== stride.length) throw new Error(`${where()}: tensor size ${JSON.stringify(size)} and stride ${JSON.stringify(stride)} differ in rank`);
      const hooks = a[5];
      if (!(hooks instanceof Map) || hooks.size !== 0) throw new Error(`${where()}: tensors with backward hooks are not supported`);
      return {
        kind: 'tensor',
        storage,
        storageOffset: toInt(a[1]!, 'storage offset', where),
        size,
        stride,
        requiresGrad: a[4] === true,
      };
    }
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state': {
      // (data, requires_grad, backward_hooks[, state]): a Parameter is its tensor
      if (a.length < 3 || !isTensorRef(a[0])) throw new Error(`${where()}: ${fn.name} expects a tensor first`);
      return { ...a[0], requiresGrad: a[1] === true };
    }
    default:
      throw new Error(`${where()}: ${fn.qualified} cannot be called (it is a type marker)`);
  }
}

/**
 * Run a pickle. `file` names the source in errors. Returns the unpickled value; tensors come back as
 * TensorRef (nothing is read from storages here).
 */
export function unpickle(bytes: Uint8Array, file: string): PickleValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: StackItem[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = 0;
  let opAt = 0;
  const where = () => `supra: ${file}: pickle: at byte ${opAt}`;
  const need = (n: number) => {
    if (pos + n > bytes.length) throw new Error(`${where()}: unexpected end of data (truncated pickle)`);
  };
  const u8 = () => {
    need(1);
    return bytes[pos++]!;
  };
  const u16 = () => {
    need(2);
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) throw new Error(`${where()}: length ${v} exceeds the pickle size`);
    return Number(v);
  };
  const utf8 = (n: number) => {
    need(n);
    const s = Buffer.from(bytes.buffer, bytes.byteOffset + pos, n).toString('utf8');
    pos += n;
    return s;
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw new Error(`${where()}: unterminated GLOBAL`);
    const s = Buffer.from(bytes.buffer, bytes.byteOffset + pos, end - pos).toString('latin1');
    pos = end + 1;
    return s;
  };
  const pop = (): PickleValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) throw new Error(`${where()}: stack underflow`);
    return v;
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) throw new Error(`${where()}: stack underflow`);
    return v;
  };
  const popMark = (): PickleValue[] => {
    const m = marks.pop();
    if (m === undefined) throw new Error(`${where()}: no MARK on the stack`);
    const items = stack.splice(m + 1) as PickleValue[];
    stack.pop(); // the MARK itself
    return items;
  };
  const global = (module: string, name: string): PickleGlobal => {
    const q = `${module}.${name}`;
    if (!ALLOWED_GLOBALS.has(q)) {
      throw new Error(
        `${where()}: refusing global ${q} (not a PyTorch state-dict type; supra reads only ${[...ALLOWED_GLOBALS].join(', ')}). The file may be malicious or not a plain state dict.`,
      );
    }
    return new PickleGlobal(module, name);
  };
  const setItems = (target: PickleValue, items: PickleValue[]) => {
    if (!(target instanceof Map)) throw new Error(`${where()}: SETITEM(S) on something that is not a dict`);
    if (items.length % 2 !== 0) throw new Error(`${where()}: SETITEMS with an odd number of items`);
    for (let i = 0; i < items.length; i += 2) target.set(dictKey(items[i]!, where), items[i + 1]!);
  };

  for (;;) {
    opAt = pos;
    const op = u8();
    switch (op) {
      case OP.PROTO: {
        const v = u8();
        if (v < 2 || v > 5) throw new Error(`${where()}: pickle protocol ${v} is not supported (2 to 5)`);
        break;
      }
      case OP.FRAME:
        u64(); // a length hint only
        break;
      case OP.STOP: {
        if (marks.length > 0) throw new Error(`${where()}: STOP with an open MARK`);
        if (stack.length !== 1) throw new Error(`${where()}: STOP with ${stack.length} values on the stack (expected 1)`);
        return pop();
      }
      case OP.MARK:
        marks.push(stack.length);
        stack.push(MARK);
        break;
      case OP.EMPTY_DICT:
        stack.push(new Map());
        break;
      case OP.EMPTY_LIST:
        stack.push([]);
        break;
      case OP.EMPTY_TUPLE:
        stack.push(new PickleTuple([]));
        break;
      case OP.TUPLE:
        stack.push(new PickleTuple(popMark()));
        break;
      case OP.TUPLE1: {
        const a = pop();
        stack.push(new PickleTuple([a]));
        break;
      }
      case OP.TUPLE2: {
        const b = pop();
        const a = pop();
        stack.push(new PickleTuple([a, b]));
        break;
      }
      case OP.TUPLE3: {
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(new PickleTuple([a, b, c]));
        break;
      }
      case OP.NONE:
        stack.push(null);
        break;
      case OP.NEWTRUE:
        stack.push(true);
        break;
      case OP.NEWFALSE:
        stack.push(false);
        break;
      case OP.BININT:
        need(4);
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break;
      case OP.BININT1:
        stack.push(u8());
        break;
      case OP.BININT2:
        stack.push(u16());
        break;
      case OP.LONG1: {
        const n = u8();
        need(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[pos + i]!);
        if (n > 0 && bytes[pos + n - 1]! & 0x80) v -= 1n << BigInt(8 * n); // two's complement
        pos += n;
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case OP.BINFLOAT:
        need(8);
        stack.push(view.getFloat64(pos, false)); // big-endian, as pickle writes it
        pos += 8;
        break;
      case OP.BINUNICODE:
        stack.push(utf8(u32()));
        break;
      case OP.SHORT_BINUNICODE:
        stack.push(utf8(u8()));
        break;
      case OP.BINUNICODE8:
        stack.push(utf8(u64()));
        break;
      case OP.BINPUT:
        memo.set(u8(), top());
        break;
      case OP.LONG_BINPUT:
        memo.set(u32(), top());
        break;
      case OP.MEMOIZE:
        memo.set(memo.size, top());
        break;
      case OP.BINGET:
      case OP.LONG_BINGET: {
        const k = op === OP.BINGET ? u8() : u32();
        if (!memo.has(k)) throw new Error(`${where()}: memo key ${k} was never stored`);
        stack.push(memo.get(k)!);
        break;
      }
      case OP.GLOBAL: {
        const module = line();
        const name = line();
        stack.push(global(module, name));
        break;
      }
      case OP.STACK_GLOBAL: {
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw new Error(`${where()}: STACK_GLOBAL needs two strings`);
        stack.push(global(module, name));
        break;
      }
      case OP.REDUCE: {
        const args = pop();
        const fn = pop();
        if (!(fn instanceof PickleGlobal) || !CALLABLE_GLOBALS.has(fn.qualified)) {
          const what = fn instanceof PickleGlobal ? fn.qualified : typeof fn;
          throw new Error(`${where()}: refusing REDUCE on ${what} (only ${[...CALLABLE_GLOBALS].join(', ')} may be called)`);
        }
        stack.push(callGlobal(fn, args, where));
        break;
      }
      case OP.BINPERSID: {
        const pid = pop();
        if (!(pid instanceof PickleTuple) || pid.items.length !== 5 || pid.items[0] !== 'storage') {
          throw new Error(`${where()}: persistent id is not ('storage', type, key, location, numel)`);
        }
        const [, type, key, location, numel] = pid.items;
        if (!(type instanceof PickleGlobal) || type.module !== 'torch' || !(STORAGE_CLASSES as readonly string[]).includes(type.name)) {
          throw new Error(`${where()}: persistent id names an unknown storage type`);
        }
        if (typeof key !== 'string' || typeof location !== 'string') throw new Error(`${where()}: persistent id key/location must be strings`);
        const ref: StorageRef = { kind: 'storage', storageType: type.name, key, location, numel: toInt(numel!, 'storage numel', where) };
        stack.push(ref);
        break;
      }
      case OP.SETITEM: {
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case OP.SETITEMS: {
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case OP.APPEND: {
        const v = pop();
        const list = top();
        if (!Array.isArray(list)) throw new Error(`${where()}: APPEND to something that is not a list`);
        list.push(v);
        break;
      }
      case OP.APPENDS: {
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) throw new Error(`${where()}: APPENDS to something that is not a list`);
        list.push(...items);
        break;
      }
      case OP.BUILD: {
        // torch pickles a state dict's _metadata as OrderedDict state; it carries only version numbers
        pop();
        if (!(top() instanceof Map)) throw new Error(`${where()}: BUILD is only accepted on an OrderedDict (its _metadata)`);
        break;
      }
      default: {
        const name = KNOWN_OPCODE_NAMES[op];
        const label = `0x${op.toString(16).padStart(2, '0')}${name ? ` (${name})` : ''}`;
        throw new Error(`${where()}: opcode ${label} is not accepted (supra reads only the opcodes a PyTorch state dict needs)`);
      }
    }
  }
}

// ---- writing (protocol 2) ------------------------------------------------------------------------

/** Builds a protocol-2 pickle. Memoizes globals so each is written once, as Python does. */
export class PickleWriter {
  private chunks: Buffer[] = [];
  private memoOf = new Map<string, number>();
  private nextMemo = 0;

  constructor() {
    this.op(OP.PROTO, 2);
  }

  private op(...bytes: number[]): void {
    this.chunks.push(Buffer.from(bytes));
  }

  private put(): number {
    const k = this.nextMemo++;
    if (k < 256) this.op(OP.BINPUT, k);
    else {
      const b = Buffer.alloc(5);
      b[0] = OP.LONG_BINPUT;
      b.writeUInt32LE(k, 1);
      this.chunks.push(b);
    }
    return k;
  }

  private get(k: number): void {
    if (k < 256) this.op(OP.BINGET, k);
    else {
      const b = Buffer.alloc(5);
      b[0] = OP.LONG_BINGET;
      b.writeUInt32LE(k, 1);
      this.chunks.push(b);
    }
  }

  mark(): void {
    this.op(OP.MARK);
  }
  tuple(): void {
    this.op(OP.TUPLE);
  }
  emptyTuple(): void {
    this.op(OP.EMPTY_TUPLE);
  }
  reduce(): void {
    this.op(OP.REDUCE);
  }
  persid(): void {
    this.op(OP.BINPERSID);
  }
  setitems(): void {
    this.op(OP.SETITEMS);
  }
  stop(): void {
    this.op(OP.STOP);
  }
  bool(v: boolean): void {
    this.op(v ? OP.NEWTRUE : OP.NEWFALSE);
  }

  global(module: string, name: string): void {
    const q = `${module}\n${name}\n`;
    const k = this.memoOf.get(q);
    if (k !== undefined) return this.get(k);
    this.chunks.push(Buffer.from([OP.GLOBAL]), Buffer.from(q, 'latin1'));
    this.memoOf.set(q, this.put());
  }

  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    const h = Buffer.alloc(5);
    h[0] = OP.BINUNICODE;
    h.writeUInt32LE(b.length, 1);
    this.chunks.push(h, b);
  }

  int(v: number): void {
    if (!Number.isSafeInteger(v)) throw new Error(`supra: pickle: ${v} is not a safe integer`);
    if (v >= 0 && v < 256) return this.op(OP.BININT1, v);
    if (v >= 0 && v < 65536) return this.op(OP.BININT2, v & 0xff, v >> 8);
    if (v >= -0x80000000 && v <= 0x7fffffff) {
      const b = Buffer.alloc(5);
      b[0] = OP.BININT;
      b.writeInt32LE(v, 1);
      return void this.chunks.push(b);
    }
    // LONG1: minimal little-endian two's complement
    const bytes: number[] = [];
    let x = BigInt(v);
    for (;;) {
      const byte = Number(x & 0xffn);
      bytes.push(byte);
      x >>= 8n;
      if ((x === 0n && !(byte & 0x80)) || (x === -1n && byte & 0x80)) break;
    }
    this.op(OP.LONG1, bytes.length, ...bytes);
  }

  /** A tuple of small ints, e.g. a shape. */
  intTuple(values: number[]): void {
    if (values.length === 0) return this.emptyTuple();
    if (values.length > 3) this.mark();
    for (const v of values) this.int(v);
    if (values.length === 1) this.op(OP.TUPLE1);
    else if (values.length === 2) this.op(OP.TUPLE2);
    else if (values.length === 3) this.op(OP.TUPLE3);
    else this.tuple();
  }

  /** Store the value on top of the stack in the memo (Python memoizes every container). */
  memoize(): void {
    this.put();
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}
