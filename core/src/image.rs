//! RGB images held compactly as `u8`, and conversion to and from encoded files.

use std::io::Cursor;

/// An 8-bit RGB image, row-major, channels interleaved (`HWC`), as decoders produce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub width: usize,
    pub height: usize,
    /// `height * width * 3` bytes: R, G, B of pixel (0,0), then (0,1), …
    pub pixels: Vec<u8>,
}

/// Why an encoded image could not be decoded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

impl Image {
    pub fn new(width: usize, height: usize, pixels: Vec<u8>) -> Self {
        assert_eq!(pixels.len(), width * height * 3, "pixel buffer does not match {width}×{height}×3");
        Self { width, height, pixels }
    }

    /// A uniformly coloured image.
    pub fn filled(width: usize, height: usize, rgb: [u8; 3]) -> Self {
        Self::new(width, height, rgb.iter().copied().cycle().take(width * height * 3).collect())
    }

    /// Builds an image from three channel planes (`CHW`), as CIFAR and STL-10 store them.
    /// `index(c, y, x)` gives the byte offset of channel `c` at row `y`, column `x`.
    pub fn from_planes(width: usize, height: usize, planes: &[u8], index: impl Fn(usize, usize, usize) -> usize) -> Self {
        let mut pixels = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            for x in 0..width {
                for c in 0..3 {
                    pixels.push(planes[index(c, y, x)]);
                }
            }
        }
        Self::new(width, height, pixels)
    }

    /// Decodes PNG, JPEG, WebP or BMP bytes (format detected from the content).
    ///
    /// Truncated files are errors even where a decoder would return a partial image: a
    /// half-grey training image is worse than a skipped one.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let format = image::guess_format(bytes).map_err(|_| DecodeError("not a PNG, JPEG, WebP or BMP image".into()))?;
        if format == image::ImageFormat::Jpeg && !jpeg_has_end_marker(bytes) {
            return Err(DecodeError("truncated JPEG (no end-of-image marker)".into()));
        }
        let decoded = image::load_from_memory_with_format(bytes, format).map_err(|e| DecodeError(e.to_string()))?;
        let rgb = decoded.into_rgb8();
        let (w, h) = rgb.dimensions();
        if w == 0 || h == 0 {
            return Err(DecodeError("image has zero width or height".into()));
        }
        Ok(Self::new(w as usize, h as usize, rgb.into_raw()))
    }

    /// `(width, height)` from the start of an encoded file, without decoding the pixels. A
    /// prefix is enough for most files (a PNG's chunks before its pixel data, a JPEG's metadata
    /// and frame header).
    pub fn header_size(bytes: &[u8]) -> Result<(usize, usize), DecodeError> {
        let reader = image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| DecodeError(e.to_string()))?;
        if reader.format().is_none() {
            return Err(DecodeError("not a PNG, JPEG, WebP or BMP image".into()));
        }
        let (w, h) = reader.into_dimensions().map_err(|e| DecodeError(e.to_string()))?;
        if w == 0 || h == 0 {
            return Err(DecodeError("image has zero width or height".into()));
        }
        Ok((w as usize, h as usize))
    }

    /// Encodes as PNG.
    pub fn to_png(&self) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image::write_buffer_with_format(
            &mut out,
            &self.pixels,
            self.width as u32,
            self.height as u32,
            image::ExtendedColorType::Rgb8,
            image::ImageFormat::Png,
        )
        .expect("PNG encoding into memory cannot fail");
        out.into_inner()
    }

    /// Converts a planar `[3, H, W]` float image in `[0, 1]` (what augmentations produce) back to
    /// 8 bits, rounding to nearest.
    pub fn from_planar_f32(width: usize, height: usize, planar: &[f32]) -> Self {
        let plane = width * height;
        assert_eq!(planar.len(), 3 * plane);
        let mut pixels = Vec::with_capacity(3 * plane);
        for p in 0..plane {
            for c in 0..3 {
                pixels.push((planar[c * plane + p].clamp(0.0, 1.0) * 255.0).round() as u8);
            }
        }
        Self::new(width, height, pixels)
    }

    /// Tiles images into a grid of `columns` columns with `gap` pixels of white between cells.
    /// Cells are as large as the largest tile; smaller tiles (multi-crop's local views) sit
    /// centred in theirs, so their size stays visible. Used for augmentation previews.
    pub fn grid(tiles: &[Image], columns: usize, gap: usize) -> Image {
        assert!(!tiles.is_empty() && columns > 0);
        let cw = tiles.iter().map(|t| t.width).max().unwrap_or(0);
        let ch = tiles.iter().map(|t| t.height).max().unwrap_or(0);
        let columns = columns.min(tiles.len());
        let rows = tiles.len().div_ceil(columns);
        let width = columns * cw + (columns + 1) * gap;
        let height = rows * ch + (rows + 1) * gap;
        let mut out = Image::filled(width, height, [255, 255, 255]);
        for (k, tile) in tiles.iter().enumerate() {
            let x0 = gap + (k % columns) * (cw + gap) + (cw - tile.width) / 2;
            let y0 = gap + (k / columns) * (ch + gap) + (ch - tile.height) / 2;
            let tw = tile.width * 3;
            for y in 0..tile.height {
                let dst = ((y0 + y) * width + x0) * 3;
                out.pixels[dst..dst + tw].copy_from_slice(&tile.pixels[y * tw..(y + 1) * tw]);
            }
        }
        out
    }
}

/// A complete JPEG ends with the EOI marker `FF D9` (allowing trailing padding bytes).
fn jpeg_has_end_marker(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: usize, h: usize) -> Image {
        let mut px = Vec::new();
        for y in 0..h {
            for x in 0..w {
                px.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 128]);
            }
        }
        Image::new(w, h, px)
    }

    #[test]
    fn png_round_trip_is_lossless() {
        let img = gradient(17, 9);
        assert_eq!(Image::decode(&img.to_png()).unwrap(), img);
    }

    #[test]
    fn garbage_and_truncated_files_are_errors() {
        assert!(Image::decode(b"hello, I am a text file").is_err());
        let png = gradient(8, 8).to_png();
        assert!(Image::decode(&png[..png.len() / 2]).is_err());
        let mut jpeg = Vec::new();
        let img = gradient(32, 32);
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg).encode(&img.pixels, 32, 32, image::ExtendedColorType::Rgb8).unwrap();
        assert!(Image::decode(&jpeg).is_ok());
        assert!(Image::decode(&jpeg[..jpeg.len() * 2 / 3]).is_err());
    }

    #[test]
    fn header_size_reads_dimensions_from_a_prefix() {
        let png = gradient(7, 5).to_png();
        assert_eq!(Image::header_size(&png).unwrap(), (7, 5));
        let mut jpeg = Vec::new();
        let img = gradient(240, 160);
        image::codecs::jpeg::JpegEncoder::new(&mut jpeg).encode(&img.pixels, 240, 160, image::ExtendedColorType::Rgb8).unwrap();
        // The frame header and tables come before the scan data.
        assert!(jpeg.len() > 2048, "{}", jpeg.len());
        assert_eq!(Image::header_size(&jpeg[..1024]).unwrap(), (240, 160));
        assert!(Image::header_size(b"hello, I am a text file").is_err());
        assert!(Image::header_size(&png[..10]).is_err(), "a PNG cut inside its header");
    }

    #[test]
    fn planar_round_trip() {
        let img = gradient(5, 4);
        let plane = 20;
        let mut planar = vec![0.0; 60];
        for p in 0..plane {
            for c in 0..3 {
                planar[c * plane + p] = img.pixels[p * 3 + c] as f32 / 255.0;
            }
        }
        assert_eq!(Image::from_planar_f32(5, 4, &planar), img);
    }

    #[test]
    fn grid_places_tiles() {
        let a = Image::filled(2, 2, [10, 20, 30]);
        let b = Image::filled(2, 2, [40, 50, 60]);
        let g = Image::grid(&[a, b], 2, 1);
        assert_eq!((g.width, g.height), (7, 4));
        assert_eq!(&g.pixels[(1 * 7 + 1) * 3..(1 * 7 + 1) * 3 + 3], &[10, 20, 30]);
        assert_eq!(&g.pixels[(1 * 7 + 4) * 3..(1 * 7 + 4) * 3 + 3], &[40, 50, 60]);
        assert_eq!(&g.pixels[0..3], &[255, 255, 255]);
        // A smaller tile is centred in its cell.
        let g = Image::grid(&[Image::filled(4, 4, [0; 3]), Image::filled(2, 2, [7; 3])], 2, 0);
        assert_eq!(&g.pixels[(1 * 8 + 5) * 3..][..3], &[7, 7, 7]);
        assert_eq!(&g.pixels[4 * 3..][..3], &[255, 255, 255]); // row 0, column 4
    }
}
