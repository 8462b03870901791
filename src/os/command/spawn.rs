//! Starting a program: the `PATH` search in the parent, then a vfork-style
//! `clone(CLONE_VM | CLONE_VFORK)` whose child sets the process up and execs.
//!
//! # Why not `fork`, why not `posix_spawn`
//!
//! `fork` copies the page tables of the whole interpreter: with a large heap it
//! costs more than the exec that follows. glibc's `posix_spawn` avoids that (it
//! is itself `clone(CLONE_VM | CLONE_VFORK)`) and can set the process group and
//! default signal dispositions, but it cannot set `PR_SET_PDEATHSIG`, and without
//! it a SIGKILLed interpreter leaves its commands running. The other ways round
//! cost more: exec'ing a trampoline that sets it and execs again doubles the
//! exec; a watchdog process cannot help when the interpreter is SIGKILLed. So we
//! do what glibc does, plus `prctl` and a `getppid` check (two system calls in
//! the child): the same cost as `posix_spawn`, measured by
//! `tests/os_command.rs`. The price is this file's `unsafe` code, kept to system
//! calls with everything prepared in the parent. `CLONE_PIDFD` hands us a pidfd
//! for free, so waits can poll for the exit alongside the pipes.
//!
//! # The rules for the child
//!
//! The child shares our memory and runs on its own small stack while the calling
//! thread is suspended (`CLONE_VFORK`) until it execs or exits. So it may only
//! make system calls: no allocation, no locks, no panics, nothing that touches
//! state the parent will see, except the two fields of [`ChildArgs`] that say why
//! it failed. Everything it needs (the path, argv, envp, the directory, the fds)
//! is prepared by the parent beforehand. All signals are blocked across the
//! `clone` so that no handler of ours can run in the child; the child resets every
//! disposition to the default before unblocking them.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that created the child exits, not
//! the process: fine, since the interpreter starts commands from its main thread.
//! It is not inherited by grandchildren: a command that backgrounds something can
//! leave that behind if the interpreter is SIGKILLed (a timeout or `kill()` still
//! reaches it through the process group).

use std::cell::Cell;
use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use libc::{c_char, c_int, c_void};

use super::error::CommandError;
use crate::os::process::{self, Pid};

/// Where the child's stdio comes from: `-1` leaves the inherited one, a
/// descriptor >= 3 is `dup2`ed onto it, `TO_STDOUT` (stderr only) copies fd 1.
pub(super) const INHERIT: RawFd = -1;
pub(super) const TO_STDOUT: RawFd = -2;

/// Used when `PATH` is not set, as glibc's `execvp` does.
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// The child's stack. It only runs `child_main` and a few system-call wrappers.
const STACK_SIZE: usize = 64 * 1024;

/// A command ready to start: everything the child will need, as C strings.
pub(super) struct Prepared {
    /// The command for messages, quoted so that it can be pasted into a shell.
    pub display: String,
    pub process_group: bool,
    program: String,
    path: CString,
    cwd: Option<(CString, String)>,
    // The pointer arrays below point into these.
    _argv: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    _env: Vec<CString>,
    env_ptrs: Option<Vec<*const c_char>>,
}

/// Checks and converts what the child needs, and finds the program: a missing
/// program is reported here, before anything starts.
pub(super) fn prepare(
    argv: &[String],
    cwd: Option<&str>,
    env: Option<&[(String, String)]>,
    process_group: bool,
) -> Result<Prepared, CommandError> {
    let display = shell_words::join(argv);
    let Some(program) = argv.first() else {
        return Err(CommandError::Parse {
            command: display,
            message: "empty command".into(),
        });
    };
    let nul = |what: &str| CommandError::Spawn {
        command: display.clone(),
        source: io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        ),
    };
    let c_argv = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| nul("an argument"))?;
    let mut argv_ptrs: Vec<*const c_char> = c_argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(ptr::null());

    let mut c_env = Vec::new();
    let mut path_var = None;
    if let Some(env) = env {
        for (k, v) in env {
            if k.is_empty() || k.contains('=') {
                return Err(CommandError::Spawn {
                    command: display,
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("invalid environment variable name `{k}`"),
                    ),
                });
            }
            if k == "PATH" {
                path_var = Some(OsStr::new(v.as_str()));
            }
            c_env.push(CString::new(format!("{k}={v}")).map_err(|_| nul("the environment"))?);
        }
    }
    let env_ptrs = env.map(|_| {
        let mut p: Vec<*const c_char> = c_env.iter().map(|e| e.as_ptr()).collect();
        p.push(ptr::null());
        p
    });

    let cwd = match cwd {
        Some(dir) => Some((
            CString::new(dir).map_err(|_| nul("the directory"))?,
            dir.to_string(),
        )),
        None => None,
    };
    let parent_path = std::env::var_os("PATH");
    let search = match env {
        // A replaced environment brings its own PATH, as in Rust's std.
        Some(_) => path_var,
        None => parent_path.as_deref(),
    };
    let path = find_program(program, search, cwd.as_ref().map(|c| Path::new(&c.1))).map_err(
        |e| match e {
            Missing::NotFound => CommandError::NoSuchProgram {
                program: program.clone(),
            },
            Missing::Other(source) => CommandError::Spawn {
                command: display.clone(),
                source,
            },
        },
    )?;
    Ok(Prepared {
        display,
        process_group,
        program: program.clone(),
        path,
        cwd,
        _argv: c_argv,
        argv_ptrs,
        _env: c_env,
        env_ptrs,
    })
}

enum Missing {
    NotFound,
    Other(io::Error),
}

/// `execvp`'s search, done in the parent: a name with a `/` is used as it is (the
/// exec reports it missing); otherwise the first executable regular file in
/// `PATH`. A match that exists but is not executable is "permission denied".
fn find_program(
    program: &str,
    path_var: Option<&OsStr>,
    cwd: Option<&Path>,
) -> Result<CString, Missing> {
    if program.is_empty() {
        return Err(Missing::NotFound);
    }
    if program.contains('/') {
        return CString::new(program).map_err(|_| Missing::NotFound);
    }
    let path_var = path_var.unwrap_or(OsStr::new(DEFAULT_PATH));
    let mut denied = false;
    for dir in path_var.as_bytes().split(|&b| b == b':') {
        // An empty entry means the current directory, which for the child is `cwd`.
        let dir = Path::new(OsStr::from_bytes(if dir.is_empty() { b"." } else { dir }));
        let mut candidate: PathBuf = match cwd {
            Some(cwd) if dir.is_relative() => cwd.join(dir),
            _ => dir.to_path_buf(),
        };
        candidate.push(program);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return CString::new(candidate.into_os_string().into_vec())
                    .map_err(|_| Missing::NotFound);
            }
            denied |= meta.is_file();
        }
    }
    if denied {
        Err(Missing::Other(io::Error::from_raw_os_error(libc::EACCES)))
    } else {
        Err(Missing::NotFound)
    }
}

/// What the child shares with the parent. The child writes `failed_step` and
/// `errno` only when it is about to `_exit` instead of exec.
#[repr(C)]
struct ChildArgs {
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    cwd: *const c_char,
    stdio: [RawFd; 3],
    parent: libc::pid_t,
    process_group: bool,
    failed_step: c_int,
    errno: c_int,
}

const STEP_SETUP: c_int = 1;
const STEP_CHDIR: c_int = 2;
const STEP_EXEC: c_int = 3;

/// Set once the kernel refused `CLONE_PIDFD` (before Linux 5.2).
static NO_CLONE_PIDFD: AtomicBool = AtomicBool::new(false);

/// Starts the prepared command with `stdio` (see [`INHERIT`], [`TO_STDOUT`];
/// descriptors must be >= 3) and registers it with `process`. Returns the pid and,
/// where the kernel has them, a pidfd that becomes readable when it exits.
pub(super) fn launch(
    p: &Prepared,
    stdio: [RawFd; 3],
) -> Result<(Pid, Option<OwnedFd>), CommandError> {
    let environ = || {
        extern "C" {
            static mut environ: *const *const c_char;
        }
        // SAFETY: reading the pointer; the interpreter is single-threaded here, so
        // no `setenv` can run concurrently.
        unsafe { environ }
    };
    let mut args = ChildArgs {
        path: p.path.as_ptr(),
        argv: p.argv_ptrs.as_ptr(),
        envp: p.env_ptrs.as_ref().map_or_else(environ, |e| e.as_ptr()),
        cwd: p.cwd.as_ref().map_or(ptr::null(), |c| c.0.as_ptr()),
        stdio,
        parent: std::process::id() as libc::pid_t,
        process_group: p.process_group,
        failed_step: 0,
        errno: 0,
    };
    let stack_top = child_stack().map_err(|e| spawn_error(p, e))?;

    let mut pidfd: c_int = -1;
    let mut flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
    if !NO_CLONE_PIDFD.load(Ordering::Relaxed) {
        flags |= libc::CLONE_PIDFD;
    }
    let pid = loop {
        let (pid, err) = with_signals_blocked(|| {
            // SAFETY: `child_main` only makes system calls on its own stack (see
            // the module docs); `args` and everything it points to outlive the
            // call, which returns only once the child has exec'd or exited.
            let pid = unsafe {
                libc::clone(
                    child_main,
                    stack_top,
                    flags,
                    &mut args as *mut ChildArgs as *mut c_void,
                    &mut pidfd as *mut c_int,
                )
            };
            let err = io::Error::last_os_error();
            if pid > 0 {
                // Before any signal handler of ours can run and sweep.
                process::register(pid);
            }
            (pid, err)
        });
        if pid != -1 {
            break pid;
        }
        if flags & libc::CLONE_PIDFD != 0 && err.raw_os_error() == Some(libc::EINVAL) {
            NO_CLONE_PIDFD.store(true, Ordering::Relaxed);
            flags &= !libc::CLONE_PIDFD;
            continue;
        }
        return Err(spawn_error(p, err));
    };
    // SAFETY: the kernel gave us this descriptor (with O_CLOEXEC) and nobody else.
    let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });

    // SAFETY: the child has exited or exec'd; nothing writes `args` any more.
    let (step, errno) = unsafe {
        (
            ptr::read_volatile(&args.failed_step),
            ptr::read_volatile(&args.errno),
        )
    };
    if step == 0 {
        return Ok((pid, pidfd));
    }
    super::child::reap_dead(pid, pidfd.as_ref());
    let err = io::Error::from_raw_os_error(errno);
    Err(match (step, errno) {
        (STEP_CHDIR, libc::ENOENT | libc::ENOTDIR) => CommandError::NoSuchDirectory {
            path: p.cwd.as_ref().map(|c| c.1.clone()).unwrap_or_default(),
        },
        (STEP_CHDIR, _) => CommandError::Io {
            context: format!(
                "cannot enter directory `{}` for `{}`",
                p.cwd.as_ref().map(|c| c.1.as_str()).unwrap_or_default(),
                p.display
            ),
            source: err,
        },
        (STEP_EXEC, libc::ENOENT) => CommandError::NoSuchProgram {
            program: p.program.clone(),
        },
        _ => spawn_error(p, err),
    })
}

fn spawn_error(p: &Prepared, source: io::Error) -> CommandError {
    CommandError::Spawn {
        command: p.display.clone(),
        source,
    }
}

/// Runs `f` with every signal blocked in this thread, so that no handler of ours
/// can run in a child that shares our memory.
fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: plain sigset manipulation on local storage.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let out = f();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut());
        out
    }
}

thread_local! {
    /// One stack per thread, reused: a thread is suspended while its child uses it.
    static STACK_TOP: Cell<*mut c_void> = const { Cell::new(ptr::null_mut()) };
}

/// The top of this thread's child stack (mapped once, with a guard page below).
fn child_stack() -> io::Result<*mut c_void> {
    STACK_TOP.with(|top| {
        if top.get().is_null() {
            let page = 4096;
            // SAFETY: a fresh anonymous mapping; we only hand out its top.
            let base = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    STACK_SIZE + page,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                    -1,
                    0,
                )
            };
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: the lowest page of our own mapping becomes the guard.
            unsafe { libc::mprotect(base, page, libc::PROT_NONE) };
            top.set(base.cast::<u8>().wrapping_add(STACK_SIZE + page).cast());
        }
        Ok(top.get())
    })
}

/// The child, between `clone` and `execve`. Only system calls: see the module docs.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive and untouched by the
    // suspended parent; the calls below are async-signal-safe system calls.
    unsafe {
        let a = arg as *mut ChildArgs;
        reset_signals_for_exec();
        if (*a).process_group && libc::setpgid(0, 0) != 0 {
            fail(a, STEP_SETUP);
        }
        // No command outlives a SIGKILLed interpreter. If the parent died before
        // the prctl, nobody is left to send the signal: stop now.
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            fail(a, STEP_SETUP);
        }
        if libc::getppid() != (*a).parent {
            libc::_exit(127);
        }
        let stdio = (*a).stdio;
        let mut target = 0;
        while target < 3 {
            let src = stdio[target as usize];
            let r = if src == TO_STDOUT {
                libc::dup2(1, 2)
            } else if src >= 0 {
                libc::dup2(src, target)
            } else {
                0
            };
            if r < 0 {
                fail(a, STEP_SETUP);
            }
            target += 1;
        }
        if !(*a).cwd.is_null() && libc::chdir((*a).cwd) != 0 {
            fail(a, STEP_CHDIR);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, ptr::null_mut());
        libc::execve((*a).path, (*a).argv, (*a).envp);
        fail(a, STEP_EXEC)
    }
}

/// Records why the child gives up, for the parent to read, and exits.
unsafe fn fail(a: *mut ChildArgs, step: c_int) -> ! {
    ptr::write_volatile(&mut (*a).errno, *libc::__errno_location());
    ptr::write_volatile(&mut (*a).failed_step, step);
    libc::_exit(127)
}

/// Every signal back to its default disposition (an ignored SIGPIPE or SIGINT
/// would otherwise survive the exec), with raw system calls: this runs in the
/// vfork child. The local stand-in for `signal::reset_for_exec`; switch to that
/// once it exists, provided it stays this vfork-safe.
unsafe fn reset_signals_for_exec() {
    // The kernel's `struct sigaction` with SIG_DFL, no flags and an empty mask is
    // all zeros on every architecture; 32 bytes covers the largest layout.
    let default = [0u64; 4];
    let mut sig = 1;
    while sig <= 64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                default.as_ptr(),
                ptr::null_mut::<c_void>(),
                8usize,
            );
        }
        sig += 1;
    }
}
