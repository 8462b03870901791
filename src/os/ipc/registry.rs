//! Unique ids, the process-global registry (id -> live local object), and the
//! byte descriptions that let a handle cross into another process.
//!
//! A description names the object by id and lists, for up to two processes (the
//! one describing it and the one it was first made or opened in), that process's
//! pid and descriptor numbers with each descriptor's device and inode. A receiver
//! that already has the object (it made it, or was forked after it was made) uses
//! its own; any other reopens `/proc/<pid>/fd/<n>` and checks the inode, so a
//! descriptor number reused for something else is never mistaken for the object.

use std::any::Any;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use super::futex;
use super::segment::{bad_handle, retry_emfile};

/// Kinds of described objects (the first byte after the magic).
pub(crate) mod kind {
    pub(crate) const QUEUE: u8 = 1;
    pub(crate) const PIPE_END: u8 = 2;
    pub(crate) const LOCK: u8 = 3;
    pub(crate) const RLOCK: u8 = 4;
    pub(crate) const SEMAPHORE: u8 = 5;
    pub(crate) const EVENT: u8 = 6;
    pub(crate) const BARRIER: u8 = 7;
    pub(crate) const VALUE: u8 = 8;
    pub(crate) const ARRAY: u8 = 9;
    pub(crate) const DICT: u8 = 10;
    pub(crate) const LIST: u8 = 11;
    /// Registry keys of a pipe's rings (never described on their own).
    pub(crate) const PIPE_RING: u8 = 12;
}

const MAGIC: &[u8; 4] = b"pIPC";
const VERSION: u8 = 1;

/// A fresh id: pid, a per-process counter and 64 random bits, so ids made in a
/// parent and in a child forked from it never collide.
pub(crate) fn new_id() -> u128 {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut r = [0u8; 8];
    // SAFETY: getrandom into a local buffer.
    let n = unsafe { libc::getrandom(r.as_mut_ptr().cast(), r.len(), 0) };
    let mut rand = u64::from_ne_bytes(r);
    if n != 8 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        rand ^= t;
    }
    (futex::pid() as u32 as u128) << 96
        | (COUNTER.fetch_add(1, Relaxed) as u128) << 64
        | rand as u128
}

type Key = (u128, u8);

type Registry = HashMap<Key, Weak<dyn Any + Send + Sync>>;

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    static REG: LazyLock<Mutex<Registry>> = LazyLock::new(|| Mutex::new(HashMap::new()));
    REG.lock().unwrap_or_else(|p| p.into_inner())
}

/// The live local object registered under `(id, kind)`, if any.
pub(crate) fn lookup<T: Any + Send + Sync>(id: u128, kind: u8) -> Option<Arc<T>> {
    let weak = registry().get(&(id, kind))?.clone();
    // Upgrade outside the registry lock: dropping the Arc may run a Drop that
    // unregisters.
    weak.upgrade()?.downcast::<T>().ok()
}

pub(crate) fn register<T: Any + Send + Sync>(id: u128, kind: u8, obj: &Arc<T>) {
    let obj: Arc<dyn Any + Send + Sync> = obj.clone();
    let weak = Arc::downgrade(&obj);
    registry().insert((id, kind), weak);
    drop(obj);
}

/// Removes the entry for `(id, kind)` if its object is gone (called from Drop).
pub(crate) fn unregister(id: u128, kind: u8) {
    let mut reg = registry();
    if reg.get(&(id, kind)).is_some_and(|w| w.strong_count() == 0) {
        reg.remove(&(id, kind));
    }
}

/// A descriptor as another process can find it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FdRef {
    pub(crate) fd: RawFd,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl FdRef {
    pub(crate) fn of(fd: RawFd) -> io::Result<FdRef> {
        // SAFETY: fstat into a local struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(FdRef {
            fd,
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }

    /// Opens this descriptor of process `pid` anew through /proc and checks that
    /// it is still the same file.
    pub(crate) fn reopen(&self, pid: i32, flags: libc::c_int) -> io::Result<OwnedFd> {
        let path = std::ffi::CString::new(format!("/proc/{pid}/fd/{}", self.fd))
            .map_err(|_| bad_handle())?;
        let fd = retry_emfile(|| {
            // SAFETY: a valid path; the result is checked.
            let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a fresh descriptor that we own.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        })?;
        let now = FdRef::of(fd.as_raw_fd())?;
        if now.dev != self.dev || now.ino != self.ino {
            return Err(bad_handle());
        }
        Ok(fd)
    }
}

/// Where an object can be reopened from: a process and its descriptors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Source {
    pub(crate) pid: i32,
    pub(crate) fds: Vec<FdRef>,
}

/// A decoded description.
#[derive(Clone, Debug)]
pub(crate) struct Desc {
    pub(crate) kind: u8,
    pub(crate) id: u128,
    /// Kind-specific: which end of a pipe, and which descriptors it has.
    pub(crate) sub: u8,
    /// Places to reopen from, best first.
    pub(crate) sources: Vec<Source>,
}

impl Desc {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.sources.len() * 64);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(self.kind);
        out.push(self.sub);
        out.extend_from_slice(&self.id.to_le_bytes());
        out.push(self.sources.len() as u8);
        for s in &self.sources {
            out.extend_from_slice(&s.pid.to_le_bytes());
            out.push(s.fds.len() as u8);
            for f in &s.fds {
                out.extend_from_slice(&f.fd.to_le_bytes());
                out.extend_from_slice(&f.dev.to_le_bytes());
                out.extend_from_slice(&f.ino.to_le_bytes());
            }
        }
        out
    }

    pub(crate) fn decode(b: &[u8], want_kind: u8) -> io::Result<Desc> {
        let mut r = Reader(b);
        if r.take(4)? != MAGIC || r.u8()? != VERSION {
            return Err(bad_handle());
        }
        let kind = r.u8()?;
        if kind != want_kind {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "handle description is of another kind of object",
            ));
        }
        let sub = r.u8()?;
        let id = u128::from_le_bytes(r.take(16)?.try_into().map_err(|_| bad_handle())?);
        let n = r.u8()?;
        let mut sources = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let pid = i32::from_le_bytes(r.arr()?);
            let nf = r.u8()?;
            let mut fds = Vec::with_capacity(nf as usize);
            for _ in 0..nf {
                fds.push(FdRef {
                    fd: i32::from_le_bytes(r.arr()?),
                    dev: u64::from_le_bytes(r.arr()?),
                    ino: u64::from_le_bytes(r.arr()?),
                });
            }
            sources.push(Source { pid, fds });
        }
        if !r.0.is_empty() {
            return Err(bad_handle());
        }
        Ok(Desc {
            kind,
            id,
            sub,
            sources,
        })
    }

    /// Tries each source in turn with `open`, returning the first success or the
    /// last error.
    pub(crate) fn reopen<T>(
        &self,
        mut open: impl FnMut(&Source) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut last = io::Error::new(
            io::ErrorKind::NotFound,
            "the process holding this handle has exited",
        );
        for s in &self.sources {
            match open(s) {
                Ok(t) => return Ok(t),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                    last = io::Error::new(
                        io::ErrorKind::NotFound,
                        format!(
                            "cannot reopen handle: process {} has exited or closed it",
                            s.pid
                        ),
                    )
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// The sources for a description made here: this process first, then where the
/// object came from (if elsewhere).
pub(crate) fn sources(mine: Vec<FdRef>, origin: &Source) -> Vec<Source> {
    let me = Source {
        pid: futex::pid(),
        fds: mine,
    };
    let mut v = vec![me];
    if origin.pid != v[0].pid || origin.fds != v[0].fds {
        v.push(origin.clone());
    }
    v
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(bad_handle());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn arr<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        self.take(N)?.try_into().map_err(|_| bad_handle())
    }
}
