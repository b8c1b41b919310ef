//! The encoder file (`.jem`): one file holding a trained model and the recipe that built it,
//! written by `jem export web` and loaded by the browser demo.
//!
//! Layout: the magic `JEMENC01`, the recipe's TOML length as a little-endian u32, the TOML,
//! then the model's weights in burn's burnpack format (a checkpoint's `model.bpk`, verbatim).

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;

use crate::config::ConfigError;
use crate::method::Model;
use crate::recipe::Recipe;

const MAGIC: &[u8; 8] = b"JEMENC01";

/// Why an encoder file cannot be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EncoderFileError {
    #[error("not a jem encoder file (export one with `jem export web --checkpoint RUN`)")]
    NotAnEncoderFile,
    #[error("the encoder file is truncated (its recipe is cut off)")]
    Truncated,
    #[error("the encoder file's recipe is not UTF-8")]
    RecipeNotUtf8,
    #[error("the encoder file's recipe: {0}")]
    Recipe(#[from] ConfigError),
    /// burn's message about the burnpack bytes.
    #[error("the encoder's weights cannot be read: {0}")]
    UnreadableWeights(String),
    /// burn's message about the tensors that do not fit the recipe's model.
    #[error("the encoder's weights do not fit its recipe: {0}")]
    WeightsDoNotFit(String),
}

/// The bytes of an encoder file.
pub fn encode(recipe: &Recipe, weights: &[u8]) -> Vec<u8> {
    let toml = recipe.to_toml();
    let mut bytes = Vec::with_capacity(12 + toml.len() + weights.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(toml.len() as u32).to_le_bytes());
    bytes.extend_from_slice(toml.as_bytes());
    bytes.extend_from_slice(weights);
    bytes
}

/// The recipe and the weights of an encoder file.
pub fn decode(bytes: &[u8]) -> Result<(Recipe, &[u8]), EncoderFileError> {
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err(EncoderFileError::NotAnEncoderFile);
    }
    let len = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
    let toml = bytes.get(12..12 + len).ok_or(EncoderFileError::Truncated)?;
    let toml = std::str::from_utf8(toml).map_err(|_| EncoderFileError::RecipeNotUtf8)?;
    Ok((Recipe::from_toml(toml)?, &bytes[12 + len..]))
}

/// Loads burnpack `weights` into `model` (built from the file's recipe).
pub fn load_weights(model: Model, weights: &[u8]) -> Result<Model, EncoderFileError> {
    // Cast stored tensors to the model's dtypes: a file whose tensor says I32 where the model
    // holds F32 (found by fuzzing) would otherwise panic inside burn.
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(weights.to_vec()))
        .map_err(|e| EncoderFileError::UnreadableWeights(format!("{e:?}")))?
        .cast_to_module_dtype();
    model.try_load_record(record).map_err(|e| EncoderFileError::WeightsDoNotFit(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Tensor};

    #[test]
    fn round_trips_recipe_and_weights() {
        let mut recipe = Recipe::default_shapes();
        recipe.backbone.width = 4;
        let device = Device::flex();
        device.seed(1);
        let model = recipe.method.init(&recipe.backbone, &device).unwrap();
        let weights = model.clone().into_record().into_bytes().unwrap().to_vec();
        let file = encode(&recipe, &weights);
        let (decoded, w) = decode(&file).unwrap();
        assert_eq!(decoded, recipe);
        device.seed(2);
        let fresh = recipe.method.init(&recipe.backbone, &device).unwrap();
        let loaded = load_weights(fresh, w).unwrap();
        let x = Tensor::<4>::ones([2, 3, 32, 32], &device);
        let (a, b) = (model.backbone().valid().forward(x.clone()), loaded.backbone().valid().forward(x));
        let diff: f32 = (a - b).abs().max().into_scalar();
        assert_eq!(diff, 0.0, "the loaded encoder computes the same features");
    }

    #[test]
    fn bad_files_are_clear_errors() {
        assert_eq!(decode(b"PNG....").unwrap_err(), EncoderFileError::NotAnEncoderFile);
        let file = encode(&Recipe::default_shapes(), &[]);
        assert_eq!(decode(&file[..20]).unwrap_err(), EncoderFileError::Truncated);
        let (recipe, w) = decode(&file).unwrap();
        let model = recipe.method.init(&recipe.backbone, &Device::flex()).unwrap();
        assert!(load_weights(model, w).unwrap_err().to_string().contains("weights"));
    }
}
