//! PyTorch weight files: `.pth`/`.pt` (torch's zip-pickle format, as torchvision and DINO ship
//! them, or the older plain pickle), Lightning `.ckpt` (the same format, the model under
//! `state_dict`) and `.safetensors` (timm, Hugging Face). Read through burn-store's PyTorch reader
//! and the `safetensors` crate; written as `.safetensors`.
//!
//! Unlike the rest of jem-core this reads files (burn's PyTorch reader needs a path): it exists
//! for the command line, behind the `torch` feature.
//!
//! Nested dictionaries are flattened with dots (`state_dict.backbone.conv1.weight`), so a prefix
//! ([`crate::model::torch_layout::choose_prefix`]) picks one model out of a checkpoint.
//! Values of every dtype are read as f32.

use std::collections::HashMap;
use std::path::Path;

use burn::store::pytorch_reader::{DType as TorchDType, PytorchReader};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::model::torch_layout::{StateDict, TorchTensor};

/// Why a weight file cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TorchFileError {
    #[error("{path}: cannot read: {message}")]
    Io { path: String, message: String },
    #[error("{path}: not a PyTorch (.pth, .pt, .ckpt) or safetensors file, or a damaged one: {message}")]
    Unreadable { path: String, message: String },
    #[error("{path}: holds no tensors")]
    Empty { path: String },
    #[error("{path}: tensor '{name}' has dtype {dtype}, which jem cannot read as numbers")]
    Dtype { path: String, name: String, dtype: String },
}

/// The tensors of a PyTorch or safetensors file, by (flattened) name.
pub fn read(path: &Path) -> Result<StateDict, TorchFileError> {
    let shown = path.display().to_string();
    let mut head = [0u8; 9];
    let header_read = std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head));
    if let Err(e) = &header_read
        && e.kind() != std::io::ErrorKind::UnexpectedEof
    {
        return Err(TorchFileError::Io { path: shown, message: e.to_string() });
    }
    // A safetensors file starts with its header's length (u64) and the header's JSON `{`.
    let dict = if header_read.is_ok() && head[8] == b'{' {
        let bytes = std::fs::read(path).map_err(|e| TorchFileError::Io { path: shown.clone(), message: e.to_string() })?;
        from_safetensors(&bytes, &shown)?
    } else {
        from_pytorch(path, &shown)?
    };
    if dict.is_empty() {
        return Err(TorchFileError::Empty { path: shown });
    }
    Ok(dict)
}

fn from_pytorch(path: &Path, shown: &str) -> Result<StateDict, TorchFileError> {
    let unreadable = |message: String| TorchFileError::Unreadable { path: shown.to_string(), message };
    // The reader is third-party code facing arbitrary bytes: a panic in it is a bad file too.
    let reader = std::panic::catch_unwind(|| PytorchReader::new(path))
        .map_err(|_| unreadable("the PyTorch reader gave up on it".into()))?
        .map_err(|e| unreadable(e.to_string()))?;
    let mut dict = StateDict::new();
    for (name, tensor) in reader.into_tensors() {
        let (dtype, shape) = (tensor.dtype(), tensor.shape().to_vec());
        let bytes = tensor.read().map_err(|e| unreadable(e.to_string()))?;
        let values = match dtype {
            TorchDType::F32 => floats::<4>(&bytes, f32::from_ne_bytes),
            TorchDType::F64 => floats::<8>(&bytes, |b| f64::from_ne_bytes(b) as f32),
            TorchDType::F16 => floats::<2>(&bytes, |b| half::f16::from_ne_bytes(b).to_f32()),
            TorchDType::BF16 => floats::<2>(&bytes, |b| half::bf16::from_ne_bytes(b).to_f32()),
            TorchDType::I64 => floats::<8>(&bytes, |b| i64::from_ne_bytes(b) as f32),
            TorchDType::I32 => floats::<4>(&bytes, |b| i32::from_ne_bytes(b) as f32),
            TorchDType::I16 => floats::<2>(&bytes, |b| i16::from_ne_bytes(b) as f32),
            TorchDType::I8 => bytes.iter().map(|&b| b as i8 as f32).collect(),
            TorchDType::U8 | TorchDType::Bool => bytes.iter().map(|&b| b as f32).collect(),
            other => return Err(TorchFileError::Dtype { path: shown.to_string(), name, dtype: format!("{other:?}") }),
        };
        dict.insert(name, TorchTensor { shape, values });
    }
    Ok(dict)
}

fn floats<const N: usize>(bytes: &[u8], convert: impl Fn([u8; N]) -> f32) -> Vec<f32> {
    bytes.chunks_exact(N).map(|c| convert(c.try_into().expect("N bytes"))).collect()
}

/// The tensors of a safetensors file's bytes; `path` names the file in errors.
pub fn from_safetensors(bytes: &[u8], path: &str) -> Result<StateDict, TorchFileError> {
    let unreadable = |message: String| TorchFileError::Unreadable { path: path.to_string(), message };
    let file = SafeTensors::deserialize(bytes).map_err(|e| unreadable(e.to_string()))?;
    let mut dict = StateDict::new();
    for (name, view) in file.tensors() {
        let data = view.data();
        let values = match view.dtype() {
            Dtype::F32 => floats::<4>(data, f32::from_le_bytes),
            Dtype::F64 => floats::<8>(data, |b| f64::from_le_bytes(b) as f32),
            Dtype::F16 => floats::<2>(data, |b| half::f16::from_le_bytes(b).to_f32()),
            Dtype::BF16 => floats::<2>(data, |b| half::bf16::from_le_bytes(b).to_f32()),
            Dtype::I64 => floats::<8>(data, |b| i64::from_le_bytes(b) as f32),
            Dtype::I32 => floats::<4>(data, |b| i32::from_le_bytes(b) as f32),
            Dtype::U8 | Dtype::BOOL => data.iter().map(|&b| b as f32).collect(),
            other => return Err(TorchFileError::Dtype { path: path.to_string(), name, dtype: format!("{other:?}") }),
        };
        dict.insert(name, TorchTensor { shape: view.shape().to_vec(), values });
    }
    Ok(dict)
}

/// A safetensors file's bytes: `dict` as float32 and each of `counters` as an int64 scalar 0
/// (BatchNorm's `num_batches_tracked`, which PyTorch's strict loading asks for).
pub fn to_safetensors(dict: &StateDict, counters: &[String]) -> Vec<u8> {
    let floats: Vec<(&String, Vec<u8>, &[usize])> =
        dict.iter().map(|(name, t)| (name, t.values.iter().flat_map(|v| v.to_le_bytes()).collect(), t.shape.as_slice())).collect();
    let zero = 0i64.to_le_bytes();
    let mut views: Vec<(String, TensorView<'_>)> = floats
        .iter()
        .map(|(name, bytes, shape)| ((*name).clone(), TensorView::new(Dtype::F32, shape.to_vec(), bytes).expect("consistent shape")))
        .collect();
    views.extend(counters.iter().map(|name| (name.clone(), TensorView::new(Dtype::I64, vec![], &zero).expect("scalar"))));
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(metadata)).expect("serialising in-memory tensors")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safetensors_round_trip() {
        let dict = StateDict::from([
            ("a.weight".to_string(), TorchTensor { shape: vec![2, 3], values: vec![1.0, -2.0, 3.5, 0.0, 1e-8, 7.0] }),
            ("b".to_string(), TorchTensor { shape: vec![1], values: vec![42.0] }),
        ]);
        let bytes = to_safetensors(&dict, &["bn.num_batches_tracked".to_string()]);
        let back = from_safetensors(&bytes, "memory").unwrap();
        assert_eq!(back["a.weight"], dict["a.weight"]);
        assert_eq!(back["b"], dict["b"]);
        assert_eq!(back["bn.num_batches_tracked"], TorchTensor { shape: vec![], values: vec![0.0] });
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&bytes[8..8 + header_len]).unwrap();
        assert!(header.contains(r#""bn.num_batches_tracked":{"dtype":"I64","shape":[]"#), "{header}");
    }

    #[test]
    fn bad_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("jem-torch-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases: [(&str, &[u8]); 4] = [
            ("text.pth", b"hello, this is not a checkpoint"),
            ("empty.pth", b""),
            ("zip.pth", b"PK\x03\x04\x14\x00\x00\x00"),
            ("st.safetensors", b"\x40\x00\x00\x00\x00\x00\x00\x00{\"a\":"),
        ];
        for (name, bytes) in cases {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            let err = read(&path).unwrap_err().to_string();
            assert!(err.contains(name) && err.contains("not a PyTorch"), "{name}: {err}");
        }
        assert!(read(&dir.join("absent.pth")).unwrap_err().to_string().contains("cannot read"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
