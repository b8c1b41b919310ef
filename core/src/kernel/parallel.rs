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

/// Calls `f(index, piece)` on each `len`-sized piece of `data`, in parallel where threads exist.
pub fn for_each_piece(data: &mut [f32], len: usize, f: impl Fn(usize, &mut [f32]) + Sync + Send) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        data.par_chunks_mut(len).enumerate().for_each(|(i, piece)| f(i, piece));
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
        data.par_chunks_mut(len).enumerate().map(|(i, piece)| f(i, piece)).collect()
    }
    #[cfg(target_arch = "wasm32")]
    data.chunks_mut(len).enumerate().map(|(i, piece)| f(i, piece)).collect()
}
