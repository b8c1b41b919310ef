//! jem in the browser: wasm-bindgen bindings over `jem-core`. Nothing is implemented twice:
//! every function here only converts arguments and calls the core.

use jem_core::Image;
use jem_core::augment::{Preset, Resolution};
use jem_core::data::shapes::Shapes;
use wasm_bindgen::prelude::*;

/// jem's version (the same string as `jem --version`).
#[wasm_bindgen]
pub fn version() -> String {
    jem_core::VERSION.to_string()
}

/// Augmentation preview as PNG bytes: the image and `views` random views of `preset`, exactly
/// what `jem augment` writes for the same arguments. Without `image` (PNG/JPEG/WebP/BMP bytes),
/// the built-in shapes image is used. `variant` is `auto`, `cifar` or `imagenet`; `size` 0 keeps
/// the preset's view size.
#[wasm_bindgen]
pub fn augment_preview(
    image: Option<Vec<u8>>,
    preset: &str,
    variant: &str,
    views: usize,
    seed: u32,
    size: usize,
    columns: usize,
) -> Result<Vec<u8>, JsError> {
    let image = match image {
        Some(bytes) => Image::decode(&bytes).map_err(|e| JsError::new(&format!("cannot read the image: {e}")))?,
        None => Shapes::preview_image(),
    };
    let preset = Preset::from_name(preset).map_err(|e| JsError::new(&e))?;
    let resolution = Resolution::resolve(variant, image.width, image.height).map_err(|e| JsError::new(&e))?;
    if views == 0 || columns == 0 {
        return Err(JsError::new("views and columns must be at least 1"));
    }
    let mut augment = preset.build(resolution);
    if size > 0 {
        augment = augment.resized(size);
    }
    Ok(augment.preview_grid(&image, views, seed as u64, columns).to_png())
}

/// Image `index` of the built-in shapes dataset at `resolution` pixels, as PNG bytes.
#[wasm_bindgen]
pub fn shapes_image(resolution: usize, index: u32) -> Vec<u8> {
    Shapes::new(resolution, 0).render(index as u64).to_png()
}
