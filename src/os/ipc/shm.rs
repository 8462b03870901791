//! Shared memory for values: a `value` cell, a fixed-length numeric `array`, and
//! the storage of `shared_dict` / `shared_list`. Each is a `memfd` segment whose
//! header embeds a re-entrant lock: every single operation takes it, and the
//! runtime takes it around `with v { }` (re-entry lets the operations inside the
//! block run), or to make `v.add(n)` a read-modify-write.
//!
//! Sizes: a value cell keeps up to `page size - 256` bytes (3840 with 4 KiB
//! pages) inline in its header page and larger values in its data region, which
//! grows and shrinks with the value. Dicts and lists keep a log-structured heap
//! (see [`SharedDict`]) that grows by doubling and is compacted when garbage
//! outweighs live data; they are limited by memory only.
//!
//! A process killed in the middle of an operation leaves a dict or list
//! consistent (new data is written first and published by one aligned store;
//! a compaction builds the new heap aside and switches to it by one store); a
//! value cell or array being written may be left with a torn value.

use std::io;
use std::ptr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

use super::futex::{Deadline, RawLock, ReGuard, ReLock};
use super::registry::kind;
use super::segment::{page_align, page_size, Common, Header};
use super::shared::Shared;
use super::{IpcError, IpcResult};

/// The re-entrant lock every shared-memory header embeds.
#[repr(C)]
struct Locked {
    word: AtomicU32,
    count: AtomicU32,
}

impl Locked {
    fn re(&self) -> ReLock<'_> {
        ReLock {
            word: &self.word,
            count: &self.count,
        }
    }
}

macro_rules! shared_handle {
    ($name:ident, $hdr:ty, $kind:expr) => {
        impl $name {
            /// Takes the embedded (re-entrant) lock, as `with` does: `Ok(false)`
            /// when not `block` and another process holds it, or when `timeout`
            /// passes.
            pub fn acquire(&self, block: bool, timeout: Option<Duration>) -> IpcResult<bool> {
                self.0
                    .hdr()
                    .lk
                    .re()
                    .acquire(block, Deadline::after(timeout), true)
            }

            /// Releases one level of the embedded lock; `NotOwner` if not held.
            pub fn release(&self) -> IpcResult<()> {
                self.0.hdr().lk.re().release()
            }

            pub fn locked(&self) -> bool {
                RawLock(&self.0.hdr().lk.word).locked()
            }

            /// The object as bytes that `from_description` turns back into a
            /// handle in any process.
            pub fn describe(&self) -> io::Result<Vec<u8>> {
                self.0.describe()
            }

            pub fn from_description(d: &[u8]) -> io::Result<$name> {
                Ok($name(Shared::<$hdr>::from_description($kind, d)?))
            }

            /// An id naming this object in every process.
            pub fn id(&self) -> u128 {
                self.0.id
            }

            fn enter(&self) -> IpcResult<ReGuard<'_>> {
                self.0.hdr().lk.re().enter()
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &$name) -> bool {
                self.0.id == other.0.id
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:032x})", stringify!($name), self.0.id)
            }
        }
    };
}

/// Resolves a possibly negative index against `len`.
fn index(i: i64, len: usize) -> IpcResult<usize> {
    let j = if i < 0 { i + len as i64 } else { i };
    if j < 0 || j as u64 >= len as u64 {
        return Err(IpcError::OutOfRange);
    }
    Ok(j as usize)
}

// ---------------------------------------------------------------------------
// value

#[repr(C)]
struct ValHdr {
    common: Common,
    lk: Locked,
    len: AtomicU64,
}

impl Header for ValHdr {
    const MAGIC: u64 = 0x7072_6f63_5661_6c75; // "procValu"
    fn common(&self) -> &Common {
        &self.common
    }
}

/// Where inline bytes start in a value cell's header page.
const INLINE_OFF: usize = 256;

fn inline_cap() -> usize {
    page_size() - INLINE_OFF
}

/// A shared cell holding one serialized value of any size.
#[derive(Clone)]
pub struct ValueCell(Arc<Shared<ValHdr>>);
shared_handle!(ValueCell, ValHdr, kind::VALUE);

impl ValueCell {
    pub fn new(init: &[u8]) -> io::Result<ValueCell> {
        let v = ValueCell(Shared::create(
            kind::VALUE,
            c"proc-value",
            0,
            |_: &ValHdr| {},
        )?);
        match v.set(init) {
            Ok(()) => Ok(v),
            Err(IpcError::Io(e)) => Err(e),
            Err(e) => Err(io::Error::other(e.to_string())),
        }
    }

    /// A copy of the bytes held.
    pub fn get(&self) -> IpcResult<Vec<u8>> {
        let _g = self.enter()?;
        // SAFETY: we hold the lock.
        unsafe { self.read() }
    }

    /// Runs `f` on the bytes held, in place, under the cell's lock. `f` must
    /// not change the cell.
    pub fn get_with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> IpcResult<R> {
        let _g = self.enter()?;
        // SAFETY: we hold the lock, which every writer takes, so the bytes stay
        // as they are while `f` looks at them.
        unsafe {
            let (src, n) = self.bytes()?;
            Ok(f(std::slice::from_raw_parts(src, n)))
        }
    }

    /// Replaces the bytes held.
    pub fn set(&self, bytes: &[u8]) -> IpcResult<()> {
        let _g = self.enter()?;
        // SAFETY: we hold the lock.
        unsafe { self.write(bytes) }
    }

    /// Atomically replaces the bytes with `f(old)` (unchanged when `f` returns
    /// `None`): for `v.add(n)`.
    pub fn update(&self, f: impl FnOnce(&[u8]) -> Option<Vec<u8>>) -> IpcResult<()> {
        let _g = self.enter()?;
        // SAFETY: we hold the lock.
        unsafe {
            let old = self.read()?;
            if let Some(new) = f(&old) {
                self.write(&new)?;
            }
        }
        Ok(())
    }

    /// Where the bytes held are, and how many.
    unsafe fn bytes(&self) -> IpcResult<(*const u8, usize)> {
        let n = self.0.hdr().len.load(Relaxed) as usize;
        let src = if n <= inline_cap() {
            self.0.seg.hdr_bytes().add(INLINE_OFF)
        } else {
            self.0.seg.data()?.0
        };
        Ok((src, n))
    }

    unsafe fn read(&self) -> IpcResult<Vec<u8>> {
        let (src, n) = self.bytes()?;
        let mut v = Vec::with_capacity(n);
        ptr::copy_nonoverlapping(src, v.as_mut_ptr(), n);
        v.set_len(n);
        Ok(v)
    }

    unsafe fn write(&self, b: &[u8]) -> IpcResult<()> {
        let seg = &self.0.seg;
        let dst = if b.len() <= inline_cap() {
            seg.hdr_bytes().add(INLINE_OFF)
        } else {
            let (mut p, len) = seg.data()?;
            if len < b.len() || len > 4 * page_align(b.len()) {
                p = seg.resize(b.len())?.0;
            }
            p
        };
        ptr::copy_nonoverlapping(b.as_ptr(), dst, b.len());
        self.0.hdr().len.store(b.len() as u64, Release);
        if b.len() <= inline_cap() && seg.data()?.1 != 0 {
            seg.resize(0)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// array

/// A number in a shared [`Array`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    Int(i64),
    Float(f64),
}

#[repr(C)]
struct ArrHdr {
    common: Common,
    lk: Locked,
    len: AtomicU64,
}

impl Header for ArrHdr {
    const MAGIC: u64 = 0x7072_6f63_4172_7261; // "procArra"
    fn common(&self) -> &Common {
        &self.common
    }
}

/// A fixed-length shared array of numbers: 8-byte slots, each with a type tag.
#[derive(Clone)]
pub struct Array(Arc<Shared<ArrHdr>>);
shared_handle!(Array, ArrHdr, kind::ARRAY);

impl Array {
    pub fn new(init: &[Num]) -> io::Result<Array> {
        let n = init.len();
        let a = Array(Shared::create(
            kind::ARRAY,
            c"proc-array",
            (n * 9).max(1),
            |h: &ArrHdr| h.len.store(n as u64, Relaxed),
        )?);
        let _g = a.enter().map_err(|e| io::Error::other(e.to_string()))?;
        for (i, &v) in init.iter().enumerate() {
            // SAFETY: we hold the lock; i < n.
            unsafe { a.put(i, v)? };
        }
        drop(_g);
        Ok(a)
    }

    pub fn len(&self) -> usize {
        self.0.hdr().len.load(Relaxed) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: i64) -> IpcResult<Num> {
        let i = index(i, self.len())?;
        let _g = self.enter()?;
        // SAFETY: we hold the lock; i < len.
        Ok(unsafe { self.at(i)? })
    }

    pub fn set(&self, i: i64, v: Num) -> IpcResult<()> {
        let i = index(i, self.len())?;
        let _g = self.enter()?;
        // SAFETY: we hold the lock; i < len.
        unsafe { self.put(i, v)? };
        Ok(())
    }

    /// All the numbers, read at once.
    pub fn to_vec(&self) -> IpcResult<Vec<Num>> {
        let _g = self.enter()?;
        (0..self.len())
            // SAFETY: we hold the lock; i < len.
            .map(|i| unsafe { self.at(i) }.map_err(IpcError::from))
            .collect()
    }

    unsafe fn slots(&self) -> io::Result<(*mut u64, *mut u8)> {
        let p = self.0.seg.data()?.0;
        Ok((p.cast(), p.add(8 * self.len())))
    }

    unsafe fn at(&self, i: usize) -> io::Result<Num> {
        let (bits, tags) = self.slots()?;
        let b = ptr::read_volatile(bits.add(i));
        Ok(if ptr::read_volatile(tags.add(i)) == 1 {
            Num::Float(f64::from_bits(b))
        } else {
            Num::Int(b as i64)
        })
    }

    unsafe fn put(&self, i: usize, v: Num) -> io::Result<()> {
        let (bits, tags) = self.slots()?;
        let (b, t) = match v {
            Num::Int(x) => (x as u64, 0u8),
            Num::Float(x) => (x.to_bits(), 1u8),
        };
        ptr::write_volatile(bits.add(i), b);
        ptr::write_volatile(tags.add(i), t);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// the heap behind shared_dict and shared_list

#[repr(C)]
struct HeapHdr {
    common: Common,
    lk: Locked,
    /// Offset of the current layout in the data region.
    base: AtomicU64,
    /// Keys of a dict, items of a list (readable without the lock).
    count: AtomicU64,
}

/// The header of a layout, at its start. Offsets are relative to the layout.
#[repr(C)]
struct Layout {
    size: AtomicU64,
    /// Dict: hash slots; list: item capacity.
    nslots: AtomicU64,
    log_end: AtomicU64,
    /// Dict: live keys; list: length.
    live: AtomicU64,
    live_bytes: AtomicU64,
    garbage: AtomicU64,
    /// Dict: slots not empty (live + tombstones).
    used_slots: AtomicU64,
    _reserved: AtomicU64,
}

const LAYOUT_HDR: usize = 64;
const EMPTY: u64 = 0;
const TOMBSTONE: u64 = 1;
const TAG_KEY: u32 = 1;
const TAG_VAL: u32 = 2;
const DEAD: u32 = 1 << 31;

fn pad8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

fn blob_size(n: usize) -> usize {
    16 + pad8(n)
}

fn key_size(n: usize) -> usize {
    24 + pad8(n)
}

fn fnv1a(b: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// A layout as mapped in this process: valid until the next resize.
#[derive(Clone, Copy)]
struct View {
    p: *mut u8,
}

impl View {
    unsafe fn lay(&self) -> &Layout {
        &*(self.p as *const Layout)
    }
    unsafe fn u32_at(&self, off: usize) -> u32 {
        ptr::read(self.p.add(off) as *const u32)
    }
    unsafe fn a64(&self, off: usize) -> &AtomicU64 {
        &*(self.p.add(off) as *const AtomicU64)
    }
    unsafe fn a32(&self, off: usize) -> &AtomicU32 {
        &*(self.p.add(off) as *const AtomicU32)
    }
    unsafe fn slot(&self, i: usize) -> &AtomicU64 {
        self.a64(LAYOUT_HDR + 8 * i)
    }
    unsafe fn nslots(&self) -> usize {
        self.lay().nslots.load(Relaxed) as usize
    }
    unsafe fn log_start(&self) -> usize {
        LAYOUT_HDR + 8 * self.nslots()
    }
    unsafe fn room(&self) -> usize {
        let l = self.lay();
        (l.size.load(Relaxed) - l.log_end.load(Relaxed)) as usize
    }
    unsafe fn bytes(&self, off: usize, n: usize) -> &[u8] {
        std::slice::from_raw_parts(self.p.add(off), n)
    }
    /// Writes a value blob at the end of the log (room checked by the caller)
    /// and publishes the new end; returns its offset.
    unsafe fn append_blob(&self, v: &[u8]) -> u64 {
        let off = self.lay().log_end.load(Relaxed) as usize;
        ptr::write(self.p.add(off) as *mut u32, TAG_VAL);
        ptr::write(self.p.add(off + 8) as *mut u64, v.len() as u64);
        ptr::copy_nonoverlapping(v.as_ptr(), self.p.add(off + 16), v.len());
        self.lay()
            .log_end
            .store((off + blob_size(v.len())) as u64, Release);
        off as u64
    }
    unsafe fn blob_len(&self, off: usize) -> usize {
        ptr::read(self.p.add(off + 8) as *const u64) as usize
    }
    unsafe fn blob(&self, off: usize) -> Vec<u8> {
        self.bytes(off + 16, self.blob_len(off)).to_vec()
    }
    unsafe fn key_len(&self, off: usize) -> usize {
        self.u32_at(off + 4) as usize
    }
    unsafe fn key(&self, off: usize) -> &[u8] {
        self.bytes(off + 24, self.key_len(off))
    }
    unsafe fn key_hash(&self, off: usize) -> u64 {
        ptr::read(self.p.add(off + 8) as *const u64)
    }
    unsafe fn key_val(&self, off: usize) -> &AtomicU64 {
        self.a64(off + 16)
    }
    /// Size of the record at `off` in the log.
    unsafe fn record_size(&self, off: usize) -> usize {
        if self.u32_at(off) & !DEAD == TAG_KEY {
            key_size(self.key_len(off))
        } else {
            blob_size(self.blob_len(off))
        }
    }
}

/// A shared heap: a segment holding one layout at a time.
struct Heap<'a>(&'a Shared<HeapHdr>);

impl Heap<'_> {
    /// The current layout (caller holds the lock).
    unsafe fn view(&self) -> io::Result<View> {
        let p = self.0.seg.data()?.0;
        Ok(View {
            p: p.add(self.0.hdr().base.load(Acquire) as usize),
        })
    }

    /// Builds a new layout with room for `need` more log bytes and `extra` more
    /// entries, holding the entries `live` (offsets in the old layout, in order;
    /// `dict` tells their kind), switches to it and frees the old one. Returns
    /// the new view and, for each entry, its new offset.
    unsafe fn rebuild(
        &self,
        live: &[usize],
        dict: bool,
        need: usize,
        extra: usize,
    ) -> io::Result<View> {
        let h = self.0.hdr();
        let seg = &self.0.seg;
        let old_base = h.base.load(Relaxed) as usize;
        let old = self.view()?;
        let old_size = old.lay().size.load(Relaxed) as usize;
        let mut live_bytes = 0;
        for &off in live {
            live_bytes += if dict {
                key_size(old.key_len(off))
                    + blob_size(old.blob_len(old.key_val(off).load(Relaxed) as usize))
            } else {
                blob_size(old.blob_len(off))
            };
        }
        let entries = live.len() + extra;
        let nslots = (entries * 2).max(8).next_power_of_two();
        let log = (2 * (live_bytes + need)).max(1024);
        let size = page_align(LAYOUT_HDR + 8 * nslots + log);
        let new_base = if old_base >= size {
            0
        } else {
            page_align(old_base + old_size)
        };
        let total = seg.data()?.1;
        if total < new_base + size {
            seg.resize(new_base + size)?;
        }
        let data = seg.data()?.0;
        let old = View {
            p: data.add(old_base),
        };
        let new = View {
            p: data.add(new_base),
        };
        ptr::write_bytes(new.p, 0, LAYOUT_HDR + 8 * nslots);
        let nl = new.lay();
        nl.size.store(size as u64, Relaxed);
        nl.nslots.store(nslots as u64, Relaxed);
        nl.log_end.store(new.log_start() as u64, Relaxed);
        let mask = nslots - 1;
        for (i, &off) in live.iter().enumerate() {
            if dict {
                let k = old.key(off);
                let hash = old.key_hash(off);
                let voff = old.key_val(off).load(Relaxed) as usize;
                let nv = new.append_blob(old.bytes(voff + 16, old.blob_len(voff)));
                let koff = nl.log_end.load(Relaxed) as usize;
                new.write_key(koff, k, hash, nv);
                nl.log_end.store((koff + key_size(k.len())) as u64, Relaxed);
                let mut j = hash as usize & mask;
                while new.slot(j).load(Relaxed) != EMPTY {
                    j = (j + 1) & mask;
                }
                new.slot(j).store(koff as u64, Relaxed);
            } else {
                let nv = new.append_blob(old.bytes(off + 16, old.blob_len(off)));
                new.slot(i).store(nv, Relaxed);
            }
        }
        nl.live.store(live.len() as u64, Relaxed);
        nl.used_slots.store(live.len() as u64, Relaxed);
        nl.live_bytes.store(live_bytes as u64, Relaxed);
        // The switch: one store. A process killed before it leaves the old layout.
        h.base.store(new_base as u64, Release);
        if new_base == 0 {
            seg.resize(size)?;
        } else {
            seg.punch(old_base, old_size);
        }
        self.view()
    }

    /// Creates the first, empty layout.
    unsafe fn init(&self) -> io::Result<()> {
        let size = page_size();
        let p = self.0.seg.resize(size)?.0;
        let v = View { p };
        let l = v.lay();
        l.size.store(size as u64, Relaxed);
        l.nslots.store(8, Relaxed);
        l.log_end.store(v.log_start() as u64, Relaxed);
        self.0.hdr().base.store(0, Release);
        Ok(())
    }
}

impl View {
    unsafe fn write_key(&self, off: usize, k: &[u8], hash: u64, val: u64) {
        ptr::write(self.p.add(off) as *mut u32, TAG_KEY);
        ptr::write(self.p.add(off + 4) as *mut u32, k.len() as u32);
        ptr::write(self.p.add(off + 8) as *mut u64, hash);
        ptr::write(self.p.add(off + 16) as *mut u64, val);
        ptr::copy_nonoverlapping(k.as_ptr(), self.p.add(off + 24), k.len());
    }

    /// Dict lookup: `(slot, record)` when found, else the slot to insert at.
    unsafe fn find(&self, key: &[u8], hash: u64) -> Result<(usize, usize), usize> {
        let mask = self.nslots() - 1;
        let mut i = hash as usize & mask;
        let mut tomb = None;
        loop {
            match self.slot(i).load(Acquire) {
                EMPTY => return Err(tomb.unwrap_or(i)),
                TOMBSTONE => {
                    tomb.get_or_insert(i);
                }
                off => {
                    let off = off as usize;
                    if self.key_hash(off) == hash && self.key(off) == key {
                        return Ok((i, off));
                    }
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Live key records in insertion order: those the index points to (a record
    /// left by a process killed before publishing it is skipped).
    unsafe fn live_keys(&self) -> Vec<usize> {
        let end = self.lay().log_end.load(Acquire) as usize;
        let mut off = self.log_start();
        let mut out = Vec::with_capacity(self.lay().live.load(Relaxed) as usize);
        while off < end {
            let tag = self.u32_at(off);
            if tag == TAG_KEY
                && matches!(self.find(self.key(off), self.key_hash(off)), Ok((_, o)) if o == off)
            {
                out.push(off);
            }
            off += self.record_size(off);
        }
        out
    }
}

/// A shared dict: any byte keys to any byte values, in insertion order.
///
/// Storage is a log-structured heap: an open-addressing index of 8-byte slots
/// followed by a log of key records and value blobs. Setting a key appends a
/// value blob and switches the key record to it with one 8-byte store; a new
/// key also appends a record and then fills an index slot. When the log is full
/// the live entries are copied, in insertion order, into a new layout built
/// beside the old one, which then becomes current by one store.
#[derive(Clone)]
pub struct SharedDict(Arc<Shared<HeapHdr>>);
shared_handle!(SharedDict, HeapHdr, kind::DICT);

impl Header for HeapHdr {
    const MAGIC: u64 = 0x7072_6f63_4865_6170; // "procHeap"
    fn common(&self) -> &Common {
        &self.common
    }
}

/// A new shared segment holding an empty heap (what dicts and lists share).
fn new_heap(k: u8, name: &std::ffi::CStr) -> io::Result<Arc<Shared<HeapHdr>>> {
    let s = Shared::create(k, name, 0, |_: &HeapHdr| {})?;
    let _g = s
        .hdr()
        .lk
        .re()
        .enter()
        .map_err(|e| io::Error::other(e.to_string()))?;
    // SAFETY: we hold the lock.
    unsafe { Heap(&s).init()? };
    drop(_g);
    Ok(s)
}

impl SharedDict {
    pub fn new() -> io::Result<SharedDict> {
        Ok(SharedDict(new_heap(kind::DICT, c"proc-dict")?))
    }

    fn heap(&self) -> Heap<'_> {
        Heap(&self.0)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.hdr().count.load(Acquire) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, key: &[u8]) -> IpcResult<Option<Vec<u8>>> {
        let _g = self.enter()?;
        // SAFETY: we hold the lock.
        unsafe {
            let v = self.heap().view()?;
            Ok(match v.find(key, fnv1a(key)) {
                Ok((_, off)) => Some(v.blob(v.key_val(off).load(Acquire) as usize)),
                Err(_) => None,
            })
        }
    }

    pub fn contains(&self, key: &[u8]) -> IpcResult<bool> {
        let _g = self.enter()?;
        // SAFETY: we hold the lock.
        unsafe { Ok(self.heap().view()?.find(key, fnv1a(key)).is_ok()) }
    }

    /// Sets `key` to `val` (a new key goes last in the order).
    pub fn set(&self, key: &[u8], val: &[u8]) -> IpcResult<()> {
        let _g = self.enter()?;
        let hash = fnv1a(key);
        // SAFETY: we hold the lock; room is checked before every append.
        unsafe {
            let heap = self.heap();
            let mut v = heap.view()?;
            let mut found = v.find(key, hash);
            let need = blob_size(val.len())
                + if found.is_err() {
                    key_size(key.len())
                } else {
                    0
                };
            let l = v.lay();
            let crowded =
                found.is_err() && (l.used_slots.load(Relaxed) as usize + 1) * 4 > v.nslots() * 3;
            if v.room() < need || crowded {
                let live = v.live_keys();
                v = heap.rebuild(&live, true, need, 1)?;
                found = v.find(key, hash);
            }
            let l = v.lay();
            let blob = v.append_blob(val);
            match found {
                Ok((_, off)) => {
                    let old = v.key_val(off).swap(blob, Release) as usize;
                    let old_size = blob_size(v.blob_len(old));
                    l.garbage.fetch_add(old_size as u64, Relaxed);
                    l.live_bytes.store(
                        (l.live_bytes.load(Relaxed) + blob_size(val.len()) as u64)
                            .saturating_sub(old_size as u64),
                        Relaxed,
                    );
                }
                Err(slot) => {
                    let koff = l.log_end.load(Relaxed) as usize;
                    v.write_key(koff, key, hash, blob);
                    l.log_end
                        .store((koff + key_size(key.len())) as u64, Release);
                    let was = v.slot(slot).swap(koff as u64, Release);
                    if was == EMPTY {
                        l.used_slots.fetch_add(1, Relaxed);
                    }
                    l.live.fetch_add(1, Relaxed);
                    l.live_bytes.fetch_add(need as u64, Relaxed);
                    self.0.hdr().count.fetch_add(1, Release);
                }
            }
        }
        Ok(())
    }

    /// Removes `key`, returning its value if it was there.
    pub fn remove(&self, key: &[u8]) -> IpcResult<Option<Vec<u8>>> {
        let _g = self.enter()?;
        // SAFETY: we hold the lock.
        unsafe {
            let v = self.heap().view()?;
            let Ok((slot, off)) = v.find(key, fnv1a(key)) else {
                return Ok(None);
            };
            let voff = v.key_val(off).load(Relaxed) as usize;
            let val = v.blob(voff);
            v.slot(slot).store(TOMBSTONE, Release);
            v.a32(off).fetch_or(DEAD, Relaxed);
            let l = v.lay();
            let freed = (key_size(key.len()) + blob_size(val.len())) as u64;
            l.live.fetch_sub(1, Relaxed);
            l.live_bytes.fetch_sub(freed, Relaxed);
            l.garbage.fetch_add(freed, Relaxed);
            self.0.hdr().count.fetch_sub(1, Release);
            Ok(Some(val))
        }
    }

    /// The keys, in insertion order.
    pub fn keys(&self) -> IpcResult<Vec<Vec<u8>>> {
        let _g = self.enter()?;
        // SAFETY: we hold the lock.
        unsafe {
            let v = self.heap().view()?;
            Ok(v.live_keys()
                .into_iter()
                .map(|o| v.key(o).to_vec())
                .collect())
        }
    }

    /// The entries, in insertion order.
    pub fn items(&self) -> IpcResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let _g = self.enter()?;
        // SAFETY: we hold the lock.
        unsafe {
            let v = self.heap().view()?;
            Ok(v.live_keys()
                .into_iter()
                .map(|o| {
                    (
                        v.key(o).to_vec(),
                        v.blob(v.key_val(o).load(Acquire) as usize),
                    )
                })
                .collect())
        }
    }

    pub fn clear(&self) -> IpcResult<()> {
        let _g = self.enter()?;
        // SAFETY: we hold the lock.
        unsafe { self.heap().rebuild(&[], true, 0, 0)? };
        self.0.hdr().count.store(0, Release);
        Ok(())
    }
}

/// A shared list of byte strings.
///
/// Same heap as [`SharedDict`], with the index holding the items' blob offsets
/// in order.
#[derive(Clone)]
pub struct SharedList(Arc<Shared<HeapHdr>>);
shared_handle!(SharedList, HeapHdr, kind::LIST);

impl SharedList {
    pub fn new() -> io::Result<SharedList> {
        Ok(SharedList(new_heap(kind::LIST, c"proc-list")?))
    }

    fn heap(&self) -> Heap<'_> {
        Heap(&self.0)
    }

    pub fn len(&self) -> usize {
        self.0.hdr().count.load(Acquire) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    unsafe fn items_of(v: View) -> Vec<usize> {
        (0..v.lay().live.load(Relaxed) as usize)
            .map(|i| v.slot(i).load(Relaxed) as usize)
            .collect()
    }

    /// Appends an item; returns the new length.
    pub fn push(&self, val: &[u8]) -> IpcResult<usize> {
        let _g = self.enter()?;
        // SAFETY: we hold the lock; room is checked before the append.
        unsafe {
            let heap = self.heap();
            let mut v = heap.view()?;
            let len = v.lay().live.load(Relaxed) as usize;
            if v.room() < blob_size(val.len()) || len == v.nslots() {
                v = heap.rebuild(&Self::items_of(v), false, blob_size(val.len()), 1)?;
            }
            let off = v.append_blob(val);
            v.slot(len).store(off, Release);
            let l = v.lay();
            l.live.store(len as u64 + 1, Release);
            l.live_bytes.fetch_add(blob_size(val.len()) as u64, Relaxed);
            self.0.hdr().count.store(len as u64 + 1, Release);
            Ok(len + 1)
        }
    }

    /// The item at `i` (negative: from the end).
    pub fn get(&self, i: i64) -> IpcResult<Vec<u8>> {
        let _g = self.enter()?;
        // SAFETY: we hold the lock.
        unsafe {
            let v = self.heap().view()?;
            let i = index(i, v.lay().live.load(Relaxed) as usize)?;
            Ok(v.blob(v.slot(i).load(Acquire) as usize))
        }
    }

    /// Replaces the item at `i` (negative: from the end).
    pub fn set(&self, i: i64, val: &[u8]) -> IpcResult<()> {
        let _g = self.enter()?;
        // SAFETY: we hold the lock; room is checked before the append.
        unsafe {
            let heap = self.heap();
            let mut v = heap.view()?;
            let i = index(i, v.lay().live.load(Relaxed) as usize)?;
            if v.room() < blob_size(val.len()) {
                v = heap.rebuild(&Self::items_of(v), false, blob_size(val.len()), 0)?;
            }
            let off = v.append_blob(val);
            let old = v.slot(i).swap(off, Release) as usize;
            let l = v.lay();
            let old_size = blob_size(v.blob_len(old)) as u64;
            l.garbage.fetch_add(old_size, Relaxed);
            l.live_bytes.store(
                (l.live_bytes.load(Relaxed) + blob_size(val.len()) as u64).saturating_sub(old_size),
                Relaxed,
            );
        }
        Ok(())
    }

    /// Removes and returns the item at `i` (negative: from the end; `None`:
    /// the last).
    pub fn pop(&self, i: Option<i64>) -> IpcResult<Vec<u8>> {
        let _g = self.enter()?;
        // SAFETY: we hold the lock.
        unsafe {
            let heap = self.heap();
            let v = heap.view()?;
            let l = v.lay();
            let len = l.live.load(Relaxed) as usize;
            let i = index(i.unwrap_or(-1), len)?;
            let off = v.slot(i).load(Relaxed) as usize;
            let val = v.blob(off);
            if i + 1 == len {
                l.live.store(len as u64 - 1, Release);
                let sz = blob_size(val.len()) as u64;
                l.live_bytes
                    .store(l.live_bytes.load(Relaxed).saturating_sub(sz), Relaxed);
                l.garbage.fetch_add(sz, Relaxed);
            } else {
                // Shifting the index is not one store: rebuild without the item.
                let mut items = Self::items_of(v);
                items.remove(i);
                heap.rebuild(&items, false, 0, 0)?;
            }
            self.0.hdr().count.store(len as u64 - 1, Release);
            Ok(val)
        }
    }

    /// All the items, read at once.
    pub fn to_vec(&self) -> IpcResult<Vec<Vec<u8>>> {
        let _g = self.enter()?;
        // SAFETY: we hold the lock.
        unsafe {
            let v = self.heap().view()?;
            Ok(Self::items_of(v).into_iter().map(|o| v.blob(o)).collect())
        }
    }

    pub fn clear(&self) -> IpcResult<()> {
        let _g = self.enter()?;
        // SAFETY: we hold the lock.
        unsafe { self.heap().rebuild(&[], false, 0, 0)? };
        self.0.hdr().count.store(0, Release);
        Ok(())
    }
}
