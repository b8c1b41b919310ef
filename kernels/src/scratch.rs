//! Scratch buffers kept per thread between kernel calls: allocating them fresh for every call made
//! the kernels spend their time zeroing new pages. Each kernel has its own pair. Also the kernels'
//! outputs, allocated without zeroing when the kernel writes every value.

use std::cell::RefCell;
use std::mem::MaybeUninit;
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

/// Room for a kernel's output of `len` values that the kernel writes in full, without zeroing it
/// first: the zeroing (`vec![0.0; len]`) ran on one thread before every parallel section and
/// took 2 % of a ResNet step. In tests it holds NaN, so that a value the kernel fails to write
/// shows in the comparison with the reference.
pub fn output(len: usize) -> Vec<MaybeUninit<f32>> {
    #[cfg(not(test))]
    return Box::<[f32]>::new_uninit_slice(len).into_vec();
    #[cfg(test)]
    return vec![MaybeUninit::new(f32::NAN); len];
}

/// The values of an [`output`] once every one has been written.
///
/// # Safety
/// Every element of `out` has been written.
pub unsafe fn written(out: Vec<MaybeUninit<f32>>) -> Vec<f32> {
    let mut out = std::mem::ManuallyDrop::new(out);
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, the allocation is handed over as it is,
    // and the caller guarantees that every element is initialised.
    unsafe { Vec::from_raw_parts(out.as_mut_ptr().cast::<f32>(), out.len(), out.capacity()) }
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
