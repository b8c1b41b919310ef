//! The kernels' only contact with threads: rayon on native targets, a plain loop in wasm32
//! (the browser's CPU fallback runs on one thread).

/// How many pieces of work can run at once.
pub fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    return rayon::current_num_threads();
    #[cfg(target_arch = "wasm32")]
    return 1;
}

/// `f(0), …, f(parts − 1)`, in parallel where threads exist.
pub fn map_parts<T: Send>(parts: usize, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        (0..parts).into_par_iter().map(f).collect()
    }
    #[cfg(target_arch = "wasm32")]
    (0..parts).map(f).collect()
}

/// The element-wise sum of `parts` (the partial sums of one thread's share each), added in
/// the parts' order, so that the result does not depend on which thread finished first.
pub fn sum_of_parts(parts: Vec<Vec<f32>>) -> Vec<f32> {
    let mut parts = parts.into_iter();
    let mut sum = parts.next().expect("at least one part");
    for part in parts {
        sum.iter_mut().zip(part).for_each(|(s, p)| *s += p);
    }
    sum
}

/// Elements a task should cover at least: below this, rayon's per-task cost shows.
#[cfg(not(target_arch = "wasm32"))]
const MIN_TASK_LEN: usize = 1 << 14;

/// The most pieces of `len` elements that one task may take. Rayon otherwise stops splitting
/// after about four tasks per thread, so a thread that finishes first waits while the other works
/// through a quarter of the pieces alone (the ends of a convolution over 64 images, seen in a
/// per-thread profile); small pieces still go several to a task.
#[cfg(not(target_arch = "wasm32"))]
fn pieces_per_task(len: usize) -> usize {
    MIN_TASK_LEN.div_ceil(len.max(1))
}

/// Calls `f(index, piece)` on each `len`-sized piece of `data`, in parallel where threads exist.
pub fn for_each_piece<T: Send>(data: &mut [T], len: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        data.par_chunks_mut(len).enumerate().with_max_len(pieces_per_task(len)).for_each(|(i, piece)| f(i, piece));
    }
    #[cfg(target_arch = "wasm32")]
    data.chunks_mut(len).enumerate().for_each(|(i, piece)| f(i, piece));
}

/// `f(index, piece)` on each `len`-sized piece of `data`, in parallel where threads exist; the
/// results in the pieces' order.
pub fn map_pieces<T: Send>(data: &mut [f32], len: usize, f: impl Fn(usize, &mut [f32]) -> T + Sync + Send) -> Vec<T> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        data.par_chunks_mut(len).enumerate().with_max_len(pieces_per_task(len)).map(|(i, piece)| f(i, piece)).collect()
    }
    #[cfg(target_arch = "wasm32")]
    data.chunks_mut(len).enumerate().map(|(i, piece)| f(i, piece)).collect()
}
