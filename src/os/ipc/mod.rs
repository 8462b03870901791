//! Cross-process communication primitives over real OS objects (pipes, anonymous
//! shared memory, futexes). Bytes in, bytes out: serialization of values lives in
//! the runtime.
