//! OS-level checks of `os::ipc` with real forked processes. Not a libtest
//! harness (forking inside its threads is unsafe): a plain `main` runs each
//! check in turn and ends with "N passed, 0 failed".

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use proc::os::ipc::{
    pipe, Array, Barrier, Event, IpcError, Lock, Num, PipeEnd, Queue, RLock, Semaphore, SharedDict,
    SharedList, ValueCell,
};

const MS: Duration = Duration::from_millis(1);

/// Forks; the child runs `f` and exits 0 (101 if it panicked), never returning.
fn fork(f: impl FnOnce()) -> i32 {
    std::io::stdout().flush().ok();
    std::io::stderr().flush().ok();
    // SAFETY: the test process is single-threaded; the child only runs `f` and
    // then `_exit`s.
    match unsafe { libc::fork() } {
        0 => {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(if r.is_ok() { 0 } else { 101 }) }
        }
        -1 => panic!("fork: {}", std::io::Error::last_os_error()),
        pid => pid,
    }
}

fn wait_status(pid: i32) -> i32 {
    let mut st = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        // The library's SIGCHLD handler (installed without SA_RESTART) can
        // interrupt the wait.
        if r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
        return st;
    }
}

fn wait_ok(pid: i32) {
    let st = wait_status(pid);
    assert!(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        "child {pid} failed (status {st:#x})"
    );
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, sig) };
}

fn enc(a: u32, b: u32) -> [u8; 8] {
    ((a as u64) << 32 | b as u64).to_le_bytes()
}

fn dec(m: &[u8]) -> (u32, u32) {
    let v = u64::from_le_bytes(m.try_into().expect("8-byte message"));
    ((v >> 32) as u32, v as u32)
}

/// Deterministic bytes for big-message checks.
fn pattern(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let take = (n - v.len()).min(8);
        v.extend_from_slice(&x.to_le_bytes()[..take]);
    }
    v
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

fn dev_shm() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// queue

fn queue_basic() {
    let q = Queue::new(0).unwrap();
    assert!(q.empty() && !q.full() && q.qsize() == 0);
    let msgs: Vec<Vec<u8>> = vec![
        vec![],
        b"a".to_vec(),
        vec![7; 5000],
        b"hello".to_vec(),
        vec![],
    ];
    for m in &msgs {
        q.put(m, true, None).unwrap();
    }
    assert_eq!(q.qsize(), msgs.len());
    for m in &msgs {
        assert_eq!(&q.get(true, None).unwrap(), m);
    }
    assert!(q.empty());
    // Wrap-around and growth with mixed sizes, interleaved.
    let mut expect = std::collections::VecDeque::new();
    for i in 0..20_000usize {
        let m = pattern(i % 700, i as u64);
        q.put(&m, false, None).unwrap();
        expect.push_back(m);
        if i % 3 == 0 {
            assert_eq!(q.get(false, None).unwrap(), expect.pop_front().unwrap());
        }
    }
    while let Some(m) = expect.pop_front() {
        assert_eq!(q.get(false, None).unwrap(), m);
    }
    assert!(matches!(q.get(false, None), Err(IpcError::Empty)));
}

fn queue_mpmc() {
    const P: u32 = 4;
    const C: usize = 3;
    const N: u32 = 100_000;
    let q = Queue::new(10_000).unwrap();
    let results = Queue::new(0).unwrap();
    let consumers: Vec<i32> = (0..C)
        .map(|_| {
            fork(|| {
                let mut last = [None::<u32>; P as usize];
                let (mut count, mut sum) = (0u64, 0u64);
                loop {
                    match q.get(true, None) {
                        Ok(m) => {
                            let (p, i) = dec(&m);
                            let l = &mut last[p as usize];
                            assert!(l.is_none_or(|l| l < i), "FIFO per producer broken");
                            *l = Some(i);
                            count += 1;
                            sum += i as u64 + p as u64 * 1_000_000;
                        }
                        Err(IpcError::Closed) => break,
                        Err(e) => panic!("get: {e}"),
                    }
                }
                let mut r = count.to_le_bytes().to_vec();
                r.extend_from_slice(&sum.to_le_bytes());
                results.put(&r, true, None).unwrap();
            })
        })
        .collect();
    let producers: Vec<i32> = (0..P)
        .map(|p| {
            fork(|| {
                for i in 0..N {
                    q.put(&enc(p, i), true, None).unwrap();
                }
            })
        })
        .collect();
    producers.into_iter().for_each(wait_ok);
    q.close();
    consumers.into_iter().for_each(wait_ok);
    let (mut count, mut sum) = (0u64, 0u64);
    for _ in 0..C {
        let r = results.get(false, None).unwrap();
        count += u64::from_le_bytes(r[..8].try_into().unwrap());
        sum += u64::from_le_bytes(r[8..].try_into().unwrap());
    }
    let per: u64 = (0..N as u64).sum();
    let expect: u64 = (0..P as u64).map(|p| per + p * 1_000_000 * N as u64).sum();
    assert_eq!(count, (P * N) as u64);
    assert_eq!(sum, expect);
    assert!(matches!(q.get(false, None), Err(IpcError::Closed)));
}

fn queue_big_message() {
    const N: usize = 64 << 20;
    let q = Queue::new(0).unwrap();
    let pid = fork(|| q.put(&pattern(N, 42), true, None).unwrap());
    let m = q.get(true, Some(Duration::from_secs(30))).unwrap();
    wait_ok(pid);
    assert_eq!(m.len(), N);
    assert!(m == pattern(N, 42), "64 MiB message corrupted");
    // Small messages around a big one keep their order.
    q.put(b"before", true, None).unwrap();
    q.put(&pattern(N, 7), true, None).unwrap();
    q.put(b"after", true, None).unwrap();
    assert_eq!(q.get(true, None).unwrap(), b"before");
    assert!(q.get(true, None).unwrap() == pattern(N, 7));
    assert_eq!(q.get(true, None).unwrap(), b"after");
}

fn queue_put_then_exit() {
    let q = Queue::new(0).unwrap();
    for round in 0..20u32 {
        let pid = fork(|| {
            q.put(&enc(round, 1), true, None).unwrap();
            q.put(&vec![round as u8; 100_000], true, None).unwrap();
            // SAFETY: exit at once, as the test demands.
            unsafe { libc::_exit(0) }
        });
        wait_ok(pid);
        assert_eq!(dec(&q.get(false, None).unwrap()), (round, 1));
        assert_eq!(q.get(false, None).unwrap(), vec![round as u8; 100_000]);
    }
}

fn queue_full_empty_timeouts() {
    let q = Queue::new(2).unwrap();
    assert_eq!(q.maxsize(), 2);
    q.put(b"1", true, None).unwrap();
    q.put_nowait_check();
    q.put(b"2", false, None).unwrap();
    assert!(q.full());
    assert!(matches!(q.put(b"3", false, None), Err(IpcError::Full)));
    let t = Instant::now();
    assert!(matches!(
        q.put(b"3", true, Some(150 * MS)),
        Err(IpcError::Full)
    ));
    let e = t.elapsed();
    assert!(e >= 150 * MS && e < 1000 * MS, "put timeout took {e:?}");
    assert!(matches!(
        q.put(b"3", true, Some(Duration::ZERO)),
        Err(IpcError::Full)
    ));
    assert_eq!(q.get(false, None).unwrap(), b"1");
    assert_eq!(q.get(true, Some(Duration::ZERO)).unwrap(), b"2");
    assert!(matches!(q.get(false, None), Err(IpcError::Empty)));
    let t = Instant::now();
    assert!(matches!(q.get(true, Some(150 * MS)), Err(IpcError::Empty)));
    let e = t.elapsed();
    assert!(e >= 150 * MS && e < 1000 * MS, "get timeout took {e:?}");
    // A blocked put proceeds when a consumer makes room.
    q.put(b"a", true, None).unwrap();
    q.put(b"b", true, None).unwrap();
    let pid = fork(|| {
        std::thread::sleep(100 * MS);
        assert_eq!(q.get(true, None).unwrap(), b"a");
    });
    let t = Instant::now();
    q.put(b"c", true, Some(Duration::from_secs(5))).unwrap();
    assert!(t.elapsed() >= 50 * MS);
    wait_ok(pid);
    assert_eq!(q.get(false, None).unwrap(), b"b");
    assert_eq!(q.get(false, None).unwrap(), b"c");
    // A blocked get proceeds when a producer puts.
    let pid = fork(|| {
        std::thread::sleep(100 * MS);
        q.put(b"late", true, None).unwrap();
    });
    assert_eq!(q.get(true, Some(Duration::from_secs(5))).unwrap(), b"late");
    wait_ok(pid);
}

trait PutCheck {
    fn put_nowait_check(&self);
}
impl PutCheck for Queue {
    fn put_nowait_check(&self) {
        assert_eq!(self.qsize(), 1);
        assert!(!self.full() && !self.empty());
    }
}

fn queue_close() {
    let q = Queue::new(0).unwrap();
    let pid = fork(|| {
        std::thread::sleep(200 * MS);
        q.close();
    });
    let t = Instant::now();
    assert!(matches!(q.get(true, None), Err(IpcError::Closed)));
    let e = t.elapsed();
    assert!(
        e >= 150 * MS && e < 2000 * MS,
        "blocked getter woke after {e:?}"
    );
    wait_ok(pid);
    assert!(q.is_closed());
    assert!(matches!(q.put(b"x", true, None), Err(IpcError::Closed)));

    // Several blocked getters in other processes all wake.
    let q = Queue::new(0).unwrap();
    let getters: Vec<i32> = (0..3)
        .map(|_| fork(|| assert!(matches!(q.get(true, None), Err(IpcError::Closed)))))
        .collect();
    std::thread::sleep(100 * MS);
    q.close();
    getters.into_iter().for_each(wait_ok);

    // Consumers drain what is left, then get Closed.
    let q = Queue::new(5).unwrap();
    q.put(b"1", true, None).unwrap();
    q.put(b"2", true, None).unwrap();
    q.close();
    assert_eq!(q.get(true, None).unwrap(), b"1");
    assert_eq!(q.get(false, None).unwrap(), b"2");
    assert!(matches!(q.get(false, None), Err(IpcError::Closed)));
    assert!(matches!(q.get(true, Some(MS)), Err(IpcError::Closed)));

    // A put blocked on a full queue is released by close.
    let q = Queue::new(1).unwrap();
    q.put(b"1", true, None).unwrap();
    let pid = fork(|| assert!(matches!(q.put(b"2", true, None), Err(IpcError::Closed))));
    std::thread::sleep(100 * MS);
    q.close();
    wait_ok(pid);
}

fn queue_task_done_join() {
    let q = Queue::new(0).unwrap();
    q.join(Some(Duration::ZERO)).unwrap();
    for i in 0..3 {
        q.put(&enc(i, i), true, None).unwrap();
    }
    assert!(matches!(q.join(Some(50 * MS)), Err(IpcError::Timeout)));
    let pid = fork(|| {
        for _ in 0..3 {
            q.get(true, None).unwrap();
            std::thread::sleep(30 * MS);
            q.task_done().unwrap();
        }
    });
    let t = Instant::now();
    q.join(Some(Duration::from_secs(5))).unwrap();
    assert!(t.elapsed() >= 60 * MS);
    wait_ok(pid);
    assert_eq!(q.unfinished(), 0);
    assert!(matches!(q.task_done(), Err(IpcError::TooManyTaskDone)));
    q.put(b"x", true, None).unwrap();
    q.task_done().unwrap();
    assert!(matches!(q.task_done(), Err(IpcError::TooManyTaskDone)));
    q.join(None).unwrap();
}

// ---------------------------------------------------------------------------
// pipe

fn pipe_basic() {
    let (a, b) = pipe(true).unwrap();
    a.send(b"ping").unwrap();
    a.send(b"").unwrap();
    a.send(&[1u8; 10_000]).unwrap();
    assert_eq!(b.recv(true, None).unwrap(), b"ping");
    assert_eq!(b.recv(true, None).unwrap(), b"");
    assert_eq!(b.recv(true, None).unwrap(), vec![1u8; 10_000]);
    assert!(matches!(b.recv(false, None), Err(IpcError::Empty)));
    b.send(b"pong").unwrap();
    assert_eq!(a.recv(true, None).unwrap(), b"pong");

    let (r, w) = pipe(false).unwrap();
    assert!(matches!(r.send(b"x"), Err(IpcError::WrongEnd)));
    assert!(matches!(w.recv(false, None), Err(IpcError::WrongEnd)));
    assert!(r.can_recv() && !r.can_send() && w.can_send() && !w.can_recv());
    // Across processes, both directions, many messages, boundaries kept.
    let pid = fork(|| {
        for i in 0..1000u32 {
            let m = b.recv(true, None).unwrap();
            assert_eq!(m, pattern(i as usize % 300, i as u64));
            b.send(&m).unwrap();
        }
        w.send(b"done").unwrap();
    });
    for i in 0..1000u32 {
        a.send(&pattern(i as usize % 300, i as u64)).unwrap();
        assert_eq!(
            a.recv(true, None).unwrap(),
            pattern(i as usize % 300, i as u64)
        );
    }
    assert_eq!(r.recv(true, Some(Duration::from_secs(5))).unwrap(), b"done");
    wait_ok(pid);
    let t = Instant::now();
    assert!(matches!(r.recv(true, Some(100 * MS)), Err(IpcError::Empty)));
    assert!(t.elapsed() >= 100 * MS);
}

fn pipe_big_message() {
    const N: usize = 64 << 20;
    let (r, w) = pipe(false).unwrap();
    let pid = fork(|| {
        r.close();
        w.send(&pattern(N, 9)).unwrap();
        w.send(b"tail").unwrap();
    });
    w.close();
    let m = r.recv(true, Some(Duration::from_secs(30))).unwrap();
    assert_eq!(m.len(), N);
    assert!(m == pattern(N, 9), "64 MiB pipe message corrupted");
    assert_eq!(r.recv(true, None).unwrap(), b"tail");
    wait_ok(pid);
    assert!(matches!(r.recv(true, None), Err(IpcError::Closed)));
}

fn pipe_backpressure() {
    // Past 64 MiB unread a send waits for the receiver.
    const M: usize = 33 << 20;
    let (r, w) = pipe(false).unwrap();
    let progress = Queue::new(0).unwrap();
    let pid = fork(|| {
        for i in 0..3u8 {
            w.send(&vec![i; M]).unwrap();
            progress.put(&[i], true, None).unwrap();
        }
    });
    assert_eq!(
        progress.get(true, Some(Duration::from_secs(10))).unwrap(),
        [0]
    );
    assert!(
        matches!(progress.get(true, Some(300 * MS)), Err(IpcError::Empty)),
        "the second send did not wait"
    );
    for i in 0..3u8 {
        assert!(r.recv(true, None).unwrap() == vec![i; M]);
    }
    wait_ok(pid);
    assert_eq!(progress.qsize(), 2);
    // A waiting sender whose readers all go away gets Closed.
    let (r, w) = pipe(false).unwrap();
    let pid = fork(|| {
        r.close();
        w.send(&vec![1; M]).unwrap();
        assert!(matches!(w.send(&vec![2; M]), Err(IpcError::Closed)));
    });
    std::thread::sleep(100 * MS);
    r.close();
    wait_ok(pid);
}

fn pipe_closed() {
    // Every copy of the other end closed (the child's by exiting): messages
    // sent before are still delivered, then Closed.
    let (a, b) = pipe(true).unwrap();
    let pid = fork(|| {
        a.close();
        b.send(b"1").unwrap();
        b.send(b"2").unwrap();
    });
    b.close();
    assert!(matches!(b.send(b"x"), Err(IpcError::Closed)));
    assert_eq!(a.recv(true, None).unwrap(), b"1");
    assert_eq!(a.recv(true, None).unwrap(), b"2");
    let t = Instant::now();
    assert!(matches!(a.recv(true, None), Err(IpcError::Closed)));
    assert!(t.elapsed() < Duration::from_secs(2));
    wait_ok(pid);
    assert!(a.poll(Some(Duration::ZERO)).unwrap(), "poll is true at EOF");

    // A blocked receiver wakes when the last copy of the peer closes.
    let (r, w) = pipe(false).unwrap();
    let pid = fork(|| {
        r.close();
        std::thread::sleep(150 * MS);
        w.close();
        std::thread::sleep(300 * MS);
    });
    w.close();
    let t = Instant::now();
    assert!(matches!(r.recv(true, None), Err(IpcError::Closed)));
    let e = t.elapsed();
    assert!(e >= 100 * MS && e < 280 * MS, "EOF seen after {e:?}");
    wait_ok(pid);

    // A non-blocking receive and a zero-timeout poll see EOF by themselves.
    let (r, w) = pipe(false).unwrap();
    w.close();
    assert!(r.poll(Some(Duration::ZERO)).unwrap());
    let (r2, w2) = pipe(false).unwrap();
    w2.send(b"last").unwrap();
    w2.close();
    assert_eq!(r2.recv(false, None).unwrap(), b"last");
    assert!(matches!(r2.recv(false, None), Err(IpcError::Closed)));
    assert!(matches!(r.recv(false, None), Err(IpcError::Closed)));

    // While one copy of the peer is open (here, in a child), no Closed.
    let (r, w) = pipe(false).unwrap();
    let pid = fork(|| {
        std::thread::sleep(200 * MS);
        w.send(b"still here").unwrap();
    });
    w.close();
    assert_eq!(
        r.recv(true, Some(Duration::from_secs(5))).unwrap(),
        b"still here"
    );
    wait_ok(pid);
    assert!(matches!(r.recv(true, None), Err(IpcError::Closed)));
    assert!(matches!(r.recv(false, None), Err(IpcError::Closed)));
}

fn pipe_poll() {
    let (a, b) = pipe(true).unwrap();
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    let t = Instant::now();
    assert!(!b.poll(Some(100 * MS)).unwrap());
    assert!(t.elapsed() >= 100 * MS);
    a.send(b"m").unwrap();
    assert!(b.poll(Some(Duration::ZERO)).unwrap());
    assert!(b.poll(None).unwrap());
    assert!(
        b.poll(Some(Duration::ZERO)).unwrap(),
        "poll consumed the message"
    );
    assert_eq!(b.recv(false, None).unwrap(), b"m");
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    let pid = fork(|| {
        std::thread::sleep(100 * MS);
        a.send(b"later").unwrap();
    });
    assert!(b.poll(Some(Duration::from_secs(5))).unwrap());
    assert_eq!(b.recv(false, None).unwrap(), b"later");
    wait_ok(pid);
}

// ---------------------------------------------------------------------------
// sync

fn lock_basic() {
    let l = Lock::new().unwrap();
    assert!(!l.locked());
    assert!(matches!(l.release(), Err(IpcError::NotOwner)));
    assert!(l.acquire(true, None).unwrap());
    assert!(l.locked());
    assert!(!l.acquire(false, None).unwrap());
    assert!(!l.acquire(true, Some(50 * MS)).unwrap());
    let pid = fork(|| {
        assert!(!l.acquire(false, None).unwrap());
        assert!(matches!(l.release(), Err(IpcError::NotOwner)));
        let t = Instant::now();
        assert!(l.acquire(true, Some(Duration::from_secs(5))).unwrap());
        assert!(t.elapsed() >= 50 * MS);
        l.release().unwrap();
    });
    std::thread::sleep(100 * MS);
    l.release().unwrap();
    wait_ok(pid);
    assert!(!l.locked());

    let r = RLock::new().unwrap();
    assert!(r.acquire(true, None).unwrap());
    assert!(r.acquire(true, None).unwrap());
    assert_eq!(r.depth(), 2);
    let pid = fork(|| {
        assert!(!r.acquire(false, None).unwrap());
        assert!(matches!(r.release(), Err(IpcError::NotOwner)));
    });
    wait_ok(pid);
    r.release().unwrap();
    assert!(r.locked());
    r.release().unwrap();
    assert!(!r.locked());
    assert!(matches!(r.release(), Err(IpcError::NotOwner)));
}

fn lock_holder_killed() {
    for reap in [false, true] {
        let l = Lock::new().unwrap();
        let (mut rd, mut wr) = os_pipe::pipe().unwrap();
        let pid = fork(|| {
            assert!(l.acquire(true, None).unwrap());
            wr.write_all(b"x").unwrap();
            std::thread::sleep(Duration::from_secs(60));
        });
        drop(wr);
        let mut b = [0u8; 1];
        rd.read_exact(&mut b).unwrap();
        assert!(l.locked());
        kill(pid, libc::SIGKILL);
        if reap {
            wait_status(pid);
        }
        let t = Instant::now();
        assert!(l.acquire(true, Some(Duration::from_secs(5))).unwrap());
        let e = t.elapsed();
        assert!(e < Duration::from_secs(1), "recovery took {e:?}");
        l.release().unwrap();
        if !reap {
            wait_status(pid);
        }
    }
    // An internal lock (a queue's) held by a process that is killed.
    let v = ValueCell::new(b"0").unwrap();
    let (mut rd, mut wr) = os_pipe::pipe().unwrap();
    let pid = fork(|| {
        assert!(v.acquire(true, None).unwrap());
        wr.write_all(b"x").unwrap();
        std::thread::sleep(Duration::from_secs(60));
    });
    drop(wr);
    let mut b = [0u8; 1];
    rd.read_exact(&mut b).unwrap();
    kill(pid, libc::SIGKILL);
    let t = Instant::now();
    v.set(b"1").unwrap();
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(v.get().unwrap(), b"1");
    wait_status(pid);
}

fn lock_counter() {
    const PROCS: usize = 4;
    const N: i64 = 20_000;
    let l = Lock::new().unwrap();
    let a = Array::new(&[Num::Int(0), Num::Float(0.5)]).unwrap();
    let v = ValueCell::new(&0u64.to_le_bytes()).unwrap();
    let pids: Vec<i32> = (0..PROCS)
        .map(|_| {
            fork(|| {
                for i in 0..N {
                    assert!(l.acquire(true, None).unwrap());
                    let Num::Int(x) = a.get(0).unwrap() else {
                        panic!()
                    };
                    a.set(0, Num::Int(x + 1)).unwrap();
                    l.release().unwrap();
                    if i % 4 == 0 {
                        v.update(|b| {
                            let x = u64::from_le_bytes(b.try_into().unwrap());
                            Some((x + 1).to_le_bytes().to_vec())
                        })
                        .unwrap();
                    }
                }
            })
        })
        .collect();
    pids.into_iter().for_each(wait_ok);
    assert_eq!(a.get(0).unwrap(), Num::Int(PROCS as i64 * N));
    assert_eq!(a.get(-1).unwrap(), Num::Float(0.5));
    assert_eq!(
        u64::from_le_bytes(v.get().unwrap().try_into().unwrap()),
        (PROCS as u64) * (N as u64 / 4)
    );
}

fn semaphore_event_barrier() {
    let s = Semaphore::new(2).unwrap();
    assert!(s.acquire(false, None).unwrap());
    assert!(s.acquire(false, None).unwrap());
    assert!(!s.acquire(false, None).unwrap());
    assert!(!s.acquire(true, Some(50 * MS)).unwrap());
    assert_eq!(s.value(), 0);
    let pid = fork(|| {
        std::thread::sleep(100 * MS);
        s.release().unwrap();
    });
    assert!(s.acquire(true, Some(Duration::from_secs(5))).unwrap());
    wait_ok(pid);
    s.release().unwrap();
    s.release().unwrap();
    assert_eq!(s.value(), 2);

    let e = Event::new().unwrap();
    assert!(!e.is_set());
    assert!(!e.wait(Some(50 * MS)).unwrap());
    let pids: Vec<i32> = (0..3)
        .map(|_| fork(|| assert!(e.wait(Some(Duration::from_secs(5))).unwrap())))
        .collect();
    std::thread::sleep(100 * MS);
    e.set();
    pids.into_iter().for_each(wait_ok);
    assert!(e.is_set() && e.wait(None).unwrap());
    e.clear();
    assert!(!e.is_set());

    let b = Barrier::new(3).unwrap();
    let q = Queue::new(0).unwrap();
    let pids: Vec<i32> = (0..2)
        .map(|i| {
            fork(|| {
                std::thread::sleep(50 * MS * i);
                let idx = b.wait(Some(Duration::from_secs(5))).unwrap();
                q.put(&enc(idx, 0), true, None).unwrap();
            })
        })
        .collect();
    let t = Instant::now();
    let idx = b.wait(Some(Duration::from_secs(5))).unwrap();
    pids.into_iter().for_each(wait_ok);
    let mut idxs = vec![
        idx,
        dec(&q.get(false, None).unwrap()).0,
        dec(&q.get(false, None).unwrap()).0,
    ];
    idxs.sort();
    assert_eq!(idxs, vec![0, 1, 2]);
    assert!(t.elapsed() < Duration::from_secs(2));
    // A timed-out wait withdraws; the barrier stays usable.
    assert!(matches!(b.wait(Some(50 * MS)), Err(IpcError::Timeout)));
    assert_eq!(b.n_waiting(), 0);
}

// ---------------------------------------------------------------------------
// shared memory

fn shm_value_array() {
    let v = ValueCell::new(b"small").unwrap();
    assert_eq!(v.get().unwrap(), b"small");
    let big = pattern(5 << 20, 3);
    let pid = fork(|| v.set(&big).unwrap());
    wait_ok(pid);
    assert!(v.get().unwrap() == big);
    let pid = fork(|| v.set(b"").unwrap());
    wait_ok(pid);
    assert_eq!(v.get().unwrap(), b"");
    // with v { ... }: the lock is re-entrant for the operations inside.
    assert!(v.acquire(true, None).unwrap());
    v.set(b"inside").unwrap();
    assert_eq!(v.get().unwrap(), b"inside");
    let pid = fork(|| assert!(!v.acquire(false, None).unwrap()));
    wait_ok(pid);
    v.release().unwrap();

    let a = Array::new(&[Num::Int(1), Num::Int(2), Num::Float(2.5)]).unwrap();
    assert_eq!(a.len(), 3);
    assert!(matches!(a.get(3), Err(IpcError::OutOfRange)));
    assert!(matches!(a.get(-4), Err(IpcError::OutOfRange)));
    let pid = fork(|| {
        a.set(0, Num::Float(-1.5)).unwrap();
        a.set(-1, Num::Int(i64::MIN)).unwrap();
    });
    wait_ok(pid);
    assert_eq!(
        a.to_vec().unwrap(),
        vec![Num::Float(-1.5), Num::Int(2), Num::Int(i64::MIN)]
    );
    let empty = Array::new(&[]).unwrap();
    assert!(empty.is_empty() && empty.to_vec().unwrap().is_empty());
}

fn shm_dict_list() {
    let d = SharedDict::new().unwrap();
    d.set(b"b", b"1").unwrap();
    d.set(b"a", b"2").unwrap();
    d.set(b"c", b"").unwrap();
    d.set(b"b", b"updated").unwrap();
    assert_eq!(
        d.keys().unwrap(),
        vec![b"b".to_vec(), b"a".to_vec(), b"c".to_vec()]
    );
    assert_eq!(d.get(b"b").unwrap().unwrap(), b"updated");
    assert_eq!(d.get(b"zz").unwrap(), None);
    assert!(d.contains(b"c").unwrap() && !d.contains(b"d").unwrap());
    assert_eq!(d.remove(b"a").unwrap().unwrap(), b"2");
    assert_eq!(d.remove(b"a").unwrap(), None);
    assert_eq!(d.len(), 2);
    // Growth far beyond the first mapping, from several processes at once.
    let pids: Vec<i32> = (0..3u32)
        .map(|p| {
            fork(|| {
                for i in 0..10_000u32 {
                    let k = format!("k{p}-{i}");
                    d.set(k.as_bytes(), &pattern((i % 64) as usize, i as u64))
                        .unwrap();
                    if i % 10 == 0 {
                        d.set(k.as_bytes(), &enc(p, i)).unwrap();
                    }
                }
            })
        })
        .collect();
    pids.into_iter().for_each(wait_ok);
    assert_eq!(d.len(), 30_002);
    for p in 0..3u32 {
        for i in (0..10_000u32).step_by(7) {
            let got = d.get(format!("k{p}-{i}").as_bytes()).unwrap().unwrap();
            if i % 10 == 0 {
                assert_eq!(dec(&got), (p, i));
            } else {
                assert_eq!(got, pattern((i % 64) as usize, i as u64));
            }
        }
    }
    let keys = d.keys().unwrap();
    assert_eq!(keys.len(), 30_002);
    assert_eq!(&keys[..2], &[b"b".to_vec(), b"c".to_vec()]);
    let items = d.items().unwrap();
    assert_eq!(items.len(), 30_002);
    // Churn: overwriting one big value many times must not grow without bound.
    let big = vec![5u8; 100_000];
    for _ in 0..300 {
        d.set(b"churn", &big).unwrap();
    }
    assert_eq!(d.get(b"churn").unwrap().unwrap(), big);
    d.clear().unwrap();
    assert!(d.is_empty() && d.keys().unwrap().is_empty());
    d.set(b"again", b"1").unwrap();
    assert_eq!(d.items().unwrap(), vec![(b"again".to_vec(), b"1".to_vec())]);

    let l = SharedList::new().unwrap();
    let pids: Vec<i32> = (0..2u32)
        .map(|p| {
            fork(|| {
                for i in 0..5_000u32 {
                    l.push(&enc(p, i)).unwrap();
                }
            })
        })
        .collect();
    pids.into_iter().for_each(wait_ok);
    assert_eq!(l.len(), 10_000);
    let all = l.to_vec().unwrap();
    let mut next = [0u32; 2];
    for m in &all {
        let (p, i) = dec(m);
        assert_eq!(i, next[p as usize]);
        next[p as usize] += 1;
    }
    l.set(0, b"first").unwrap();
    l.set(-1, &vec![1u8; 50_000]).unwrap();
    assert_eq!(l.get(0).unwrap(), b"first");
    assert_eq!(l.get(-1).unwrap(), vec![1u8; 50_000]);
    assert!(matches!(l.get(10_000), Err(IpcError::OutOfRange)));
    assert_eq!(l.pop(None).unwrap(), vec![1u8; 50_000]);
    assert_eq!(l.pop(Some(0)).unwrap(), b"first");
    assert_eq!(l.len(), 9_998);
    assert_eq!(l.get(0).unwrap(), all[1]);
    l.clear().unwrap();
    assert!(l.is_empty());
    assert!(matches!(l.pop(None), Err(IpcError::OutOfRange)));
}

// ---------------------------------------------------------------------------
// signals

extern "C" fn on_usr1(_: libc::c_int) {}

/// Blocking waits interrupted by a signal whose handler has no SA_RESTART (as
/// the interpreter installs them) carry on and return the right result. (With
/// `signal::pending()` true they would return `Interrupted`; the placeholder
/// signal module never reports a pending signal.)
fn blocking_waits_survive_eintr() {
    let q = Queue::new(1).unwrap();
    let (a, b) = pipe(true).unwrap();
    let l = Lock::new().unwrap();
    let e = Event::new().unwrap();
    let s = Semaphore::new(0).unwrap();
    let ready = Semaphore::new(0).unwrap();
    assert!(l.acquire(true, None).unwrap());
    q.put(b"fill", true, None).unwrap();
    let pid = fork(|| {
        // SAFETY: a no-op handler, installed without SA_RESTART.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_usr1 as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
        }
        ready.release().unwrap();
        q.put(b"second", true, None).unwrap(); // blocks: full
        ready.release().unwrap();
        assert_eq!(b.recv(true, None).unwrap(), b"msg");
        ready.release().unwrap();
        assert!(l.acquire(true, Some(Duration::from_secs(10))).unwrap());
        l.release().unwrap();
        ready.release().unwrap();
        assert!(e.wait(Some(Duration::from_secs(10))).unwrap());
        ready.release().unwrap();
        assert!(s.acquire(true, Some(Duration::from_secs(10))).unwrap());
    });
    let nag = |step: &dyn Fn()| {
        assert!(ready.acquire(true, Some(Duration::from_secs(10))).unwrap());
        for _ in 0..5 {
            std::thread::sleep(10 * MS);
            kill(pid, libc::SIGUSR1);
        }
        step();
    };
    nag(&|| assert_eq!(q.get(true, None).unwrap(), b"fill"));
    nag(&|| a.send(b"msg").unwrap());
    nag(&|| l.release().unwrap());
    nag(&|| e.set());
    nag(&|| s.release().unwrap());
    wait_ok(pid);
    assert_eq!(q.get(false, None).unwrap(), b"second");
}

// ---------------------------------------------------------------------------
// handles

fn handles_same_process_and_child() {
    let q = Queue::new(0).unwrap();
    let d = q.describe().unwrap();
    let q2 = Queue::from_description(&d).unwrap();
    assert!(q == q2);
    let (a, b) = pipe(true).unwrap();
    let bd = b.describe().unwrap();
    assert!(PipeEnd::from_description(&bd).unwrap() == b);
    assert!(Lock::from_description(&q.describe().unwrap()).is_err());
    assert!(Queue::from_description(b"garbage").is_err());
    // A child forked after creation reuses its inherited object.
    let fds = fd_count();
    let pid = fork(|| {
        let q3 = Queue::from_description(&d).unwrap();
        let b3 = PipeEnd::from_description(&bd).unwrap();
        assert_eq!(fd_count(), fds, "a descendant must not reopen");
        q3.put(b"child", true, None).unwrap();
        b3.send(b"via b").unwrap();
    });
    wait_ok(pid);
    assert_eq!(q.get(false, None).unwrap(), b"child");
    assert_eq!(a.recv(true, None).unwrap(), b"via b");
    // A child that closed its copy and gets the end again reopens it from the
    // describer (here its parent).
    let pid = fork(|| {
        b.close();
        let b3 = PipeEnd::from_description(&bd).unwrap();
        assert!(!b3.is_closed());
        b3.send(b"reopened").unwrap();
    });
    wait_ok(pid);
    assert_eq!(a.recv(true, None).unwrap(), b"reopened");
}

fn write_msg(w: &mut impl Write, m: &[u8]) {
    w.write_all(&(m.len() as u32).to_le_bytes()).unwrap();
    w.write_all(m).unwrap();
}

fn read_msg(r: &mut impl Read) -> Vec<u8> {
    let mut n = [0u8; 4];
    r.read_exact(&mut n).unwrap();
    let mut m = vec![0u8; u32::from_le_bytes(n) as usize];
    r.read_exact(&mut m).unwrap();
    m
}

fn handles_to_earlier_process() {
    let (mut rd, mut wr) = os_pipe::pipe().unwrap();
    let (mut ack_rd, mut ack_wr) = os_pipe::pipe().unwrap();
    // The worker exists before any of the objects does.
    let worker = fork(|| {
        let q = Queue::from_description(&read_msg(&mut rd)).unwrap();
        let l = Lock::from_description(&read_msg(&mut rd)).unwrap();
        let b = PipeEnd::from_description(&read_msg(&mut rd)).unwrap();
        let w = PipeEnd::from_description(&read_msg(&mut rd)).unwrap();
        let d = SharedDict::from_description(&read_msg(&mut rd)).unwrap();
        let e = Event::from_description(&read_msg(&mut rd)).unwrap();
        let v = ValueCell::from_description(&read_msg(&mut rd)).unwrap();
        // Decoding twice gives the same local object, without new descriptors.
        let fds = fd_count();
        let q2 = Queue::from_description(&q.describe().unwrap()).unwrap();
        assert!(q2 == q && fd_count() == fds);
        ack_wr.write_all(b"k").unwrap();
        q.put(b"from worker", true, None).unwrap();
        assert!(!l.acquire(false, None).unwrap(), "parent holds the lock");
        assert!(l.acquire(true, Some(Duration::from_secs(5))).unwrap());
        l.release().unwrap();
        assert_eq!(b.recv(true, None).unwrap(), b"to worker");
        b.send(b"to parent").unwrap();
        w.send(b"one-way").unwrap();
        d.set(b"k", b"v").unwrap();
        assert_eq!(v.get().unwrap(), b"shared value");
        v.set(b"changed").unwrap();
        e.set();
        b.close();
        w.close();
    });
    drop(rd);
    drop(ack_wr);
    let q = Queue::new(0).unwrap();
    let l = Lock::new().unwrap();
    let (a, b) = pipe(true).unwrap();
    let (r, w) = pipe(false).unwrap();
    let d = SharedDict::new().unwrap();
    let e = Event::new().unwrap();
    let v = ValueCell::new(b"shared value").unwrap();
    assert!(l.acquire(true, None).unwrap());
    for m in [
        q.describe(),
        l.describe(),
        b.describe(),
        w.describe(),
        d.describe(),
        e.describe(),
        v.describe(),
    ] {
        write_msg(&mut wr, &m.unwrap());
    }
    let mut k = [0u8; 1];
    ack_rd.read_exact(&mut k).unwrap();
    // The worker has its own copies now: ours can go.
    b.close();
    w.close();
    assert_eq!(
        q.get(true, Some(Duration::from_secs(5))).unwrap(),
        b"from worker"
    );
    std::thread::sleep(50 * MS);
    l.release().unwrap();
    a.send(b"to worker").unwrap();
    assert_eq!(
        a.recv(true, Some(Duration::from_secs(5))).unwrap(),
        b"to parent"
    );
    assert_eq!(
        r.recv(true, Some(Duration::from_secs(5))).unwrap(),
        b"one-way"
    );
    assert!(e.wait(Some(Duration::from_secs(5))).unwrap());
    assert_eq!(d.get(b"k").unwrap().unwrap(), b"v");
    assert_eq!(v.get().unwrap(), b"changed");
    wait_ok(worker);
    // Every copy of b and w is gone now.
    assert!(matches!(a.recv(true, None), Err(IpcError::Closed)));
    assert!(matches!(r.recv(true, None), Err(IpcError::Closed)));
}

fn no_leaks() {
    let fds = fd_count();
    let shm = dev_shm();
    for i in 0..10_000u32 {
        let q = Queue::new((i % 3) as usize).unwrap();
        q.put(&enc(i, 0), true, None).unwrap();
        assert_eq!(dec(&q.get(false, None).unwrap()), (i, 0));
        q.close();
        let (a, b) = pipe(i % 2 == 0).unwrap();
        if i % 2 == 0 {
            a.send(b"x").unwrap();
            assert_eq!(b.recv(false, None).unwrap(), b"x");
        } else {
            b.send(b"y").unwrap();
            assert_eq!(a.recv(false, None).unwrap(), b"y");
        }
        a.close();
        drop((a, b, q));
    }
    for _ in 0..1000 {
        let _ = (
            Lock::new().unwrap(),
            SharedDict::new().unwrap(),
            ValueCell::new(b"v").unwrap(),
        );
    }
    assert_eq!(fd_count(), fds, "descriptors leaked");
    assert_eq!(dev_shm(), shm, "/dev/shm changed");
}

// ---------------------------------------------------------------------------
// measurements (printed, not asserted)

fn rate(n: usize, t: Duration) -> f64 {
    n as f64 / t.as_secs_f64()
}

fn bench_queue(n: usize) -> Duration {
    let q = Queue::new(0).unwrap();
    let t = Instant::now();
    let pid = fork(|| {
        for i in 0..n as u32 {
            q.put(&enc(i, 0), true, None).unwrap();
        }
    });
    for _ in 0..n {
        q.get(true, None).unwrap();
    }
    let e = t.elapsed();
    wait_ok(pid);
    e
}

/// One 8-byte write and one 8-byte read per item.
fn bench_raw_pipe(n: usize) -> Duration {
    let (mut rd, mut wr) = os_pipe::pipe().unwrap();
    let t = Instant::now();
    let pid = fork(|| {
        for i in 0..n as u32 {
            wr.write_all(&enc(i, 0)).unwrap();
        }
    });
    drop(wr);
    let mut b = [0u8; 8];
    for _ in 0..n {
        rd.read_exact(&mut b).unwrap();
    }
    let e = t.elapsed();
    wait_ok(pid);
    e
}

fn bench_pingpong(r: usize) -> Duration {
    let (a, b) = pipe(true).unwrap();
    let pid = fork(|| {
        for _ in 0..r {
            let m = b.recv(true, None).unwrap();
            b.send(&m).unwrap();
        }
    });
    let t = Instant::now();
    for i in 0..r as u32 {
        a.send(&enc(i, 0)).unwrap();
        a.recv(true, None).unwrap();
    }
    let e = t.elapsed();
    wait_ok(pid);
    e
}

fn bench_raw_pingpong(r: usize) -> Duration {
    let (mut r1, mut w1) = os_pipe::pipe().unwrap();
    let (mut r2, mut w2) = os_pipe::pipe().unwrap();
    let pid = fork(|| {
        let mut b = [0u8; 8];
        for _ in 0..r {
            r1.read_exact(&mut b).unwrap();
            w2.write_all(&b).unwrap();
        }
    });
    let t = Instant::now();
    let mut b = [0u8; 8];
    for i in 0..r as u32 {
        w1.write_all(&enc(i, 0)).unwrap();
        r2.read_exact(&mut b).unwrap();
    }
    let e = t.elapsed();
    wait_ok(pid);
    e
}

/// 2 processes x `n` increments of a value cell under its lock, as
/// `with v { v.value += 1 }` does (fork to exit).
fn bench_counter(n: usize) -> Duration {
    let v = ValueCell::new(&0u64.to_le_bytes()).unwrap();
    let t = Instant::now();
    let pids: Vec<i32> = (0..2)
        .map(|_| {
            fork(|| {
                for _ in 0..n {
                    assert!(v.acquire(true, None).unwrap());
                    let x = u64::from_le_bytes(v.get().unwrap().try_into().unwrap());
                    v.set(&(x + 1).to_le_bytes()).unwrap();
                    v.release().unwrap();
                }
            })
        })
        .collect();
    pids.into_iter().for_each(wait_ok);
    let e = t.elapsed();
    assert_eq!(v.get().unwrap(), (2 * n as u64).to_le_bytes());
    e
}

/// The same with a plain lock around a slot of a shared array.
fn bench_lock_counter(n: usize) -> Duration {
    let l = Lock::new().unwrap();
    let a = Array::new(&[Num::Int(0)]).unwrap();
    let t = Instant::now();
    let pids: Vec<i32> = (0..2)
        .map(|_| {
            fork(|| {
                for _ in 0..n {
                    assert!(l.acquire(true, None).unwrap());
                    let Num::Int(x) = a.get(0).unwrap() else {
                        panic!("not an int")
                    };
                    a.set(0, Num::Int(x + 1)).unwrap();
                    l.release().unwrap();
                }
            })
        })
        .collect();
    pids.into_iter().for_each(wait_ok);
    let e = t.elapsed();
    assert_eq!(a.get(0).unwrap(), Num::Int(2 * n as i64));
    e
}

/// Measurements, printed: the best of three alternating runs each, as the
/// machine may be busy.
fn bench() {
    const N: usize = 200_000;
    const R: usize = 50_000;
    let best = |f: &dyn Fn() -> Duration, slot: &mut Duration| *slot = (*slot).min(f());
    let mut t = [Duration::MAX; 7];
    for _ in 0..3 {
        best(&|| bench_queue(N), &mut t[0]);
        best(&|| bench_raw_pipe(N), &mut t[1]);
        best(&|| bench_pingpong(R), &mut t[2]);
        best(&|| bench_raw_pingpong(R), &mut t[3]);
        best(&|| bench_counter(20_000), &mut t[4]);
        best(&|| bench_lock_counter(20_000), &mut t[5]);
        best(&|| bench_lock_counter(0), &mut t[6]);
    }
    println!(
        "bench queue, {N} 8-byte items child->parent: {:.0} items/s; raw pipe 8-byte write+read loop: {:.0} items/s ({:.2}x)",
        rate(N, t[0]),
        rate(N, t[1]),
        t[1].as_secs_f64() / t[0].as_secs_f64()
    );
    println!(
        "bench pipe ping-pong: {:.0} round trips/s; raw pipe ping-pong: {:.0} round trips/s ({:.2}x)",
        rate(R, t[2]),
        rate(R, t[3]),
        t[3].as_secs_f64() / t[2].as_secs_f64()
    );
    println!(
        "bench counter, 2 procs x 20000 increments, fork to exit: {:.2} ms under a value's lock, {:.2} ms with a lock and an array slot (forking alone: {:.2} ms)",
        t[4].as_secs_f64() * 1e3,
        t[5].as_secs_f64() * 1e3,
        t[6].as_secs_f64() * 1e3
    );
}

fn main() {
    let tests: &[(&str, fn())] = &[
        ("queue_basic", queue_basic),
        ("queue_mpmc_4x3x100000", queue_mpmc),
        ("queue_big_message_64mib", queue_big_message),
        ("queue_put_then_exit", queue_put_then_exit),
        ("queue_full_empty_timeouts", queue_full_empty_timeouts),
        ("queue_close", queue_close),
        ("queue_task_done_join", queue_task_done_join),
        ("pipe_basic", pipe_basic),
        ("pipe_big_message_64mib", pipe_big_message),
        ("pipe_backpressure", pipe_backpressure),
        ("pipe_closed", pipe_closed),
        ("pipe_poll", pipe_poll),
        ("lock_basic", lock_basic),
        ("lock_holder_killed", lock_holder_killed),
        ("lock_counter_4_procs", lock_counter),
        ("semaphore_event_barrier", semaphore_event_barrier),
        ("shm_value_array", shm_value_array),
        ("shm_dict_list", shm_dict_list),
        ("blocking_waits_survive_eintr", blocking_waits_survive_eintr),
        (
            "handles_same_process_and_child",
            handles_same_process_and_child,
        ),
        ("handles_to_earlier_process", handles_to_earlier_process),
        ("no_leaks_10000_cycles", no_leaks),
        ("bench", bench),
    ];
    // Run only when named (for profiling).
    let manual: &[(&str, fn())] = &[
        ("manual_pingpong", || {
            let t = bench_pingpong(100_000);
            println!("pingpong {:.0}/s", rate(100_000, t));
        }),
        ("manual_queue", || {
            let t = bench_queue(2_000_000);
            println!("queue {:.0} items/s", rate(2_000_000, t));
        }),
        ("manual_counter", || {
            let t = bench_lock_counter(2_000_000);
            println!("counter 2 x 2000000: {:.1} ms", t.as_secs_f64() * 1e3);
        }),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut passed = 0;
    let start = Instant::now();
    let chosen = |name: &str| filter.is_empty() || filter.iter().any(|p| name.contains(p.as_str()));
    let manual = manual.iter().filter(|(n, _)| filter.iter().any(|p| p == n));
    for (name, f) in tests.iter().filter(|(n, _)| chosen(n)).chain(manual) {
        let t = Instant::now();
        f();
        passed += 1;
        println!("test {name} ... ok ({:.2}s)", t.elapsed().as_secs_f64());
    }
    println!("total {:.1}s", start.elapsed().as_secs_f64());
    println!("{passed} passed, 0 failed");
}
