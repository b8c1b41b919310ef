//! What can be wrong with a recipe, and the range checks that every part of it shares.

use thiserror::Error;

/// A recipe or method setting that cannot run. The message names the key as the recipe writes it
/// (`method.temperature`, `augment.mask_ratio`) and, where there is one, a value that would work.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// Not TOML, or a field that no part of the recipe has.
    #[error("{0}")]
    Parse(String),
    /// A value outside its range.
    #[error("{0}")]
    Value(String),
    /// A method name that no method has.
    #[error("unknown method '{name}'; choose one of {}", crate::method::METHOD_NAMES.join(", "))]
    UnknownMethod { name: String },
    /// Parts that do not fit together (e.g. masked prediction without a ViT backbone).
    #[error("{0}")]
    Mismatch(String),
}

/// `key = value` must be a positive, finite number.
pub fn positive(key: &str, value: f32) -> Result<(), ConfigError> {
    match value > 0.0 && value.is_finite() {
        true => Ok(()),
        false => Err(ConfigError::Value(format!("{key} = {value} must be a positive number"))),
    }
}

/// `key` must be at least 1.
pub fn at_least_one(key: &str, value: usize) -> Result<(), ConfigError> {
    match value {
        0 => Err(ConfigError::Value(format!("{key} must be at least 1"))),
        _ => Ok(()),
    }
}

/// A queue of `size` entries holds a whole number of batches (it is filled a batch at a time).
pub fn whole_batches(key: &str, size: usize, batch_size: usize) -> Result<(), ConfigError> {
    match size % batch_size {
        0 => Ok(()),
        _ => Err(ConfigError::Value(format!(
            "{key} = {size} is not a multiple of train.batch_size = {batch_size}; use e.g. {}",
            size.div_ceil(batch_size).max(1) * batch_size
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_name_the_key_and_a_fix() {
        assert_eq!(positive("method.temperature", 0.1), Ok(()));
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert!(positive("method.temperature", bad).unwrap_err().to_string().starts_with("method.temperature = "));
        }
        assert_eq!(at_least_one("method.top_k", 0).unwrap_err().to_string(), "method.top_k must be at least 1");
        assert_eq!(whole_batches("method.queue_size", 4096, 256), Ok(()));
        assert_eq!(
            whole_batches("method.queue_size", 1000, 256).unwrap_err().to_string(),
            "method.queue_size = 1000 is not a multiple of train.batch_size = 256; use e.g. 1024"
        );
        assert_eq!(ConfigError::UnknownMethod { name: "simclr2".into() }.to_string().split(';').next(), Some("unknown method 'simclr2'"));
    }
}
