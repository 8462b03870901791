//! A ring of length-prefixed messages in a segment's data region, shared by
//! queues and pipes. Every function here runs under the owner's lock.
//!
//! A record is an 8-byte little-endian length followed by the payload, padded to
//! 8 bytes; records may wrap around the end of the ring (the length never does,
//! as offsets and the capacity are multiples of 8). The ring's own capacity is
//! kept apart from the segment's length so that a process killed while growing
//! it leaves the old, intact ring in place: data is copied first, the new
//! capacity published last.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering::*};

use super::segment::{read_wrapped, write_wrapped, Header, Segment};

/// A fresh ring's capacity.
pub(crate) const INITIAL: usize = 64 * 1024;
/// An empty ring bigger than this is shrunk back to `INITIAL`.
const SHRINK_ABOVE: usize = 1024 * 1024;

#[repr(C)]
pub(crate) struct RingFields {
    /// Messages in the ring (read without the lock for `qsize`).
    pub(crate) count: AtomicU64,
    /// Offset of the oldest record.
    head: AtomicU64,
    /// Bytes of records in the ring.
    used: AtomicU64,
    /// Capacity of the ring: the first `cap` bytes of the data region.
    cap: AtomicU64,
}

impl RingFields {
    pub(crate) fn init(&self) {
        self.cap.store(INITIAL as u64, Relaxed);
    }

    pub(crate) fn len(&self) -> usize {
        self.count.load(Acquire) as usize
    }

    /// Bytes of records in the ring (under the lock).
    pub(crate) fn used(&self) -> usize {
        self.used.load(Relaxed) as usize
    }
}

pub(crate) fn record_len(n: usize) -> usize {
    8 + n.div_ceil(8) * 8
}

/// Whether pushing `n` bytes needs the ring to grow.
pub(crate) fn needs_growth(r: &RingFields, n: usize) -> bool {
    r.used.load(Relaxed) as usize + record_len(n) > r.cap.load(Relaxed) as usize
}

/// Appends a message.
///
/// # Safety
/// The caller holds the lock that guards `seg` and `r`.
pub(crate) unsafe fn push<H: Header>(
    seg: &Segment<H>,
    r: &RingFields,
    msg: &[u8],
) -> io::Result<()> {
    let rec = record_len(msg.len());
    let mut cap = r.cap.load(Relaxed) as usize;
    let head = r.head.load(Relaxed) as usize;
    let used = r.used.load(Relaxed) as usize;
    let (mut base, mut len) = seg.data()?;
    if len < cap {
        (base, len) = seg.resize(cap)?;
    }
    if used + rec > cap {
        let new_cap = (used + rec)
            .checked_next_power_of_two()
            .ok_or_else(|| io::Error::from(io::ErrorKind::OutOfMemory))?
            .max(cap * 2);
        if len < new_cap {
            (base, _) = seg.resize(new_cap)?;
        }
        if head + used > cap {
            // Unwrap: the part at the start follows the old end instead.
            std::ptr::copy_nonoverlapping(base, base.add(cap), head + used - cap);
        }
        r.cap.store(new_cap as u64, Release);
        cap = new_cap;
    }
    let tail = (head + used) % cap;
    write_wrapped(base, cap, tail, &(msg.len() as u64).to_le_bytes());
    write_wrapped(base, cap, (tail + 8) % cap, msg);
    r.used.store((used + rec) as u64, Relaxed);
    // Only changed under the lock: no read-modify-write needed.
    r.count.store(r.count.load(Relaxed) + 1, Release);
    Ok(())
}

/// Takes the oldest message, if any.
///
/// # Safety
/// As for [`push`].
pub(crate) unsafe fn pop<H: Header>(
    seg: &Segment<H>,
    r: &RingFields,
) -> io::Result<Option<Vec<u8>>> {
    if r.count.load(Relaxed) == 0 {
        return Ok(None);
    }
    let cap = r.cap.load(Relaxed) as usize;
    let head = r.head.load(Relaxed) as usize;
    let used = r.used.load(Relaxed) as usize;
    let (base, _) = seg.data()?;
    let mut lenb = [0u8; 8];
    read_wrapped(base, cap, head, lenb.as_mut_ptr(), 8);
    let n = u64::from_le_bytes(lenb) as usize;
    let mut v = Vec::with_capacity(n);
    read_wrapped(base, cap, (head + 8) % cap, v.as_mut_ptr(), n);
    v.set_len(n);
    let rec = record_len(n);
    let left = used - rec;
    r.head.store(
        if left == 0 {
            0
        } else {
            ((head + rec) % cap) as u64
        },
        Relaxed,
    );
    r.used.store(left as u64, Relaxed);
    r.count.store(r.count.load(Relaxed) - 1, Release);
    if left == 0 && cap > SHRINK_ABOVE {
        r.cap.store(INITIAL as u64, Release);
        seg.resize(INITIAL)?;
    }
    Ok(Some(v))
}
