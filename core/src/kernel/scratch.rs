//! Scratch buffers kept per thread between kernel calls: allocating them fresh for every call made
//! the kernels spend their time zeroing new pages. Each kernel has its own pair.

use std::cell::RefCell;
use std::thread::LocalKey;

/// A thread's pair of buffers; declare one with
/// `thread_local! { static NAME: Buffers = const { RefCell::new((Vec::new(), Vec::new())) }; }`.
pub type Buffers = RefCell<(Vec<f32>, Vec<f32>)>;

/// Runs `f` with this thread's two buffers of `key`, cut to `[first, second]` elements (grown
/// when shorter; contents unspecified).
pub fn with_buffers<R>(key: &'static LocalKey<Buffers>, [first, second]: [usize; 2], f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    key.with(|buffers| {
        let (a, b) = &mut *buffers.borrow_mut();
        for (buffer, len) in [(&mut *a, first), (&mut *b, second)] {
            if buffer.len() < len {
                buffer.resize(len, 0.0);
            }
        }
        f(&mut a[..first], &mut b[..second])
    })
}

/// Fills every rayon thread's buffers of `key` with NaN, so that a test sees any value a kernel
/// reads before writing it (a border, a column that is not an output).
#[cfg(test)]
pub fn poison(key: &'static LocalKey<Buffers>) {
    rayon::broadcast(|_| {
        key.with(|buffers| {
            let (a, b) = &mut *buffers.borrow_mut();
            for buffer in [a, b] {
                buffer.clear();
                buffer.resize(1 << 16, f32::NAN);
            }
        })
    });
}
