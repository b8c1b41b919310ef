//! The forward pass and the weight gradient of a convolution as direct kernels for x86-64 CPUs
//! with AVX-512 or with AVX2 and FMA, on a zero-padded planar copy of each image.
//!
//! The wide grid of [`super::implicit_gemm`], with channel planes instead of channels-last
//! pixels: for stride 1 the padded image is `X[c][py·Wp + px]`, output position `(oy, ox)` is
//! `q = oy·Wp + ox`, and
//!
//! `Yw[o][q] = Σ_c Σ_ky Σ_kx w[o, c, ky, kx] · X[c][q + ky·Wp + kx]`.
//!
//! On small maps the `Wp − Wo` padding columns of each row are a fifth of the grid; there the
//! forward puts the images of a group in the lanes of its vectors instead, so that a vector is one
//! output position of 16 images and a tile takes only the taps that read a pixel there, or, with
//! too few images, stores one plane per column tap ([`Layout`]).
//!
//! Sixteen consecutive `q` are one vector load from a plane, so a tile of 8 output channels × 3
//! vectors of 16 positions stays in 24 of the 32 registers: for every `(c, ky, kx)` the kernel
//! loads 3 vectors of input, broadcasts 8 weights and does 24 multiply-adds. Nothing is packed,
//! and each output channel's row of the wide grid is already its NCHW row (only the columns that
//! are not outputs are dropped). The GEMM path does the same multiply-adds after
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
//! **Strides** (a polyphase split of the rows) and **narrow maps** (several images side by side
//! on one wide grid): see [`Layout`].
//!
//! **The weight gradient** ([`weight_grad`]) sums over the same wide grid with the output
//! gradient channels-last, `dw[o, c, tap] = Σ_q X[c][q + offset(tap)] · dY[q][o]`, each tap's
//! sum over only the outputs where that tap reads a pixel; it replaced the implicit GEMM and
//! im2col + GEMM there: a strided 3×3 layer's forward and backward 1.3× faster, the stride-1
//! layers' within the noise (docs/performance.md).

mod avx2;
mod avx512;

use std::cell::RefCell;
use std::mem::MaybeUninit;

use avx2::Avx2;
use avx512::Avx512;

use super::geometry::{ConvGeometry, interleave, valid_range};
use crate::parallel::{for_each_piece, map_parts, sum_of_parts, threads};
use crate::scratch::{Buffers, output, with_buffers, written};

/// Output maps narrower than this are computed several images side by side on one wide grid
/// (see [`Layout::images`]), so that a row fills a tile's vectors. Grouping 8×8 maps too (six
/// images to a row of 48) measured 1.02× faster on the 3×3 layers' forward and backward and twice
/// as slow on the 1×1 layers' forward (docs/performance.md).
const MIN_OUT_WIDTH: usize = 8;

/// The forward's planes are per column tap, not shared, where more than one in this many of a
/// shared plane's columns would be padding (16×16 maps and narrower: 2 of 18). At 32×32 with 64
/// channels the three copies measured 10 % slower than the 2 padding columns of 34 they save, at
/// 16×16 with 128 channels 7 % faster. The weight gradient skips padding columns itself and keeps
/// the shared planes, which measured faster there at 8×8 too (docs/performance.md).
const COLUMN_TAP_PLANES_FROM: usize = 10;

/// The forward puts a group's images in the lanes of its vectors ([`Planes::ImageLanes`]) on maps
/// at most this wide: every lane of a vector is then the same output position of another image,
/// so a tile takes only the taps that read a pixel there (on a 4×4 map with a 3×3 kernel 100 of
/// 144 products, on 8×8 484 of 576), and no padding column is computed. A 1×1 layer reads no
/// padding and keeps the shared planes: with image lanes its forward measured 1.5× slower. At
/// 16×16 image lanes measured no faster, and 1.5× slower on the strided layer from 32×32
/// (docs/performance.md).
const IMAGE_LANES_UP_TO: usize = 8;

/// Images per group with image lanes, at most: their planes grow with them.
const MAX_IMAGE_LANES: usize = 64;

/// Bytes of one channel's planes with image lanes, at most: a tile reads every tap's pixel from
/// each channel, so the planes of a block of channels must stay in the second-level cache. At
/// 16 KB the 8×8 maps take 32 images, the 4×4 ones 64; a strided layer from 16×16 with 64 images
/// (83 KB a channel) measured 1.25× slower than without image lanes (docs/performance.md).
const LANE_PLANES_BUDGET: usize = 16 << 10;

/// Bytes of a group's planes that the forward sums over in one block of input channels ([`input_block`]):
/// half the second-level cache of the AMD and Intel cores measured (1–2 MB).
#[cfg(not(test))]
const PLANES_BUDGET: usize = 512 << 10;
/// Small enough that the tests' geometries take both paths.
#[cfg(test)]
const PLANES_BUDGET: usize = 1 << 12;

/// Whether [`forward`] and [`weight_grad`] compute convolutions: any shape (the RGB stem too:
/// unlike a GEMM's inner size, the kernel's loop over channels and taps costs nothing per
/// iteration beyond its multiply-adds), on a CPU that has the instructions. The 4×4 layers with
/// 512 channels stayed on the GEMM path while the kernel computed padding columns and read a
/// group's planes from beyond the second-level cache; without either the forward measured 1.1×
/// faster than the GEMM there, the weight gradient even (docs/performance.md).
pub(super) fn applies() -> bool {
    Instructions::best().is_some()
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
    /// Output channels and vectors of images of a forward tile with image lanes.
    const LANE_CHANNELS: usize;
    const LANE_VECTORS: usize;

    unsafe fn zero() -> Self::V;
    unsafe fn load(from: *const f32) -> Self::V;
    unsafe fn store(to: *mut f32, v: Self::V);
    unsafe fn splat(x: f32) -> Self::V;
    /// `a·b + c`.
    unsafe fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;

    /// One tile group's forward over the whole wide grid: [`forward_tiles`].
    unsafe fn forward_tiles(l: &Layout, padded: &[f32], c_in: usize, weights: &[f32], wide: &mut [f32], accumulate: bool);
    /// One group's share of the weight gradient, every output channel: [`gradient_tiles`] for
    /// each group of output channel vectors.
    unsafe fn gradient_tiles(l: &Layout, padded: &[f32], dy_wide: &[f32], padded_out: usize, group: Group, sums: &mut [f32]);
}

/// Sizes of one group of images' planes and wide output.
///
/// **Shared planes** (the weight gradient; the forward where neither of the others applies, as
/// on maps wider than 16 and in 1×1 layers): each input channel is its zero-padded plane,
/// `X[c][py·Wp + px]`; output `(oy, ox)` is wide-grid position `q = oy·Wp + ox` and tap
/// `(ky, kx)` reads `X[c][q + ky·Wp + kx]`. The `Wp − Wo` columns of each row that are no output
/// are computed and dropped by the forward, skipped by the gradient.
///
/// **Image lanes** (the forward of layers with more than one tap on 8×8 maps and narrower, where
/// a group holds at least a vector of images, [`IMAGE_LANES_UP_TO`]): a plane is
/// `X[c][py][px][k]`, the group's image `k` in the lanes of padded pixel `(py, px)`, so output
/// `(oy, ox)` of all the group's images is `q = (oy·Wo + ox)·n` and tap `(ky, kx)` reads
/// `X[c][oy + ky][ox + kx][..]`. A tile is one or two vectors of one output position and takes
/// only the taps that read a pixel there: no padding columns and no product of padding (on an 8×8
/// map with a 3×3 kernel 484 of 576 products, on 4×4 100 of 144). Strides split the padded
/// pixels into phases as below.
///
/// **Planes per column tap** (the forward on 16×16 maps and narrower without image lanes,
/// [`COLUMN_TAP_PLANES_FROM`]): `P_kx[i][k·Wo + j]` is padded pixel `(i, j + kx)` of image `k` of
/// the group, so a plane has the output's width and tap `(ky, kx)` of position `q = oy·(n·Wo) +
/// k·Wo + ox` is `P_kx[q + ky·n·Wo]`. The wide grid is then the output itself, row by row and image
/// by image: no padding columns (at 8×8, 64 positions instead of 80), for `kw` copies of the input
/// instead of one.
///
/// **Strides** (a polyphase split): tap `(ky, kx)` of output `(oy, ox)` reads padded pixel
/// `(s·oy + ky, s·ox + kx)`, which is row `oy + ky/s` of the *row phase* `ky mod s` (every `s`-th
/// padded row from that offset on). Shared planes split the columns the same way (phases
/// `(ky mod s, kx mod s)` of `⌈Hp/s⌉ × ⌈Wp/s⌉`, only those some tap reads: one for a 1×1
/// shortcut; tap offset `(ky/s)·⌈Wp/s⌉ + kx/s` in its phase); planes per column tap hold
/// `P_{a,kx}[i][k·Wo + j]` = padded pixel `(s·i + a, s·j + kx)`. Either way a tap is one offset from
/// the wide-grid position: the same tile on consecutive positions. Stride 1 is one phase.
///
/// **Narrow maps** (ResNet's 4×4 stage on CIFAR): a group of several images side by side makes
/// a row of the wide grid at least a full tile long (with shared planes, consecutive images share
/// their zero columns); one image is the group of any map at least [`MIN_OUT_WIDTH`] wide. Where
/// a row is a whole number of vectors, each forward tile then lies in one output row and leaves
/// out the taps that read only padding there: the top row's `ky = 0` and the bottom row's
/// `ky = 2` of a 3×3 kernel, a sixth of the products at 4×4.
struct Layout {
    /// Images per group.
    images: usize,
    /// Columns between the starts of two images in a plane's rows (image lanes: 0, every image
    /// has the same columns).
    image_columns: usize,
    /// How the planes hold the group's images.
    planes: Planes,
    /// Output channels of a forward tile.
    channels: usize,
    /// Values per pixel of a plane: the group's images rounded up to whole vectors with image
    /// lanes, else 1.
    lanes: usize,
    /// Each plane's row phase and column tap or phase, `(a, b)`.
    phases: Vec<[usize; 2]>,
    /// A plane's rows and columns (`⌈Hp/s⌉`, `n·Wo`); the columns are the wide grid's rows.
    phase_size: [usize; 2],
    /// The distance between two channels' planes: all their phases.
    plane: usize,
    /// Each tap's offset from a wide-grid position to its input in a channel's planes.
    offsets: Vec<usize>,
    /// The largest of `offsets`: how far past a position its taps read.
    reach: usize,
    /// Each tap's output rows and columns (of one image) whose input is a pixel, not padding.
    valid: Vec<[std::ops::Range<usize>; 2]>,
    /// The wide grid's `Ho·row` positions and what the last tile computes past them.
    wide: usize,
    /// The forward's tiles of the wide grid, in order.
    tiles: Vec<Tile>,
    /// The padded copy: every plane, plus what the last plane's last vector may read past its end.
    padded_len: usize,
}

/// How a group's planes hold its images ([`Layout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Planes {
    /// One zero-padded plane per channel (and phase), shared by the taps.
    Shared,
    /// One plane per column tap, as wide as the output.
    ColumnTaps,
    /// The images of a group are a pixel's lanes.
    ImageLanes,
}

/// The forward's planes for `g`: image lanes where the maps are small and every group holds at
/// least a vector of images ([`IMAGE_LANES_UP_TO`]), else planes per column tap where they pay
/// ([`COLUMN_TAP_PLANES_FROM`]), else shared ones.
fn forward_planes<I: Vectors>(g: &ConvGeometry) -> Planes {
    let one_tap = g.kernel == [1, 1];
    if !one_tap && g.out_width() <= IMAGE_LANES_UP_TO && lane_images::<I>(g) >= I::LANES {
        Planes::ImageLanes
    } else if column_taps_pay(g) {
        Planes::ColumnTaps
    } else {
        Planes::Shared
    }
}

/// Whether the forward's planes are per column tap ([`COLUMN_TAP_PLANES_FROM`]).
fn column_taps_pay(g: &ConvGeometry) -> bool {
    // One image's shared planes have `⌈(W + 2·pad)/s⌉` columns.
    let alone = (g.width + 2 * g.padding[1]).div_ceil(g.stride[1]);
    (alone - g.out_width()) * COLUMN_TAP_PLANES_FROM > alone
}

/// Images per group with image lanes: at most [`MAX_IMAGE_LANES`] and as many as keep a channel's
/// planes within [`LANE_PLANES_BUDGET`], in as many groups as make a multiple of the threads, so
/// that each thread gets the same number of groups.
fn lane_images<I: Vectors>(g: &ConvGeometry) -> usize {
    let ([kh, kw], [sh, sw], [pad_h, pad_w]) = (g.kernel, g.stride, g.padding);
    // One image's values in a channel's planes: the phases some tap reads.
    let image_values = sh.min(kh) * sw.min(kw) * (g.height + 2 * pad_h).div_ceil(sh) * (g.width + 2 * pad_w).div_ceil(sw);
    let most = (LANE_PLANES_BUDGET / size_of::<f32>() / image_values).clamp(1, MAX_IMAGE_LANES);
    let groups = g.batch.div_ceil(most).next_multiple_of(threads());
    g.batch.div_ceil(groups)
}

/// The layout of `g`'s forward or weight gradient with the given planes.
fn layout<I: Vectors>(g: &ConvGeometry, planes: Planes) -> Layout {
    let ([kh, kw], [sh, sw], [pad_h, pad_w]) = (g.kernel, g.stride, g.padding);
    let (out_height, out_width) = (g.out_height(), g.out_width());
    // Shared planes: an image's columns from the start of its padding to the next image's (which
    // share their zero columns).
    let shared_pitch = (g.width + pad_w).next_multiple_of(sw);
    let full_tile = I::VECTORS * I::LANES;
    let (images, image_columns, lanes) = match planes {
        Planes::ImageLanes => {
            let images = lane_images::<I>(g);
            (images, 0, images.next_multiple_of(I::LANES))
        }
        Planes::Shared | Planes::ColumnTaps => {
            let image_columns = if planes == Planes::ColumnTaps { out_width } else { shared_pitch / sw };
            let images = if out_width >= MIN_OUT_WIDTH {
                1
            } else {
                // Enough images that a wide row fills a full tile's vectors, in as many groups
                // as make a multiple of the threads, so that each thread gets the same number.
                let groups = g.batch.div_ceil(full_tile.div_ceil(image_columns)).next_multiple_of(threads());
                g.batch.div_ceil(groups).max(1)
            };
            (images, image_columns, 1)
        }
    };
    let rows = (g.height + 2 * pad_h).div_ceil(sh);
    // Per row phase: one plane per column tap, or the column phases some tap reads.
    let (plane_columns, row) = match planes {
        Planes::ColumnTaps => (kw, images * out_width),
        Planes::Shared => (sw.min(kw), ((images - 1) * shared_pitch + g.width + 2 * pad_w).div_ceil(sw)),
        Planes::ImageLanes => (sw.min(kw), (g.width + 2 * pad_w).div_ceil(sw)),
    };
    let phase_size = [rows, row];
    let phase_len = rows * row * lanes;
    let phases: Vec<[usize; 2]> = (0..sh.min(kh)).flat_map(|a| (0..plane_columns).map(move |b| [a, b])).collect();
    let offsets: Vec<usize> = (0..kh)
        .flat_map(|ky| (0..kw).map(move |kx| if planes == Planes::ColumnTaps { [ky, kx, 0] } else { [ky, kx % sw, kx / sw] }))
        .map(|[ky, b, column]| ((ky % sh) * plane_columns + b) * phase_len + ((ky / sh) * row + column) * lanes)
        .collect();
    let valid: Vec<_> = (0..kh)
        .flat_map(|ky| (0..kw).map(move |kx| [(ky, pad_h, sh, g.height, out_height), (kx, pad_w, sw, g.width, out_width)]))
        .map(|axes| {
            axes.map(|(tap, pad, stride, size, out_size)| {
                let (lo, hi) = valid_range(tap, pad, stride, size, out_size);
                lo..hi
            })
        })
        .collect();
    let plane = phases.len() * phase_len;
    let tiles = match planes {
        Planes::ImageLanes => lane_tiles(out_height, out_width, row, lanes, I::LANE_VECTORS, I::LANES, &valid),
        _ => tiles(row, out_height, images > 1 && row >= full_tile && row % I::LANES == 0, full_tile, I::LANES, &valid),
    };
    let wide = tiles.iter().map(|t| t.start + t.vectors * I::LANES).max().unwrap_or(0);
    let reach = offsets.iter().max().copied().unwrap_or(0);
    let input_end = tiles.iter().map(|t| t.input + t.vectors * I::LANES).max().unwrap_or(0);
    let padded_len = (g.c_in * plane).max((g.c_in - 1) * plane + input_end + reach);
    let channels = if planes == Planes::ImageLanes { I::LANE_CHANNELS } else { I::CHANNELS };
    Layout { images, image_columns, planes, channels, lanes, phases, phase_size, plane, offsets, reach, valid, wide, tiles, padded_len }
}

/// Positions `start..start + vectors·L` of the wide grid (`L` lanes), what they read from
/// `input` on in a channel's planes, and the taps that read a pixel for one of them.
struct Tile {
    start: usize,
    input: usize,
    vectors: usize,
    taps: Vec<usize>,
}

/// The wide grid of `out_height` rows of `row` positions in tiles of at most `full_tile`
/// positions: `by_row` (rows of whole vectors), each row on its own, else the whole grid in one
/// run. No two tiles overlap: the forward adds a block of input channels' sums to the last.
fn tiles(row: usize, out_height: usize, by_row: bool, full_tile: usize, lanes: usize, valid: &[[std::ops::Range<usize>; 2]]) -> Vec<Tile> {
    let runs: Vec<std::ops::Range<usize>> =
        if by_row { (0..out_height).map(|oy| oy * row..(oy + 1) * row).collect() } else { std::iter::once(0..out_height * row).collect() };
    let mut tiles = Vec::new();
    for run in runs {
        let mut start = run.start;
        while start < run.end {
            let len = (run.end - start).min(full_tile).next_multiple_of(lanes);
            // The output rows the tile covers, and the taps that read a pixel in one of them.
            let rows = start / row..((start + len - 1) / row + 1).min(out_height);
            let taps = (0..valid.len())
                .filter(|&tap| valid[tap][0].start < rows.end && rows.start < valid[tap][0].end && !valid[tap][1].is_empty())
                .collect();
            tiles.push(Tile { start, input: start, vectors: len / lanes, taps });
            start += len;
        }
    }
    tiles
}

/// Image lanes' tiles: each output `(oy, ox)` is `lanes` positions of the wide grid from
/// `(oy·Wo + ox)·lanes` on, one per image, which read from `(oy·columns + ox)·lanes` on in the
/// planes; its tiles of at most `vectors` vectors take only the taps that read a pixel there.
fn lane_tiles(
    out_height: usize,
    out_width: usize,
    columns: usize,
    lanes: usize,
    vectors: usize,
    lane_width: usize,
    valid: &[[std::ops::Range<usize>; 2]],
) -> Vec<Tile> {
    let mut tiles = Vec::new();
    for oy in 0..out_height {
        for ox in 0..out_width {
            let taps: Vec<usize> = (0..valid.len()).filter(|&tap| valid[tap][0].contains(&oy) && valid[tap][1].contains(&ox)).collect();
            for first in (0..lanes / lane_width).step_by(vectors) {
                let (start, input) = ((oy * out_width + ox) * lanes + first * lane_width, (oy * columns + ox) * lanes + first * lane_width);
                tiles.push(Tile { start, input, vectors: vectors.min(lanes / lane_width - first), taps: taps.clone() });
            }
        }
    }
    tiles
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
/// channel's planes (and zeros after the last one): column `k·Wo + j` of row `i` of plane
/// `(a, kx)` is padded pixel `(s·i + a, s·j + kx)` of image `k`.
fn pad_planes(g: &ConvGeometry, l: &Layout, images: &[f32], padded: &mut [f32]) {
    if l.planes == Planes::ImageLanes {
        return pad_lanes(g, l, images, padded);
    }
    let ([pad_h, pad_w], [sh, sw], [rows, columns]) = (g.padding, g.stride, l.phase_size);
    let (in_plane, image_len) = (g.height * g.width, g.c_in * g.height * g.width);
    // The columns of image 0 that a plane's column offset `b` finds inside the image (image `k`'s
    // are `k·image_columns` further right).
    let limit = if l.planes == Planes::ColumnTaps { l.image_columns } else { columns };
    let (planes, rest) = padded.split_at_mut(g.c_in * l.plane);
    for (c, plane) in planes.chunks_exact_mut(l.plane).enumerate() {
        for (phase, &[a, b]) in plane.chunks_exact_mut(rows * columns).zip(&l.phases) {
            let (top, bottom) = valid_range(a, pad_h, sh, g.height, rows);
            let (left, right) = valid_range(b, pad_w, sw, g.width, limit);
            // A plane with no valid column (a tiny image) is all padding: no row to copy.
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

/// [`pad_planes`] with image lanes: value `k` of pixel `(i, j)` of phase `(a, b)` is padded
/// pixel `(s·i + a, s·j + b)` of image `k`; lanes past the group's images are zero.
fn pad_lanes(g: &ConvGeometry, l: &Layout, images: &[f32], padded: &mut [f32]) {
    let ([pad_h, pad_w], [sh, sw], [rows, columns]) = (g.padding, g.stride, l.phase_size);
    let (in_plane, image_len, lanes) = (g.height * g.width, g.c_in * g.height * g.width, l.lanes);
    padded.fill(0.0);
    for (c, plane) in padded[..g.c_in * l.plane].chunks_exact_mut(l.plane).enumerate() {
        for (phase, &[a, b]) in plane.chunks_exact_mut(rows * columns * lanes).zip(&l.phases) {
            let (top, bottom) = valid_range(a, pad_h, sh, g.height, rows);
            let (left, right) = valid_range(b, pad_w, sw, g.width, columns);
            for (k, image) in images.chunks_exact(image_len).enumerate() {
                let channel = &image[c * in_plane..][..in_plane];
                for i in top..bottom {
                    let values = &channel[(sh * i + a - pad_h) * g.width..][..g.width];
                    for j in left..right {
                        phase[(i * columns + j) * lanes + k] = values[sw * j + b - pad_w];
                    }
                }
            }
        }
    }
}

thread_local! {
    /// One group's padded planes and one tile of channels' wide output.
    static SCRATCH: Buffers = const { RefCell::new((Vec::new(), Vec::new())) };
    /// One group's padded planes and its output gradient, channels-last on the wide grid.
    static GRADIENT_SCRATCH: Buffers = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// [`forward`] with the tiles of `I`.
fn forward_with<I: Vectors>(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
    let l = layout::<I>(g, forward_planes::<I>(g));
    let width = l.phase_size[1];
    let weights = weight_tiles(g, w, l.channels);
    let taps = l.offsets.len();
    let tile_weights = g.c_in * taps * l.channels;
    let (image_len, out_height, out_width) = (g.c_in * g.height * g.width, g.out_height(), g.out_width());
    let out_plane = out_height * out_width;
    let block = input_block(&l, g.c_in);
    // In blocks of input channels, every channel tile's sums wait in `wide` for the next block.
    let wide_len = if block < g.c_in { g.c_out.div_ceil(l.channels) } else { 1 } * l.channels * l.wide;
    let mut y = output(g.output_len());
    for_each_piece(&mut y, l.images * g.c_out * out_plane, |group, out| {
        let first = group * l.images * image_len;
        let images = &x[first..(first + l.images * image_len).min(x.len())];
        with_buffers(&SCRATCH, [l.padded_len, wide_len], |padded, wide| {
            pad_planes(g, &l, images, padded);
            let copy_out = |tile_group: usize, wide: &[f32], out: &mut [MaybeUninit<f32>]| {
                let channels = tile_group * l.channels..((tile_group + 1) * l.channels).min(g.c_out);
                for (k, image_out) in out.chunks_exact_mut(g.c_out * out_plane).enumerate() {
                    for (channel, wide_channel) in image_out[channels.start * out_plane..channels.end * out_plane]
                        .chunks_exact_mut(out_plane)
                        .zip(wide.chunks_exact(l.wide))
                    {
                        if l.planes == Planes::ImageLanes {
                            // Each position of a channel's wide grid holds every image's value.
                            for (p, value) in channel.iter_mut().enumerate() {
                                value.write(wide_channel[p * l.lanes + k]);
                            }
                        } else {
                            // Each row of a channel's wide grid holds every image's output row.
                            for (row, wide_row) in channel.chunks_exact_mut(out_width).zip(wide_channel.chunks(width)) {
                                row.write_copy_of_slice(&wide_row[k * l.image_columns..][..out_width]);
                            }
                        }
                    }
                }
            };
            if block == g.c_in {
                for (tile_group, weights) in weights.chunks_exact(tile_weights).enumerate() {
                    // SAFETY: `forward_with` is called only where the CPU has `I`'s instructions.
                    unsafe { I::forward_tiles(&l, padded, g.c_in, weights, wide, false) };
                    copy_out(tile_group, wide, out);
                }
                return;
            }
            for first in (0..g.c_in).step_by(block) {
                let channels = block.min(g.c_in - first);
                for (weights, wide) in weights.chunks_exact(tile_weights).zip(wide.chunks_exact_mut(l.channels * l.wide)) {
                    // SAFETY: as above.
                    unsafe {
                        I::forward_tiles(&l, &padded[first * l.plane..], channels, &weights[first * taps * l.channels..], wide, first > 0)
                    };
                }
            }
            for (tile_group, wide) in wide.chunks_exact(l.channels * l.wide).enumerate() {
                copy_out(tile_group, wide, out);
            }
        })
    });
    // SAFETY: the tile groups cover every output channel, and each channel's rows every
    // position of every image of its group.
    unsafe { written(y) }
}

/// Input channels the forward's tiles sum over before moving on: all of them if their planes fit
/// [`PLANES_BUDGET`], else as many as do. Every channel tile reads the planes of its block, so
/// planes that stay in the second-level cache are read from there.
fn input_block(l: &Layout, c_in: usize) -> usize {
    (PLANES_BUDGET / (l.plane * size_of::<f32>()).max(1)).clamp(1, c_in)
}

/// The weight gradient on the same layout: `dw[o, c, tap] = Σ_q X[c][q + offset(tap)] · dY[q][o]`
/// over every output position `q` on the wide grid of every group whose input for that tap is a
/// pixel, where `dY` is the output gradient channels-last on the wide grid. Vectors run over
/// output channels, so a tile of a few vectors of output channels × a few input channels (one tap) sums
/// over positions in registers: per position it loads the tile's `dY` vectors, broadcasts one
/// input value per input channel and does all the multiply-adds, as the forward tile does with the roles
/// of inputs and weights exchanged. The images are split between threads in equal shares, each
/// thread summing into its own copy, added in a fixed order (so results do not depend on timing).
fn weight_grad_with<I: Vectors>(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let l = layout::<I>(g, Planes::Shared);
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
                unsafe { I::gradient_tiles(&l, padded, dy_wide, padded_out, Group { c_in: g.c_in, images: images.len() }, &mut sums) };
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
/// grid. Positions that are no output are left as they were (the tiles never read them), and so
/// are channels `O..O'`, whose sums the tiles compute and [`weight_grad_with`] drops.
fn channels_last(g: &ConvGeometry, l: &Layout, dy: &[f32], padded_out: usize, dy_wide: &mut [f32]) {
    let (out_width, out_plane, row) = (g.out_width(), g.out_height() * g.out_width(), l.phase_size[1]);
    for (k, image) in dy.chunks_exact(g.c_out * out_plane).enumerate() {
        for oy in 0..g.out_height() {
            let first = oy * row + k * l.image_columns;
            interleave(&image[oy * out_width..], out_plane, g.c_out, out_width, &mut dy_wide[first * padded_out..], padded_out);
        }
    }
}

/// What the weight gradient's tiles need to know of one group of images besides its layout.
#[derive(Debug, Clone, Copy)]
struct Group {
    /// Input channels.
    c_in: usize,
    /// Images in this group (the last group may have fewer than [`Layout::images`]).
    images: usize,
}

/// Adds one group's share to `sums` for output channels `first_vector·L..(first_vector + OV)·L`
/// (`L` lanes), every (input channel, tap) pair: for each tap, `T` input channels at a time, over
/// only the positions where that tap reads a pixel. A padding tap's input is zero and a padding
/// column's gradient too, so skipping them changes nothing but the work: on an 8×8 map with a 3×3
/// kernel the wide grid's 80 positions × 9 taps hold 484 products that count (docs/performance.md).
///
/// # Safety
/// The CPU has `I`'s instructions.
#[inline(always)]
unsafe fn gradient_tiles<I: Vectors, const OV: usize, const T: usize>(
    l: &Layout,
    padded: &[f32],
    dy_wide: &[f32],
    padded_out: usize,
    first_vector: usize,
    group: Group,
    sums: &mut [f32],
) {
    let (taps, c_in, row) = (l.offsets.len(), group.c_in, l.phase_size[1]);
    let channel_first = first_vector * I::LANES;
    assert!(c_in > 0 && group.images <= l.images && (c_in - 1) * l.plane + l.wide + l.reach <= padded.len());
    assert!((l.wide - 1) * padded_out + channel_first + OV * I::LANES <= dy_wide.len() && sums.len() >= c_in * taps * padded_out);
    for (tap, (&offset, [rows, columns])) in l.offsets.iter().zip(&l.valid).enumerate() {
        // Output (oy, ox) of image k is wide-grid position oy·row + k·image_columns + ox, below
        // `l.wide` for every valid one: runs of each valid row's columns, merged where rows touch
        // (a map with no padding columns is one run per image).
        let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
        for start in (0..group.images).flat_map(|k| rows.clone().map(move |oy| oy * row + k * l.image_columns + columns.start)) {
            match runs.last_mut() {
                Some(last) if last.end == start => last.end += columns.len(),
                _ => runs.push(start..start + columns.len()),
            }
        }
        for first_c in (0..c_in).step_by(T) {
            // A last tile with fewer channels repeats the last one and keeps only its own.
            // SAFETY: the CPU has the instructions (this function's contract); the input pointers
            // stay inside `padded` for every position below `l.wide` and the gradient reads inside
            // `dy_wide`, by the assertions above; `at` is a slice of `I::LANES` values.
            unsafe {
                let inputs: [*const f32; T] = std::array::from_fn(|t| padded.as_ptr().add((first_c + t).min(c_in - 1) * l.plane + offset));
                let mut tile = [[I::zero(); OV]; T];
                for run in &runs {
                    for q in run.clone() {
                        let gradient = dy_wide.as_ptr().add(q * padded_out + channel_first);
                        let d: [I::V; OV] = std::array::from_fn(|v| I::load(gradient.add(v * I::LANES)));
                        for (sums_t, input) in tile.iter_mut().zip(inputs) {
                            let x = I::splat(*input.add(q));
                            for (sum, d) in sums_t.iter_mut().zip(d) {
                                *sum = I::mul_add(d, x, *sum);
                            }
                        }
                    }
                }
                for (t, sums_t) in tile.iter().enumerate().take(c_in - first_c) {
                    for (v, sum) in sums_t.iter().enumerate() {
                        let at = &mut sums[((first_c + t) * taps + tap) * padded_out + channel_first + v * I::LANES..][..I::LANES];
                        I::store(at.as_mut_ptr(), I::add(I::load(at.as_ptr()), *sum));
                    }
                }
            }
        }
    }
}

/// One tile group's `CH` output channels over the whole wide grid, tile by tile.
///
/// # Safety
/// The CPU has `I`'s instructions.
#[inline(always)]
unsafe fn forward_tiles<I: Vectors, const CH: usize, const V: usize>(
    l: &Layout,
    padded: &[f32],
    c_in: usize,
    weights: &[f32],
    wide: &mut [f32],
    accumulate: bool,
) {
    debug_assert_eq!(CH, l.channels);
    for t in &l.tiles {
        // SAFETY: the CPU has the instructions; `tile` checks its bounds.
        unsafe {
            match t.vectors.min(V) {
                1 => tile::<I, CH, 1>(l, padded, c_in, t, weights, wide, accumulate),
                2 => tile::<I, CH, 2>(l, padded, c_in, t, weights, wide, accumulate),
                _ => tile::<I, CH, V>(l, padded, c_in, t, weights, wide, accumulate),
            }
        }
    }
}

/// `wide[j·l.wide + start + i] = Σ_c Σ_tap weights[(c·taps + tap)·CH + j] · padded[c·plane + input + i + offsets[tap]]`
/// for the tile's `V·L` positions `i` (`L` lanes), its channels `j` and its taps (the others read
/// only padding there); added to what `wide` holds if `accumulate`.
///
/// # Safety
/// The CPU has `I`'s instructions.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<I: Vectors, const CH: usize, const V: usize>(
    l: &Layout,
    padded: &[f32],
    c_in: usize,
    t: &Tile,
    weights: &[f32],
    wide: &mut [f32],
    accumulate: bool,
) {
    let (all_taps, wide_len, start, taps) = (l.offsets.len(), l.wide, t.start, &t.taps);
    assert!(c_in > 0 && (c_in - 1) * l.plane + t.input + V * I::LANES + l.reach <= padded.len() && taps.iter().all(|&tap| tap < all_taps));
    assert!(weights.len() >= c_in * all_taps * CH && (CH - 1) * wide_len + start + V * I::LANES <= wide.len());
    // SAFETY: the CPU has the instructions (this function's contract), and every pointer below
    // stays inside its slice, by the assertions above.
    unsafe {
        let mut sums = [[I::zero(); V]; CH];
        for c in 0..c_in {
            let channel = padded.as_ptr().add(c * l.plane + t.input);
            let channel_weights = weights.as_ptr().add(c * all_taps * CH);
            for &tap in taps {
                let input = channel.add(l.offsets[tap]);
                let weight = channel_weights.add(tap * CH);
                let inputs: [I::V; V] = std::array::from_fn(|v| I::load(input.add(v * I::LANES)));
                for (j, channel_sums) in sums.iter_mut().enumerate() {
                    let w = I::splat(*weight.add(j));
                    for (sum, input) in channel_sums.iter_mut().zip(inputs) {
                        *sum = I::mul_add(input, w, *sum);
                    }
                }
            }
        }
        for (j, channel_sums) in sums.iter().enumerate() {
            for (v, sum) in channel_sums.iter().enumerate() {
                let at = wide.as_mut_ptr().add(j * wide_len + start + v * I::LANES);
                let sum = if accumulate { I::add(I::load(at), *sum) } else { *sum };
                I::store(at, sum);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv::testing::{assert_weight_gradient, geometry, reference, stride_one_geometries, test_values};
    use crate::scratch::poison;
    use crate::testing::assert_slices_close as assert_close;

    /// Strided shapes: ResNet's 3×3 and 1×1 downsampling layers at odd and even sizes, strides
    /// larger than the kernel (phases no tap reads), stride 3, different strides per axis, and
    /// an image so small that some phase rows and columns are all padding.
    fn strided_geometries() -> Vec<ConvGeometry> {
        let g = geometry;
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
        let g = geometry;
        let geometries = vec![
            g(7, 3, 4, 4, 9, [3, 3], [1, 1], [1, 1]),
            g(13, 5, 8, 8, 8, [3, 3], [2, 2], [1, 1]),
            g(6, 4, 8, 8, 3, [1, 1], [2, 2], [0, 0]),
            g(9, 3, 6, 6, 4, [3, 3], [1, 1], [0, 0]),
            g(5, 2, 4, 3, 5, [5, 5], [1, 1], [2, 2]),
            g(11, 2, 7, 5, 3, [3, 2], [2, 1], [1, 0]),
            g(1, 3, 4, 4, 2, [3, 3], [1, 1], [1, 1]),
            // Groups whose rows hold a full tile: tiles that skip the taps reading padding.
            g(12 * threads(), 3, 4, 4, 9, [3, 3], [1, 1], [1, 1]),
            g(24 * threads() + 5, 2, 4, 4, 5, [5, 5], [1, 1], [2, 2]),
            // Rows of 50 (20 with AVX2) positions, no whole number of vectors: tiles across rows.
            g(20 * threads(), 3, 5, 5, 7, [3, 3], [1, 1], [1, 1]),
        ];
        assert!(geometries.iter().all(|g| {
            [Planes::ColumnTaps, Planes::Shared]
                .iter()
                .all(|&planes| (layout::<Avx512>(g, planes).images > 1 && layout::<Avx2>(g, planes).images > 1) || g.batch == 1)
        }));
        geometries
    }

    /// Small maps in groups of at least a vector of images, which the forward puts in its lanes:
    /// ResNet's 4×4 and 8×8 layers, strided ones with and without padding, groups of a vector and
    /// a half (lanes past the images), a 5×5 kernel with padding 2.
    fn lane_geometries() -> Vec<ConvGeometry> {
        let g = geometry;
        let geometries = vec![
            g(16 * threads(), 3, 4, 4, 9, [3, 3], [1, 1], [1, 1]),
            g(24 * threads() + 1, 2, 8, 8, 5, [3, 3], [1, 1], [1, 1]),
            g(32 * threads(), 3, 8, 8, 4, [3, 3], [2, 2], [1, 1]),
            g(16 * threads(), 4, 7, 7, 3, [3, 3], [2, 2], [0, 0]),
            g(20 * threads(), 2, 5, 6, 7, [5, 5], [1, 1], [2, 2]),
        ];
        assert!(
            geometries.iter().all(|g| forward_planes::<Avx512>(g) == Planes::ImageLanes && forward_planes::<Avx2>(g) == Planes::ImageLanes)
        );
        geometries
    }

    /// A channel's planes with image lanes stay within [`LANE_PLANES_BUDGET`]: an 8×8 map with
    /// padding (100 values an image) takes at most 40 images to a group, and a strided layer from
    /// 16×16 (four phases of 9×9) too few for a vector, so it keeps other planes.
    #[test]
    fn image_lanes_keep_a_channel_within_the_budget() {
        let g =
            |height, width, stride| ConvGeometry { batch: 256, c_in: 8, height, width, c_out: 8, kernel: [3, 3], stride, padding: [1, 1] };
        let small = g(8, 8, [1, 1]);
        assert_eq!(forward_planes::<Avx512>(&small), Planes::ImageLanes);
        let images = lane_images::<Avx512>(&small);
        assert!((16..=40).contains(&images), "{images} images");
        assert_eq!(layout::<Avx512>(&small, Planes::ImageLanes).plane, images.next_multiple_of(16) * 100);
        let strided = g(16, 16, [2, 2]);
        assert_eq!(strided.out_width(), 8);
        assert_ne!(forward_planes::<Avx512>(&strided), Planes::ImageLanes);
    }

    /// A 4×4 map's rows hold a full tile from 12 images on (AVX-512; 4 with AVX2): each tile lies
    /// in one output row and leaves out the kernel row that reads padding there, as counted by
    /// hand: top row taps 3..9, middle rows all 9, bottom row 0..6.
    #[test]
    fn row_tiles_leave_out_the_padding_taps() {
        let g =
            ConvGeometry { batch: 24 * threads(), c_in: 3, height: 4, width: 4, c_out: 9, kernel: [3, 3], stride: [1, 1], padding: [1, 1] };
        assert!(column_taps_pay(&g));
        for (l, lanes, full_tile) in [(layout::<Avx512>(&g, Planes::ColumnTaps), 16, 48), (layout::<Avx2>(&g, Planes::ColumnTaps), 8, 16)] {
            let row = l.phase_size[1];
            assert_eq!(row, full_tile);
            for t in &l.tiles {
                let oy = t.start / row;
                assert_eq!((t.start + t.vectors * lanes - 1) / row, oy, "a tile in one row");
                let expected: Vec<usize> = match oy {
                    0 => (3..9).collect(),
                    3 => (0..6).collect(),
                    _ => (0..9).collect(),
                };
                assert_eq!(t.taps, expected, "row {oy}");
            }
        }
    }

    /// Maps at least [`MIN_OUT_WIDTH`] wide, one image to a group, several groups.
    fn wide_geometries() -> Vec<ConvGeometry> {
        let g = geometry;
        let geometries = vec![g(3, 3, 16, 17, 5, [3, 3], [1, 1], [1, 1]), g(2, 4, 33, 32, 6, [3, 3], [2, 2], [1, 1])];
        assert!(geometries.iter().all(|g| layout::<Avx512>(g, forward_planes::<Avx512>(g)).images == 1 && g.batch > 1));
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
        let wide_channels =
            |c_out| ConvGeometry { batch: 3, c_in: 5, height: 6, width: 7, c_out, kernel: [3, 3], stride: [1, 1], padding: [1, 1] };
        for isa in available_instructions() {
            let geometries = stride_one_geometries()
                .into_iter()
                .chain(strided_geometries())
                .chain(narrow_geometries())
                .chain(wide_geometries())
                .chain([9, 17, 40, 70].map(wide_channels));
            for g in geometries {
                poison(&GRADIENT_SCRATCH);
                let (x, dy) = (test_values(g.input_len(), 3), test_values(g.output_len(), 4));
                assert_weight_gradient(&g, &x, &dy, &isa.weight_grad(&g, &x, &dy));
            }
        }
    }

    #[test]
    fn forward_matches_the_definition() {
        let all = || {
            stride_one_geometries()
                .into_iter()
                .chain(strided_geometries())
                .chain(narrow_geometries())
                .chain(lane_geometries())
                .chain(wide_geometries())
        };
        for isa_planes in [forward_planes::<Avx512>, forward_planes::<Avx2>] {
            let planes: Vec<Planes> = all().map(|g| isa_planes(&g)).collect();
            assert!(
                [Planes::Shared, Planes::ColumnTaps, Planes::ImageLanes].iter().all(|p| planes.contains(p)),
                "every layout: {planes:?}"
            );
        }
        let blocks: Vec<bool> = all().map(|g| input_block(&layout::<Avx512>(&g, forward_planes::<Avx512>(&g)), g.c_in) < g.c_in).collect();
        assert!(blocks.contains(&true) && blocks.contains(&false), "in blocks of input channels and all at once");
        for isa in available_instructions() {
            for g in all() {
                poison(&SCRATCH);
                let (x, w) = (test_values(g.input_len(), 1), test_values(g.weight_len(), 2));
                assert_close(&isa.forward(&g, &x, &w), &reference(&g, &x, &w), &format!("{isa:?} {g:?}"));
            }
        }
    }
}
