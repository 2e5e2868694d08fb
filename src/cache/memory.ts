/** The memory tier: an LRU bounded in bytes (CACHE_MEMORY_MB). */

/** A byte-bounded LRU over anything with a byteLength (a Map keeps insertion order: oldest first). */
export class LruBytes<V extends { byteLength: number }> {
  private readonly map = new Map<string, V>();
  private bytes = 0;
  /** Entries dropped to stay within the bound. */
  evictions = 0;
  constructor(
    readonly limit: number,
    /** Bytes an entry costs besides its value (key, bookkeeping). */
    private readonly overhead: (key: string) => number = () => 0,
  ) {}
  private cost(key: string, value: V): number {
    return value.byteLength + this.overhead(key);
  }
  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  has(key: string): boolean {
    return this.map.has(key);
  }
  set(key: string, value: V): void {
    this.delete(key);
    const cost = this.cost(key, value);
    if (cost > this.limit) return;
    this.map.set(key, value);
    this.bytes += cost;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.limit) break;
      this.map.delete(k);
      this.bytes -= this.cost(k, v);
      this.evictions++;
    }
  }
  delete(key: string): boolean {
    const old = this.map.get(key);
    if (!old) return false;
    this.map.delete(key);
    this.bytes -= this.cost(key, old);
    return true;
  }
  /** Bytes held (values plus overheads). */
  get size(): number {
    return this.bytes;
  }
  get count(): number {
    return this.map.size;
  }
}

export class MemoryTier {
  readonly name = 'memory';
  private readonly lru: LruBytes<Buffer>;
  constructor(limitBytes: number) {
    // A key costs its UTF-16 length twice over plus ~100 bytes of Map and Buffer bookkeeping.
    this.lru = new LruBytes<Buffer>(limitBytes, (key) => 2 * key.length + 100);
  }
  get(key: string): Buffer | undefined {
    return this.lru.get(key);
  }
  has(key: string): boolean {
    return this.lru.has(key);
  }
  set(key: string, value: Buffer): void {
    // A small Buffer may be a slice of an 8 KiB pool slab (or of a larger read) that it would keep
    // alive unaccounted: own copies keep the byte bound honest (and aligned for float32 views).
    if (value.byteOffset !== 0 || value.buffer.byteLength !== value.byteLength) {
      const own = Buffer.allocUnsafeSlow(value.byteLength);
      value.copy(own);
      value = own;
    }
    this.lru.set(key, value);
  }
  delete(key: string): void {
    this.lru.delete(key);
  }
  get bytes(): number {
    return this.lru.size;
  }
  get entries(): number {
    return this.lru.count;
  }
  get evictions(): number {
    return this.lru.evictions;
  }
  get limit(): number {
    return this.lru.limit;
  }
}
