//! The shape of one convolution and the index arithmetic every path shares: the output
//! positions for which a kernel tap reads a pixel, and the copy from channel rows to
//! channels-last pixels.

/// Shapes and hyper-parameters of one convolution (groups 1, dilation 1, symmetric padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub c_in: usize,
    pub height: usize,
    pub width: usize,
    pub c_out: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl ConvGeometry {
    pub fn out_height(&self) -> usize {
        (self.height + 2 * self.padding[0] - self.kernel[0]) / self.stride[0] + 1
    }

    pub fn out_width(&self) -> usize {
        (self.width + 2 * self.padding[1] - self.kernel[1]) / self.stride[1] + 1
    }

    /// Output positions per image (`P`).
    pub fn positions(&self) -> usize {
        self.out_height() * self.out_width()
    }

    /// Rows of the column matrix: one per input channel and kernel tap.
    pub fn patch(&self) -> usize {
        self.c_in * self.kernel[0] * self.kernel[1]
    }

    pub fn input_len(&self) -> usize {
        self.batch * self.c_in * self.height * self.width
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.c_out * self.positions()
    }

    pub fn weight_len(&self) -> usize {
        self.c_out * self.patch()
    }
}

/// The output positions `lo..hi` (along one axis) whose input coordinate
/// `out·stride + tap − pad` falls inside `0..size`; the others read zero padding.
pub fn valid_range(tap: usize, pad: usize, stride: usize, size: usize, out_size: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(tap).div_ceil(stride);
    let hi = (size + pad).saturating_sub(tap).div_ceil(stride);
    (lo.min(out_size), hi.clamp(lo.min(out_size), out_size))
}

/// Rows to pixels: `pixels[x·pixel_stride + c] = rows[c·row_stride + x]` for `x < len` and
/// `c < channels`. Eight channels at a time: eight sequential reads and one contiguous write per
/// pixel (a plain strided loop ran at half the speed).
pub fn interleave(rows: &[f32], row_stride: usize, channels: usize, len: usize, pixels: &mut [f32], pixel_stride: usize) {
    let pixels = &mut pixels[..len * pixel_stride];
    let grouped = channels / 8 * 8;
    for c in (0..grouped).step_by(8) {
        let src: [&[f32]; 8] = std::array::from_fn(|i| &rows[(c + i) * row_stride..][..len]);
        for (x, pixel) in pixels.chunks_exact_mut(pixel_stride).enumerate() {
            for (i, value) in pixel[c..c + 8].iter_mut().enumerate() {
                *value = src[i][x];
            }
        }
    }
    for c in grouped..channels {
        for (pixel, value) in pixels.chunks_exact_mut(pixel_stride).zip(&rows[c * row_stride..][..len]) {
            pixel[c] = *value;
        }
    }
}
