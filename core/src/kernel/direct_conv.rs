//! The forward pass and the weight gradient of a convolution as direct kernels for x86-64 CPUs
//! with AVX-512 or with AVX2 and FMA, on a zero-padded planar copy of each image.
//!
//! The wide grid of [`super::implicit_gemm`], with channel planes instead of channels-last
//! pixels: for stride 1 the padded image is `X[c][py·Wp + px]`, output position `(oy, ox)` is
//! `q = oy·Wp + ox`, and
//!
//! `Yw[o][q] = Σ_c Σ_ky Σ_kx w[o, c, ky, kx] · X[c][q + ky·Wp + kx]`.
//!
//! Sixteen consecutive `q` are one vector load from a plane, so a tile of 8 output channels × 3
//! vectors of 16 positions stays in 24 of the 32 registers: for every `(c, ky, kx)` the kernel
//! loads 3 vectors of input, broadcasts 8 weights and does 24 multiply-adds. Nothing is packed,
//! and each output channel's row of the wide grid is already its NCHW row (only the `Wp − Wo`
//! columns that are not outputs are dropped). The GEMM path does the same multiply-adds after
//! packing its operands and moving between layouts, and with the output channels as its rows it
//! fills gemm's 64-row micro-kernel only from 64 channels up: this kernel measured 1.3–1.8×
//! faster on 16 and 32 channels, equal or faster from 64 on (docs/performance.md). In the
//! browser (SIMD128, 16 registers) a tile of 4 channels × 2 vectors measured no faster than the
//! GEMM path, so wasm keeps the GEMM.
//!
//! **AVX2** (most laptops, AMD before Zen 4): the same kernels with 8-lane vectors and tiles for
//! 16 registers ([`Avx2`]: 6 channels × 2 vectors). On a Zen 3 machine they made ResNet-18's
//! training step 1.06–1.2× faster than the GEMM paths they replace (docs/performance.md). A tile
//! of 4 channels × 3 vectors, which needs all 16 registers, left the compiler shuffling and
//! spilling accumulators and ran at half that speed.
//!
//! **Strides** (the polyphase split): with stride `s`, tap `(ky, kx)` of output `(oy, ox)` reads
//! padded pixel `(s·oy + ky, s·ox + kx)`, which is pixel `(oy + ky/s, ox + kx/s)` of the *phase*
//! `(ky mod s, kx mod s)`, the sub-image of every `s`-th padded row and column from that
//! offset on. So each channel is stored as its phases' planes (`⌈Hp/s⌉ × ⌈Wp/s⌉` each, only the
//! phases some tap reads: one for a 1×1 shortcut), the wide grid's rows are a phase's rows, and
//! tap `(ky, kx)` is the offset `phase·⌈Hp/s⌉·⌈Wp/s⌉ + (ky/s)·⌈Wp/s⌉ + kx/s`: the same tile, on
//! consecutive positions again. Stride 1 is the case of one phase.
//!
//! **Narrow maps** (ResNet's 4×4 stage on CIFAR): several images side by side share one wide
//! grid ([`Layout`]), so a row holds enough positions to fill the vectors.
//!
//! **The weight gradient** ([`weight_grad`]) sums over the same wide grid with the output
//! gradient channels-last, `dw[o, c, tap] = Σ_q X[c][q + offset(tap)] · dY[q][o]`; it replaced the
//! implicit GEMM and im2col + GEMM there: a strided 3×3 layer's forward and backward 1.3× faster,
//! the stride-1 layers' within the noise (docs/performance.md).

use std::arch::x86_64::{
    __m256, __m512, _mm256_add_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_setzero_ps, _mm256_storeu_ps, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps,
    _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};
use std::cell::RefCell;

use super::gemm_conv::{ConvGeometry, valid_range};
use super::implicit_gemm::interleave;
use super::parallel::{for_each_piece, map_parts, sum_of_parts, threads};
use super::scratch::{Buffers, output, with_buffers, written};

/// Output maps narrower than this are computed several images side by side on one wide grid
/// (see [`Layout::images`]): alone, a 4×4 map fills 16 of the 32 positions of its grid.
const MIN_OUT_WIDTH: usize = 8;

/// Narrow maps with more input channels than this stay on the GEMM path, which measured faster
/// there (512 → 512 channels at 4×4: 44 against 56 ms; docs/performance.md): a tile's weights
/// (`C·kh·kw·8` values) and its group's padded planes then no longer fit the first-level cache.
const MAX_NARROW_CHANNELS: usize = 128;

/// Whether [`forward`] computes this convolution: any stride, maps at least [`MIN_OUT_WIDTH`]
/// wide with any number of channels (the RGB stem too: unlike a GEMM's inner size, the kernel's
/// loop over channels and taps costs nothing per iteration beyond its multiply-adds), narrower
/// ones up to [`MAX_NARROW_CHANNELS`], on a CPU that has the instructions.
pub(super) fn applies(g: &ConvGeometry) -> bool {
    (g.out_width() >= MIN_OUT_WIDTH || g.c_in <= MAX_NARROW_CHANNELS) && Instructions::best().is_some()
}

/// `y = conv2d(x, w)`, shape `[N, O, Ho, Wo]` flattened.
pub(super) fn forward(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    Instructions::best().expect("a CPU with AVX2 and FMA or AVX-512").forward(g, x, w)
}

/// The gradient of the loss with respect to `w`, given `dy`, shape `[O, C, kh, kw]` flattened.
pub(super) fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    Instructions::best().expect("a CPU with AVX2 and FMA or AVX-512").weight_grad(g, x, dy)
}

/// The vector instructions the kernels are compiled for, each with its own tile sizes (AVX2
/// has half the lanes and half the registers of AVX-512).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Instructions {
    Avx512,
    Avx2,
}

impl Instructions {
    /// The widest this CPU has, if any.
    fn best() -> Option<Self> {
        [Self::Avx512, Self::Avx2].into_iter().find(|isa| isa.available())
    }

    fn available(self) -> bool {
        match self {
            Self::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            Self::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
        }
    }

    fn forward(self, g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
        assert!(self.available(), "{self:?}");
        match self {
            Self::Avx512 => forward_with::<Avx512>(g, x, w),
            Self::Avx2 => forward_with::<Avx2>(g, x, w),
        }
    }

    fn weight_grad(self, g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
        assert!(self.available(), "{self:?}");
        match self {
            Self::Avx512 => weight_grad_with::<Avx512>(g, x, dy),
            Self::Avx2 => weight_grad_with::<Avx2>(g, x, dy),
        }
    }
}

/// One instruction set's vectors: the handful of operations the tiles use, the tile sizes that
/// fit its registers, and the two loops over tiles compiled for it.
///
/// # Safety
/// Every function here may be called only on a CPU that has the instructions
/// ([`Instructions::available`]).
trait Vectors {
    type V: Copy;
    /// `f32` lanes of a register.
    const LANES: usize;
    /// Output channels of a forward tile (a layer's channels are padded with zero weights to a
    /// multiple).
    const CHANNELS: usize;
    /// Vectors of positions of a full forward tile; the last tile of a wide grid may have fewer.
    const VECTORS: usize;

    unsafe fn zero() -> Self::V;
    unsafe fn load(from: *const f32) -> Self::V;
    unsafe fn store(to: *mut f32, v: Self::V);
    unsafe fn splat(x: f32) -> Self::V;
    /// `a·b + c`.
    unsafe fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;

    /// One tile group's forward over the whole wide grid: [`forward_tiles`].
    unsafe fn forward_tiles(l: &Layout, padded: &[f32], c_in: usize, weights: &[f32], wide: &mut [f32]);
    /// One group's share of the weight gradient, every output channel: [`gradient_tiles`] for
    /// each group of output channel vectors.
    unsafe fn gradient_tiles(l: &Layout, padded: &[f32], dy_wide: &[f32], padded_out: usize, pairs: usize, sums: &mut [f32]);
}

/// AVX-512: 32 registers of 16 lanes. A forward tile of 8 channels × 3 vectors keeps 24 sums in
/// registers; a gradient tile 4 vectors of output channels × 6 (channel, tap) pairs.
struct Avx512;

impl Vectors for Avx512 {
    type V = __m512;
    const LANES: usize = 16;
    const CHANNELS: usize = 8;
    const VECTORS: usize = 3;

    #[inline(always)]
    unsafe fn zero() -> __m512 {
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(from: *const f32) -> __m512 {
        unsafe { _mm512_loadu_ps(from) }
    }
    #[inline(always)]
    unsafe fn store(to: *mut f32, v: __m512) {
        unsafe { _mm512_storeu_ps(to, v) }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m512 {
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn mul_add(a: __m512, b: __m512, c: __m512) -> __m512 {
        unsafe { _mm512_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn add(a: __m512, b: __m512) -> __m512 {
        unsafe { _mm512_add_ps(a, b) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn forward_tiles(l: &Layout, padded: &[f32], c_in: usize, weights: &[f32], wide: &mut [f32]) {
        unsafe { forward_tiles::<Self, 8, 3>(l, padded, c_in, weights, wide) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn gradient_tiles(l: &Layout, padded: &[f32], dy_wide: &[f32], padded_out: usize, pairs: usize, sums: &mut [f32]) {
        let vectors = padded_out / Self::LANES;
        for first in (0..vectors).step_by(4) {
            unsafe {
                match vectors - first {
                    1 => gradient_tiles::<Self, 1, 8>(l, padded, dy_wide, padded_out, first, pairs, sums),
                    2 => gradient_tiles::<Self, 2, 8>(l, padded, dy_wide, padded_out, first, pairs, sums),
                    3 => gradient_tiles::<Self, 3, 8>(l, padded, dy_wide, padded_out, first, pairs, sums),
                    _ => gradient_tiles::<Self, 4, 6>(l, padded, dy_wide, padded_out, first, pairs, sums),
                }
            }
        }
    }
}

/// AVX2 with FMA: 16 registers of 8 lanes. A forward tile of 6 channels × 2 vectors keeps 12
/// sums, 2 inputs and a broadcast weight in 15 registers; a gradient tile 2 vectors × 6 pairs.
struct Avx2;

impl Vectors for Avx2 {
    type V = __m256;
    const LANES: usize = 8;
    const CHANNELS: usize = 6;
    const VECTORS: usize = 2;

    #[inline(always)]
    unsafe fn zero() -> __m256 {
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn load(from: *const f32) -> __m256 {
        unsafe { _mm256_loadu_ps(from) }
    }
    #[inline(always)]
    unsafe fn store(to: *mut f32, v: __m256) {
        unsafe { _mm256_storeu_ps(to, v) }
    }
    #[inline(always)]
    unsafe fn splat(x: f32) -> __m256 {
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    unsafe fn mul_add(a: __m256, b: __m256, c: __m256) -> __m256 {
        unsafe { _mm256_fmadd_ps(a, b, c) }
    }
    #[inline(always)]
    unsafe fn add(a: __m256, b: __m256) -> __m256 {
        unsafe { _mm256_add_ps(a, b) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn forward_tiles(l: &Layout, padded: &[f32], c_in: usize, weights: &[f32], wide: &mut [f32]) {
        unsafe { forward_tiles::<Self, 6, 2>(l, padded, c_in, weights, wide) }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn gradient_tiles(l: &Layout, padded: &[f32], dy_wide: &[f32], padded_out: usize, pairs: usize, sums: &mut [f32]) {
        let vectors = padded_out / Self::LANES;
        for first in (0..vectors).step_by(2) {
            unsafe {
                match vectors - first {
                    1 => gradient_tiles::<Self, 1, 8>(l, padded, dy_wide, padded_out, first, pairs, sums),
                    _ => gradient_tiles::<Self, 2, 6>(l, padded, dy_wide, padded_out, first, pairs, sums),
                }
            }
        }
    }
}

/// Sizes of one group of images' phase planes and wide output.
///
/// A group is [`Layout::images`] images side by side: each row of the padded group holds image
/// `i`'s padded row from column `i·pitch` on, and consecutive images share their zero columns
/// (`pitch = W + pad`, rounded up to the stride so that every image starts at the same phase).
/// Output `(oy, ox)` of image `i` is wide-grid position `oy·⌈Wg/s⌉ + i·pitch/s + ox`; its taps
/// read only image `i`'s pixels and the zeros around them. One image is the group of any map at
/// least [`MIN_OUT_WIDTH`] wide.
struct Layout {
    /// Images per group.
    images: usize,
    /// Columns between the starts of two images in a phase's rows.
    image_columns: usize,
    /// The phases some tap reads, `(row, column)` offsets below the stride.
    phases: Vec<[usize; 2]>,
    /// A phase's rows and columns (`⌈Hp/s⌉`, `⌈Wg/s⌉`); the columns are the wide grid's rows.
    phase_size: [usize; 2],
    /// The distance between two channels' planes: all their phases.
    plane: usize,
    /// Each tap's offset from a wide-grid position to its input in a channel's plane.
    offsets: Vec<usize>,
    /// The wide grid's `Ho·⌈Wg/s⌉` positions rounded up to whole vectors.
    wide: usize,
    /// The padded copy: every plane, plus what the last plane's last vector may read past its end.
    padded_len: usize,
}

fn layout<I: Vectors>(g: &ConvGeometry) -> Layout {
    let ([kh, kw], [sh, sw], [pad_h, pad_w]) = (g.kernel, g.stride, g.padding);
    let pitch = (g.width + pad_w).next_multiple_of(sw);
    let images = if g.out_width() >= MIN_OUT_WIDTH {
        1
    } else {
        // Enough images that a wide row fills a full tile's vectors, in as many groups as make
        // a multiple of the threads, so that each thread gets the same number of groups.
        let min_group_width = I::VECTORS * I::LANES;
        let groups = g.batch.div_ceil(min_group_width.div_ceil(pitch / sw)).next_multiple_of(threads());
        g.batch.div_ceil(groups).max(1)
    };
    let group_width = (images - 1) * pitch + g.width + 2 * pad_w;
    let phase_size = [(g.height + 2 * pad_h).div_ceil(sh), group_width.div_ceil(sw)];
    let phase_len = phase_size[0] * phase_size[1];
    let phase_columns = sw.min(kw);
    let phases: Vec<[usize; 2]> = (0..sh.min(kh)).flat_map(|a| (0..phase_columns).map(move |b| [a, b])).collect();
    let offsets: Vec<usize> = (0..kh)
        .flat_map(|ky| (0..kw).map(move |kx| ((ky % sh) * phase_columns + kx % sw) * phase_len + (ky / sh) * phase_size[1] + kx / sw))
        .collect();
    let plane = phases.len() * phase_len;
    let wide = (g.out_height() * phase_size[1]).next_multiple_of(I::LANES);
    let reach = offsets.iter().max().copied().unwrap_or(0);
    let padded_len = (g.c_in * plane).max((g.c_in - 1) * plane + wide + reach);
    Layout { images, image_columns: pitch / sw, phases, phase_size, plane, offsets, wide, padded_len }
}

/// The weight grouped by tile: `[O/channels][C][kh·kw][channels]`, zero for channels past `O`.
fn weight_tiles(g: &ConvGeometry, w: &[f32], channels: usize) -> Vec<f32> {
    let taps = g.kernel[0] * g.kernel[1];
    let mut tiles = vec![0.0; g.c_out.div_ceil(channels) * g.c_in * taps * channels];
    // One piece per tile and input channel, `[kh·kw][channels]`, on all threads: done on one,
    // the larger layers' rearrangements left the other thread idle (docs/performance.md).
    for_each_piece(&mut tiles, taps * channels, |row, out| {
        let (tile, c) = (row / g.c_in, row % g.c_in);
        for (j, o) in (tile * channels..g.c_out.min((tile + 1) * channels)).enumerate() {
            for (tap, &value) in w[(o * g.c_in + c) * taps..][..taps].iter().enumerate() {
                out[tap * channels + j] = value;
            }
        }
    });
    tiles
}

/// Writes a group of images `[n, C, H, W]` (`n` ≤ the layout's images) into `padded` as each
/// channel's phase planes of the zero-padded group (and zeros after the last one): row `i`,
/// column `j` of phase `(a, b)` is padded pixel `(s·i + a, s·j + b)` of the group.
fn pad_planes(g: &ConvGeometry, l: &Layout, images: &[f32], padded: &mut [f32]) {
    let ([pad_h, pad_w], [sh, sw], [rows, columns]) = (g.padding, g.stride, l.phase_size);
    let (in_plane, image_len) = (g.height * g.width, g.c_in * g.height * g.width);
    let (planes, rest) = padded.split_at_mut(g.c_in * l.plane);
    for (c, plane) in planes.chunks_exact_mut(l.plane).enumerate() {
        for (phase, &[a, b]) in plane.chunks_exact_mut(rows * columns).zip(&l.phases) {
            let (top, bottom) = valid_range(a, pad_h, sh, g.height, rows);
            // The columns of image 0; image `k`'s are `k·image_columns` further right.
            let (left, right) = valid_range(b, pad_w, sw, g.width, columns);
            // A phase with no valid column (a tiny image) is all padding: no row to copy.
            let (top, bottom) = if left == right { (bottom, bottom) } else { (top, bottom) };
            phase[..top * columns].fill(0.0);
            phase[bottom * columns..].fill(0.0);
            for (i, row) in phase.chunks_exact_mut(columns).enumerate().take(bottom).skip(top) {
                row.fill(0.0);
                for (k, image) in images.chunks_exact(image_len).enumerate() {
                    let values = &image[c * in_plane + (sh * i + a - pad_h) * g.width..][..g.width][sw * left + b - pad_w..];
                    let row = &mut row[k * l.image_columns..];
                    if sw == 1 {
                        row[left..right].copy_from_slice(&values[..right - left]);
                    } else {
                        row[left..right].iter_mut().zip(values.iter().step_by(sw)).for_each(|(p, &v)| *p = v);
                    }
                }
            }
        }
    }
    rest.fill(0.0);
}

thread_local! {
    /// One group's padded planes and one tile of channels' wide output.
    static SCRATCH: Buffers = const { RefCell::new((Vec::new(), Vec::new())) };
    /// One group's padded planes and its output gradient, channels-last on the wide grid.
    static GRADIENT_SCRATCH: Buffers = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// [`forward`] with the tiles of `I`.
fn forward_with<I: Vectors>(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    let l = layout::<I>(g);
    let width = l.phase_size[1];
    let weights = weight_tiles(g, w, I::CHANNELS);
    let tile_weights = g.c_in * l.offsets.len() * I::CHANNELS;
    let (image_len, out_height, out_width) = (g.c_in * g.height * g.width, g.out_height(), g.out_width());
    let out_plane = out_height * out_width;
    let mut y = output(g.output_len());
    for_each_piece(&mut y, l.images * g.c_out * out_plane, |group, out| {
        let first = group * l.images * image_len;
        let images = &x[first..(first + l.images * image_len).min(x.len())];
        with_buffers(&SCRATCH, [l.padded_len, I::CHANNELS * l.wide], |padded, wide| {
            pad_planes(g, &l, images, padded);
            for (tile_group, weights) in weights.chunks_exact(tile_weights).enumerate() {
                // SAFETY: `forward_with` is called only where the CPU has `I`'s instructions.
                unsafe { I::forward_tiles(&l, padded, g.c_in, weights, wide) };
                // Each channel's row of the wide grid holds every image's output row side by side.
                let channels = tile_group * I::CHANNELS..((tile_group + 1) * I::CHANNELS).min(g.c_out);
                for (k, image_out) in out.chunks_exact_mut(g.c_out * out_plane).enumerate() {
                    for (channel, wide_channel) in image_out[channels.start * out_plane..channels.end * out_plane].chunks_exact_mut(out_plane).zip(wide.chunks_exact(l.wide)) {
                        for (row, wide_row) in channel.chunks_exact_mut(out_width).zip(wide_channel.chunks(width)) {
                            row.write_copy_of_slice(&wide_row[k * l.image_columns..][..out_width]);
                        }
                    }
                }
            }
        })
    });
    // SAFETY: the tile groups cover every output channel, and each channel's rows every
    // position of every image of its group.
    unsafe { written(y) }
}

/// The weight gradient on the same layout: `dw[o, c, tap] = Σ_q X[c][q + offset(tap)] · dY[q][o]`
/// over every wide-grid position `q` of every group, where `dY` is the output gradient
/// channels-last on the wide grid (zero at positions that are no output). Vectors run over
/// output channels, so a tile of a few vectors of channels × a few (channel, tap) pairs sums
/// over positions in registers: per position it loads the tile's `dY` vectors, broadcasts one
/// input value per pair and does all the multiply-adds, as the forward tile does with the roles
/// of inputs and weights exchanged. The images are split between threads in equal shares, each
/// thread summing into its own copy, added in a fixed order (so results do not depend on timing).
fn weight_grad_with<I: Vectors>(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let l = layout::<I>(g);
    let pairs = g.c_in * l.offsets.len();
    let padded_out = g.c_out.next_multiple_of(I::LANES);
    let (image_len, out_plane) = (g.c_in * g.height * g.width, g.out_height() * g.out_width());
    let groups = g.batch.div_ceil(l.images);
    let parts = threads().clamp(1, groups.max(1));
    let partial_sums = map_parts(parts, |part| {
        // sums[(c·taps + tap)·O' + o], O' the output channels rounded up to whole vectors.
        let mut sums = vec![0.0; pairs * padded_out];
        with_buffers(&GRADIENT_SCRATCH, [l.padded_len, l.wide * padded_out], |padded, dy_wide| {
            for group in groups * part / parts..groups * (part + 1) / parts {
                let images = group * l.images..((group + 1) * l.images).min(g.batch);
                pad_planes(g, &l, &x[images.start * image_len..images.end * image_len], padded);
                channels_last(g, &l, &dy[images.start * g.c_out * out_plane..images.end * g.c_out * out_plane], padded_out, dy_wide);
                // SAFETY: `weight_grad_with` is called only where the CPU has `I`'s instructions.
                unsafe { I::gradient_tiles(&l, padded, dy_wide, padded_out, pairs, &mut sums) };
            }
        });
        sums
    });
    let sums = sum_of_parts(partial_sums);
    // dw[o, c, tap] = sums[(c·taps + tap)·O' + o], one piece of C·taps values per output channel.
    let mut dw = vec![0.0; g.weight_len()];
    for_each_piece(&mut dw, pairs, |o, out| out.iter_mut().enumerate().for_each(|(pair, value)| *value = sums[pair * padded_out + o]));
    dw
}

/// Writes a group's output gradient `[n, O, Ho, Wo]` as `dy_wide[q·O' + o]` on the group's wide
/// grid (zero at positions that are no output and for channels `O..O'`).
fn channels_last(g: &ConvGeometry, l: &Layout, dy: &[f32], padded_out: usize, dy_wide: &mut [f32]) {
    let (out_width, out_plane, row) = (g.out_width(), g.out_height() * g.out_width(), l.phase_size[1]);
    dy_wide.fill(0.0);
    for (k, image) in dy.chunks_exact(g.c_out * out_plane).enumerate() {
        for oy in 0..g.out_height() {
            let first = oy * row + k * l.image_columns;
            interleave(&image[oy * out_width..], out_plane, g.c_out, out_width, &mut dy_wide[first * padded_out..], padded_out);
        }
    }
}

/// Adds one group's share to `sums` for output channels `first_vector·L..(first_vector + OV)·L`
/// (`L` lanes), all `pairs` (channel, tap) pairs, `T` at a time.
///
/// # Safety
/// The CPU has `I`'s instructions.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn gradient_tiles<I: Vectors, const OV: usize, const T: usize>(l: &Layout, padded: &[f32], dy_wide: &[f32], padded_out: usize, first_vector: usize, pairs: usize, sums: &mut [f32]) {
    let taps = l.offsets.len();
    let reach = l.offsets.iter().max().copied().unwrap_or(0);
    let channel_first = first_vector * I::LANES;
    assert!(pairs > 0 && (pairs / taps - 1) * l.plane + l.wide + reach <= padded.len());
    assert!((l.wide - 1) * padded_out + channel_first + OV * I::LANES <= dy_wide.len() && sums.len() >= pairs * padded_out);
    for first_pair in (0..pairs).step_by(T) {
        // A last tile with fewer pairs repeats the last one and keeps only its own.
        let pair = |t: usize| (first_pair + t).min(pairs - 1);
        let inputs: [*const f32; T] = std::array::from_fn(|t| {
            let (c, tap) = (pair(t) / taps, pair(t) % taps);
            // SAFETY: inside `padded` for every position below `l.wide`, by the assertion above.
            unsafe { padded.as_ptr().add(c * l.plane + l.offsets[tap]) }
        });
        // SAFETY (all vector operations and pointer reads below): the CPU has the instructions,
        // and the reads are inside the slices, by the assertions above.
        let mut tile = [[unsafe { I::zero() }; OV]; T];
        let mut gradient = unsafe { dy_wide.as_ptr().add(channel_first) };
        for q in 0..l.wide {
            let d: [I::V; OV] = std::array::from_fn(|v| unsafe { I::load(gradient.add(v * I::LANES)) });
            for (sums_t, input) in tile.iter_mut().zip(inputs) {
                let x = unsafe { I::splat(*input.add(q)) };
                for (sum, d) in sums_t.iter_mut().zip(d) {
                    *sum = unsafe { I::mul_add(d, x, *sum) };
                }
            }
            gradient = unsafe { gradient.add(padded_out) };
        }
        for (t, sums_t) in tile.iter().enumerate().take(pairs - first_pair) {
            for (v, sum) in sums_t.iter().enumerate() {
                let at = &mut sums[(first_pair + t) * padded_out + channel_first + v * I::LANES..][..I::LANES];
                unsafe { I::store(at.as_mut_ptr(), I::add(I::load(at.as_ptr()), *sum)) };
            }
        }
    }
}

/// One tile group's `CH` output channels over the whole wide grid, `V` vectors of positions at a
/// time (fewer at the end).
///
/// # Safety
/// The CPU has `I`'s instructions.
#[inline(always)]
unsafe fn forward_tiles<I: Vectors, const CH: usize, const V: usize>(l: &Layout, padded: &[f32], c_in: usize, weights: &[f32], wide: &mut [f32]) {
    debug_assert_eq!((CH, V), (I::CHANNELS, I::VECTORS));
    let mut start = 0;
    while start < l.wide {
        // SAFETY: the CPU has the instructions; `tile` checks its bounds.
        start += unsafe {
            match ((l.wide - start) / I::LANES).min(V) {
                1 => tile::<I, CH, 1>(padded, l.plane, c_in, &l.offsets, weights, start, wide, l.wide),
                2 => tile::<I, CH, 2>(padded, l.plane, c_in, &l.offsets, weights, start, wide, l.wide),
                _ => tile::<I, CH, V>(padded, l.plane, c_in, &l.offsets, weights, start, wide, l.wide),
            }
        };
    }
}

/// `wide[j·wide_len + q] = Σ_c Σ_tap weights[(c·taps + tap)·CH + j] · padded[c·plane + q + offsets[tap]]`
/// for the tile's `V·L` positions `q` from `start` on (`L` lanes) and its channels `j`. Returns
/// `V·L`.
///
/// # Safety
/// The CPU has `I`'s instructions.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<I: Vectors, const CH: usize, const V: usize>(padded: &[f32], plane: usize, c_in: usize, offsets: &[usize], weights: &[f32], start: usize, wide: &mut [f32], wide_len: usize) -> usize {
    let reach = offsets.iter().max().copied().unwrap_or(0);
    assert!(c_in > 0 && (c_in - 1) * plane + start + V * I::LANES + reach <= padded.len());
    assert!(weights.len() >= c_in * offsets.len() * CH && (CH - 1) * wide_len + start + V * I::LANES <= wide.len());
    // SAFETY (all vector operations and pointer reads and writes below): the CPU has the
    // instructions, and the pointers stay inside the slices, by the assertions above.
    let mut sums = [[unsafe { I::zero() }; V]; CH];
    let mut weight = weights.as_ptr();
    for c in 0..c_in {
        let channel = unsafe { padded.as_ptr().add(c * plane + start) };
        for &offset in offsets {
            let inputs: [I::V; V] = std::array::from_fn(|v| unsafe { I::load(channel.add(offset + v * I::LANES)) });
            for (j, channel_sums) in sums.iter_mut().enumerate() {
                let w = unsafe { I::splat(*weight.add(j)) };
                for (sum, input) in channel_sums.iter_mut().zip(inputs) {
                    *sum = unsafe { I::mul_add(input, w, *sum) };
                }
            }
            weight = unsafe { weight.add(CH) };
        }
    }
    for (j, channel_sums) in sums.iter().enumerate() {
        for (v, sum) in channel_sums.iter().enumerate() {
            unsafe { I::store(wide.as_mut_ptr().add(j * wide_len + start + v * I::LANES), *sum) };
        }
    }
    V * I::LANES
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::assert_slices_close as assert_close;
    use crate::kernel::gemm_conv::tests::{assert_weight_gradient, reference, stride_one_geometries, test_values};
    use crate::kernel::scratch::poison;

    /// Strided shapes: ResNet's 3×3 and 1×1 downsampling layers at odd and even sizes, strides
    /// larger than the kernel (phases no tap reads), stride 3, different strides per axis, and
    /// an image so small that some phase rows and columns are all padding.
    fn strided_geometries() -> Vec<ConvGeometry> {
        let g = |batch, c_in, height, width, c_out, kernel, stride, padding| ConvGeometry { batch, c_in, height, width, c_out, kernel, stride, padding };
        vec![
            g(2, 3, 16, 16, 9, [3, 3], [2, 2], [1, 1]),
            g(2, 5, 17, 15, 8, [3, 3], [2, 2], [1, 1]),
            g(3, 4, 16, 16, 6, [1, 1], [2, 2], [0, 0]),
            g(1, 3, 19, 20, 5, [5, 5], [3, 3], [2, 2]),
            g(2, 2, 9, 18, 4, [3, 2], [1, 2], [1, 0]),
            g(1, 2, 3, 40, 3, [3, 3], [2, 2], [2, 1]),
            g(1, 2, 2, 34, 3, [1, 1], [3, 2], [0, 0]),
        ]
    }

    /// Maps narrower than [`MIN_OUT_WIDTH`], computed several images to a wide grid: ResNet's
    /// 4×4 layers and their downsampling, no padding, wide padding, a last group with fewer
    /// images, strides.
    fn narrow_geometries() -> Vec<ConvGeometry> {
        let g = |batch, c_in, height, width, c_out, kernel, stride, padding| ConvGeometry { batch, c_in, height, width, c_out, kernel, stride, padding };
        let geometries = vec![
            g(7, 3, 4, 4, 9, [3, 3], [1, 1], [1, 1]),
            g(13, 5, 8, 8, 8, [3, 3], [2, 2], [1, 1]),
            g(6, 4, 8, 8, 3, [1, 1], [2, 2], [0, 0]),
            g(9, 3, 6, 6, 4, [3, 3], [1, 1], [0, 0]),
            g(5, 2, 4, 3, 5, [5, 5], [1, 1], [2, 2]),
            g(11, 2, 7, 5, 3, [3, 2], [2, 1], [1, 0]),
            g(1, 3, 4, 4, 2, [3, 3], [1, 1], [1, 1]),
        ];
        assert!(geometries.iter().all(|g| (layout::<Avx512>(g).images > 1 && layout::<Avx2>(g).images > 1) || g.batch == 1));
        geometries
    }

    /// The instruction sets this CPU has; each one's tiles are tested (an AVX-512 machine tests
    /// the AVX2 ones too).
    fn available_instructions() -> Vec<Instructions> {
        let available: Vec<_> = [Instructions::Avx512, Instructions::Avx2].into_iter().filter(|isa| isa.available()).collect();
        if available.is_empty() {
            eprintln!("skipped: this CPU has neither AVX-512 nor AVX2 with FMA");
        }
        available
    }

    /// Entry `i` of the weight gradient is ⟨dy, conv(x, eᵢ)⟩; every geometry the forward takes,
    /// output channel counts that leave every size of last tile, and (channel, tap) pairs that
    /// are no multiple of a tile's.
    #[test]
    fn weight_gradient_is_the_partial_derivative() {
        let wide_channels = |c_out| ConvGeometry { batch: 3, c_in: 5, height: 6, width: 7, c_out, kernel: [3, 3], stride: [1, 1], padding: [1, 1] };
        for isa in available_instructions() {
            let geometries = stride_one_geometries().into_iter().chain(strided_geometries()).chain(narrow_geometries()).chain([9, 17, 40, 70].map(wide_channels));
            for g in geometries {
                poison(&GRADIENT_SCRATCH);
                let (x, dy) = (test_values(g.input_len(), 3), test_values(g.output_len(), 4));
                assert_weight_gradient(&g, &x, &dy, &isa.weight_grad(&g, &x, &dy));
            }
        }
    }

    #[test]
    fn forward_matches_the_definition() {
        for isa in available_instructions() {
            for g in stride_one_geometries().into_iter().chain(strided_geometries()).chain(narrow_geometries()) {
                poison(&SCRATCH);
                let (x, w) = (test_values(g.input_len(), 1), test_values(g.weight_len(), 2));
                assert_close(&isa.forward(&g, &x, &w), &reference(&g, &x, &w), &format!("{isa:?} {g:?}"));
            }
        }
    }
}
