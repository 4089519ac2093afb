//! Pure business rules: no `worker`, no JS, no I/O. Everything here is tested natively.

pub mod time;
