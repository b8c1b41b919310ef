//! NumPy `.npy` files (format version 1.0), so exported features load with `numpy.load`.
//!
//! Layout: the magic `\x93NUMPY`, version bytes `1 0`, a little-endian u16 header length, an ASCII
//! Python-dict header padded with spaces and ended by `\n` so the data starts at a multiple of 64
//! bytes, then the raw little-endian array in C order.

use std::path::Path;

use anyhow::{Context, Result};

/// The bytes of a `.npy` file holding `data` (already little-endian, C order) of `shape`.
/// `descr` is NumPy's dtype string: `<f4` for f32, `<i8` for i64.
fn encode(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape = match shape {
        [n] => format!("({n},)"),
        dims => format!("({})", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let unpadded = 6 + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut bytes = Vec::with_capacity(10 + header.len() + data.len());
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// Writes a row-major `[rows, values.len() / rows]` f32 matrix.
pub fn write_f32_matrix(path: &Path, values: &[f32], rows: usize) -> Result<()> {
    let cols = values.len().checked_div(rows).unwrap_or(0);
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, encode("<f4", &[rows, cols], &data)).with_context(|| format!("{}: cannot write", path.display()))
}

/// Writes a vector of integer labels as i64.
pub fn write_labels(path: &Path, labels: &[u32]) -> Result<()> {
    let data: Vec<u8> = labels.iter().flat_map(|&l| (l as i64).to_le_bytes()).collect();
    std::fs::write(path, encode("<i8", &[labels.len()], &data)).with_context(|| format!("{}: cannot write", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_follows_the_npy_1_0_spec() {
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let bytes = encode("<f4", &[2, 3], &data);
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0, "data must start on a 64-byte boundary");
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert_eq!(header.trim_end(), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
        assert!(header.ends_with('\n'));
        assert_eq!(&bytes[10 + header_len..], &data[..]);
        assert_eq!(f32::from_le_bytes(bytes[10 + header_len + 4..10 + header_len + 8].try_into().unwrap()), 2.0);
    }

    #[test]
    fn one_dimensional_shape_has_a_trailing_comma() {
        let bytes = encode("<i8", &[5], &[0; 40]);
        let header = std::str::from_utf8(&bytes[10..bytes.len() - 40]).unwrap();
        assert!(header.contains("'shape': (5,)"), "{header}");
        assert!(header.contains("'descr': '<i8'"));
    }
}
