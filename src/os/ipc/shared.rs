//! A primitive made of one segment: creation, registry, description, reopening.

use std::ffi::CStr;
use std::io;
use std::sync::Arc;

use super::futex;
use super::registry::{self, Desc, FdRef, Source};
use super::segment::{bad_handle, Header, Segment};

pub(crate) struct Shared<H: Header> {
    pub(crate) seg: Segment<H>,
    pub(crate) id: u128,
    kind: u8,
    origin: Source,
}

impl<H: Header> Drop for Shared<H> {
    fn drop(&mut self) {
        registry::unregister(self.id, self.kind);
    }
}

impl<H: Header> Shared<H> {
    pub(crate) fn create(
        kind: u8,
        name: &CStr,
        data_len: usize,
        init: impl FnOnce(&H),
    ) -> io::Result<Arc<Self>> {
        let id = registry::new_id();
        let seg = Segment::create(name, id, data_len, init)?;
        let origin = Source {
            pid: futex::pid(),
            fds: vec![FdRef::of(seg.fd())?],
        };
        let s = Arc::new(Shared {
            seg,
            id,
            kind,
            origin,
        });
        registry::register(id, kind, &s);
        Ok(s)
    }

    pub(crate) fn hdr(&self) -> &H {
        self.seg.hdr()
    }

    pub(crate) fn describe(&self) -> io::Result<Vec<u8>> {
        Ok(Desc {
            kind: self.kind,
            id: self.id,
            sub: 0,
            sources: registry::sources(vec![FdRef::of(self.seg.fd())?], &self.origin),
        }
        .encode())
    }

    pub(crate) fn from_description(kind: u8, d: &[u8]) -> io::Result<Arc<Self>> {
        let desc = Desc::decode(d, kind)?;
        if let Some(s) = registry::lookup::<Self>(desc.id, kind) {
            return Ok(s);
        }
        let (seg, origin) = desc.reopen(|s| {
            let fd = s
                .fds
                .first()
                .ok_or_else(bad_handle)?
                .reopen(s.pid, libc::O_RDWR)?;
            Ok((Segment::open(fd, desc.id)?, s.clone()))
        })?;
        let s = Arc::new(Shared {
            seg,
            id: desc.id,
            kind,
            origin,
        });
        registry::register(desc.id, kind, &s);
        Ok(s)
    }
}
