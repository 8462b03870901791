//! A shared-memory segment: an anonymous `memfd` holding a header page of atomics
//! and a data region after it that can grow and shrink. Each process maps the
//! header once; the data region is remapped lazily by whoever notices (under the
//! owning primitive's lock) that its length changed.

use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU64, Ordering::*};

/// The fields every segment header starts with.
#[repr(C)]
pub(crate) struct Common {
    pub(crate) magic: AtomicU64,
    pub(crate) id_lo: AtomicU64,
    pub(crate) id_hi: AtomicU64,
    /// Bytes in the data region (the file is one page longer).
    pub(crate) data_len: AtomicU64,
}

/// A header type: `#[repr(C)]`, starts with [`Common`], made of atomics only (so
/// an all-zero page is a valid value) and smaller than a page.
pub(crate) trait Header: Sync + Send + 'static {
    const MAGIC: u64;
    fn common(&self) -> &Common;
}

pub(crate) fn page_size() -> usize {
    static PAGE: AtomicU64 = AtomicU64::new(0);
    let p = PAGE.load(Relaxed);
    if p != 0 {
        return p as usize;
    }
    // SAFETY: sysconf has no preconditions.
    let p = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n >= 4096 => n as u64,
        _ => 4096,
    };
    PAGE.store(p, Relaxed);
    p as usize
}

pub(crate) fn page_align(n: usize) -> usize {
    let p = page_size();
    n.div_ceil(p) * p
}

/// Runs `f`; if the process is out of descriptors, raises the soft limit to the
/// hard one (once) and tries again.
pub(crate) fn retry_emfile<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    match f() {
        Err(e) if e.raw_os_error() == Some(libc::EMFILE) && raise_fd_limit() => f(),
        r => r,
    }
}

fn raise_fd_limit() -> bool {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 || rl.rlim_cur >= rl.rlim_max {
            return false;
        }
        rl.rlim_cur = rl.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &rl) == 0
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

struct Mapping {
    ptr: *mut u8,
    len: usize,
}

/// A mapped segment. The data mapping is only read or changed while the caller
/// holds the primitive's cross-process lock, whose owner is a thread id, so no
/// two threads ever touch it at once.
pub(crate) struct Segment<H: Header> {
    fd: OwnedFd,
    hdr: NonNull<H>,
    data: UnsafeCell<Mapping>,
}

// SAFETY: the header is all atomics; the data mapping is only accessed under the
// segment's cross-process lock (see the type's documentation).
unsafe impl<H: Header> Send for Segment<H> {}
// SAFETY: as above.
unsafe impl<H: Header> Sync for Segment<H> {}

impl<H: Header> Segment<H> {
    /// Creates a segment with `data_len` bytes of data (zeroed) and a zeroed
    /// header whose common fields are filled in; `init` sets up the rest.
    pub(crate) fn create(
        name: &CStr,
        id: u128,
        data_len: usize,
        init: impl FnOnce(&H),
    ) -> io::Result<Self> {
        assert!(std::mem::size_of::<H>() <= page_size());
        let fd = retry_emfile(|| {
            // SAFETY: a valid C string and flags.
            let fd = cvt(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
            // SAFETY: memfd_create returned a fresh descriptor that we own.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        })?;
        let data_len = if data_len == 0 {
            0
        } else {
            page_align(data_len)
        };
        truncate(fd.as_raw_fd(), page_size() + data_len)?;
        let seg = Self::map(fd)?;
        let c = seg.hdr().common();
        c.id_lo.store(id as u64, Relaxed);
        c.id_hi.store((id >> 64) as u64, Relaxed);
        c.data_len.store(data_len as u64, Relaxed);
        init(seg.hdr());
        c.magic.store(H::MAGIC, Release);
        Ok(seg)
    }

    /// Maps a segment reopened from another process, checking that it is the
    /// expected kind of object with the expected id.
    pub(crate) fn open(fd: OwnedFd, id: u128) -> io::Result<Self> {
        // SAFETY: fstat into a local struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
        if (st.st_size as u64) < page_size() as u64 {
            return Err(bad_handle());
        }
        let seg = Self::map(fd)?;
        let c = seg.hdr().common();
        let got = c.id_lo.load(Relaxed) as u128 | (c.id_hi.load(Relaxed) as u128) << 64;
        if c.magic.load(Acquire) != H::MAGIC || got != id {
            return Err(bad_handle());
        }
        Ok(seg)
    }

    fn map(fd: OwnedFd) -> io::Result<Self> {
        // SAFETY: mapping a page of a file we hold; checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                page_size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Segment {
            fd,
            hdr: NonNull::new(p.cast()).ok_or_else(io::Error::last_os_error)?,
            data: UnsafeCell::new(Mapping {
                ptr: ptr::null_mut(),
                len: 0,
            }),
        })
    }

    pub(crate) fn hdr(&self) -> &H {
        // SAFETY: the header page stays mapped for our lifetime and every H is
        // valid for any bit pattern (atomics only).
        unsafe { self.hdr.as_ref() }
    }

    /// Start of the header page, for primitives that keep raw bytes after their
    /// header struct (read/written only under their lock).
    pub(crate) fn hdr_bytes(&self) -> *mut u8 {
        self.hdr.as_ptr().cast()
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The data region, remapped first if another process resized it.
    ///
    /// # Safety
    /// The caller holds the primitive's lock, and does not use a pointer obtained
    /// before a later `data`/`resize` call.
    pub(crate) unsafe fn data(&self) -> io::Result<(*mut u8, usize)> {
        let want = self.hdr().common().data_len.load(Acquire) as usize;
        let m = &mut *self.data.get();
        if m.len != want {
            self.remap(m, want)?;
        }
        Ok((m.ptr, m.len))
    }

    /// Grows or shrinks the data region to `len` bytes (page aligned up). Growing
    /// extends the file first; shrinking publishes the new length first, so a
    /// process killed half-way leaves a consistent segment.
    ///
    /// # Safety
    /// As for [`Segment::data`].
    pub(crate) unsafe fn resize(&self, len: usize) -> io::Result<(*mut u8, usize)> {
        let len = if len == 0 { 0 } else { page_align(len) };
        let c = self.hdr().common();
        let old = c.data_len.load(Acquire) as usize;
        if len > old {
            truncate(self.fd(), page_size() + len)?;
            c.data_len.store(len as u64, Release);
        } else if len < old {
            c.data_len.store(len as u64, Release);
            truncate(self.fd(), page_size() + len)?;
        }
        self.data()
    }

    /// Gives the memory of `[off, off + len)` back (it reads as zeros after).
    ///
    /// # Safety
    /// As for [`Segment::data`].
    pub(crate) unsafe fn punch(&self, off: usize, len: usize) {
        let p = page_size();
        let start = off.div_ceil(p) * p;
        let end = (off + len) / p * p;
        if end > start {
            libc::fallocate(
                self.fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                (page_size() + start) as libc::off_t,
                (end - start) as libc::off_t,
            );
        }
    }

    unsafe fn remap(&self, m: &mut Mapping, want: usize) -> io::Result<()> {
        if want == 0 {
            libc::munmap(m.ptr.cast(), m.len);
            m.ptr = ptr::null_mut();
            m.len = 0;
            return Ok(());
        }
        let p = if m.len == 0 {
            libc::mmap(
                ptr::null_mut(),
                want,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.fd(),
                page_size() as libc::off_t,
            )
        } else {
            libc::mremap(m.ptr.cast(), m.len, want, libc::MREMAP_MAYMOVE)
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        m.ptr = p.cast();
        m.len = want;
        Ok(())
    }
}

impl<H: Header> Drop for Segment<H> {
    fn drop(&mut self) {
        let m = self.data.get_mut();
        // SAFETY: unmapping our own mappings; nothing refers to them any more.
        unsafe {
            if m.len != 0 {
                libc::munmap(m.ptr.cast(), m.len);
            }
            libc::munmap(self.hdr.as_ptr().cast(), page_size());
        }
    }
}

fn truncate(fd: RawFd, len: usize) -> io::Result<()> {
    loop {
        // SAFETY: ftruncate on a descriptor we hold.
        if unsafe { libc::ftruncate(fd, len as libc::off_t) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub(crate) fn bad_handle() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "handle description does not match a live object",
    )
}

/// Copies `src` into the ring `[base, base + cap)` starting at `off`, wrapping.
///
/// # Safety
/// `base` points to `cap` writable bytes and `off < cap`, `src.len() <= cap`.
pub(crate) unsafe fn write_wrapped(base: *mut u8, cap: usize, off: usize, src: &[u8]) {
    let first = src.len().min(cap - off);
    ptr::copy_nonoverlapping(src.as_ptr(), base.add(off), first);
    if first < src.len() {
        ptr::copy_nonoverlapping(src.as_ptr().add(first), base, src.len() - first);
    }
}

/// Copies `len` bytes out of the ring starting at `off`, wrapping.
///
/// # Safety
/// As for [`write_wrapped`]; `dst` has room for `len` bytes.
pub(crate) unsafe fn read_wrapped(
    base: *const u8,
    cap: usize,
    off: usize,
    dst: *mut u8,
    len: usize,
) {
    let first = len.min(cap - off);
    ptr::copy_nonoverlapping(base.add(off), dst, first);
    if first < len {
        ptr::copy_nonoverlapping(base, dst.add(first), len - first);
    }
}
