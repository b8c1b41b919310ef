//! jem in the browser: wasm-bindgen bindings over `jem-core`. Nothing is implemented twice:
//! every function here only converts arguments and calls the core.
//!
//! - previews: [`augment_preview`] (a preset, as `jem augment`), [`augment_lab`] (any recipe
//!   augmentation), [`shapes_image`];
//! - recipes: [`builtin_recipe`], [`recipe_with`];
//! - training, evaluation and inference: [`session::Session`], on WebGPU or the CPU;
//! - the tutorial's losses on a given batch: [`lesson`] (`lesson_infonce`, `lesson_vicreg`, …).

mod backend;
pub mod lesson;
mod session;

use jem_core::Image;
use jem_core::augment::{Preset, Resolution};
use jem_core::data::shapes::Shapes;
use jem_core::recipe::{AugmentConfig, Recipe};
use wasm_bindgen::prelude::*;

pub use lesson::*;
pub use session::Session;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

// The linker's function that runs every static constructor of the module (cubecl registers its
// IR dialects through `inventory`, which uses them).
#[cfg(target_family = "wasm")]
unsafe extern "C" {
    fn __wasm_call_ctors();
}

/// Runs when the module loads: runs the static constructors, once, and makes a panic reach the
/// browser console with its message and place (instead of a bare "unreachable executed").
#[wasm_bindgen(start)]
pub fn start() {
    // A module that never calls `__wasm_call_ctors` itself is linked "command-style": wasm-ld
    // then runs every constructor again at the entry of *every* export, and a WebGPU step enters
    // the module hundreds of times (each buffer-map callback, each JS object handed over). That
    // took 96 % of a step's main-thread time in Chromium (about 6 s of 6.2 s on SwiftShader) and
    // kept the page from answering clicks. Calling it here, once, turns that wrapping off.
    #[cfg(target_family = "wasm")]
    // SAFETY: the constructors are `inventory` registrations, idempotent, and this is the first
    // call into the module after instantiation (wasm-bindgen runs the start function first).
    unsafe {
        __wasm_call_ctors()
    };
    std::panic::set_hook(Box::new(|info| console_error(&format!("jem panicked: {info}"))));
}

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
    let preset = Preset::from_name(preset).map_err(|e| JsError::new(&e.to_string()))?;
    let resolution = Resolution::resolve(variant, image.width, image.height).map_err(|e| JsError::new(&e.to_string()))?;
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

/// The class name of shapes image `index` (as [`shapes_image`] draws it).
#[wasm_bindgen]
pub fn shapes_class(index: u32) -> String {
    let shapes = Shapes::new(32, 0);
    shapes.class_names()[shapes.label(index as u64) as usize].clone()
}

/// Augmentation lab: PNG bytes of the image (or the built-in shapes image) resized to the view
/// size, then of `views` random views of the augmentation `config`, given as JSON with the
/// fields of a recipe's `[data] augment` table (`preset`, `crop_scale`, `jitter`, `grayscale_p`,
/// `local_crops`, `mask_ratio`, …). Views cycle through the pipeline's transforms (global views
/// first, then local crops); masked patches are grey.
#[wasm_bindgen]
pub fn augment_lab(image: Option<Vec<u8>>, config: &str, views: usize, seed: u32) -> Result<js_sys::Array, JsError> {
    let image = match image {
        Some(bytes) => Image::decode(&bytes).map_err(|e| JsError::new(&format!("cannot read the image: {e}")))?,
        None => Shapes::preview_image(),
    };
    let config = augment_config(config)?;
    let augment = config.build(image.width, image.height).map_err(|e| JsError::new(&e.to_string()))?;
    let png = |img: Image| js_sys::Uint8Array::from(&img.to_png()[..]);
    let tiles = js_sys::Array::of1(&png(augment.preview_original(&image)));
    let n = augment.views.len();
    for k in 0..views {
        tiles.push(&png(augment.preview(&image, seed as u64, 0, (k / n) as u64, k % n)));
    }
    Ok(tiles)
}

/// Sizes in pixels of the views of an augmentation `config` (JSON, as for [`augment_lab`]) for
/// an image of `width × height`: global views first, then local crops.
#[wasm_bindgen]
pub fn augment_view_sizes(config: &str, width: usize, height: usize) -> Result<Vec<u32>, JsError> {
    let config = augment_config(config)?;
    let augment = config.build(width, height).map_err(|e| JsError::new(&e.to_string()))?;
    Ok(augment.views.iter().map(|v| v.size as u32).collect())
}

/// The lab's augmentation settings: JSON with the fields of a recipe's `[data] augment` table.
fn augment_config(json: &str) -> Result<AugmentConfig, JsError> {
    serde_json::from_str(json).map_err(|e| JsError::new(&format!("augmentation settings: {e}")))
}

/// A preset's settings for the lab's sliders, as JSON: the first view's `crop_scale`, `jitter`,
/// `jitter_p`, `grayscale_p`, `blur_p`, `solarize_p`, plus `global_size`, `local_crops` and
/// `local_size` (3/7 of the global size when the preset has no local crops).
#[wasm_bindgen]
pub fn augment_defaults(preset: &str, variant: &str) -> Result<String, JsError> {
    let preset = Preset::from_name(preset).map_err(|e| JsError::new(&e.to_string()))?;
    let resolution = Resolution::resolve(variant, 32, 32).map_err(|e| JsError::new(&e.to_string()))?;
    let augment = preset.build(resolution);
    let first = &augment.views[0];
    let locals: Vec<_> = augment.views.iter().filter(|v| v.size != first.size).collect();
    let local_size = locals.first().map_or(first.size * 3 / 7, |v| v.size);
    Ok(serde_json::json!({
        "crop_scale": [first.crop_scale.0, first.crop_scale.1],
        "jitter": first.jitter,
        "jitter_p": first.jitter_p,
        "grayscale_p": first.grayscale_p,
        "blur_p": first.blur_p,
        "solarize_p": first.solarize_p,
        "global_size": first.size,
        "local_crops": locals.len(),
        "local_size": local_size,
    })
    .to_string())
}

/// The augmentation settings (JSON, as for [`augment_lab`]) as the TOML line a recipe takes.
#[wasm_bindgen]
pub fn augment_toml(config: &str) -> Result<String, JsError> {
    let config = augment_config(config)?;
    // Through JSON, whose f32 printing is shortest-round-trip (0.8, not 0.800000011920929).
    let mut json = serde_json::to_value(&config).map_err(|e| JsError::new(&e.to_string()))?;
    if let serde_json::Value::Object(fields) = &mut json {
        fields.retain(|_, v| !v.is_null());
    }
    let table = toml::Value::try_from(json).map_err(|e| JsError::new(&e.to_string()))?;
    Ok(format!("augment = {table}"))
}

/// A recipe of `recipes/browser/` (`simsiam`, `vicreg`, `simclr`, `barlow_twins`) as TOML.
#[wasm_bindgen]
pub fn builtin_recipe(method: &str) -> Result<String, JsError> {
    Ok(match method {
        "simsiam" => include_str!("../../recipes/browser/simsiam.toml"),
        "vicreg" => include_str!("../../recipes/browser/vicreg.toml"),
        "simclr" => include_str!("../../recipes/browser/simclr.toml"),
        "barlow_twins" => include_str!("../../recipes/browser/barlow_twins.toml"),
        other => return Err(JsError::new(&format!("no browser recipe for '{other}'"))),
    }
    .to_string())
}

/// `recipe` (TOML) with `overrides` (JSON, merged table by table) applied, as TOML; e.g.
/// `{"method": {"stop_gradient": false}, "train": {"batch_size": 32}}`. A `method` with another
/// `name` replaces the method table instead (`{"method": {"name": "rotnet"}}`). The result is
/// validated.
#[wasm_bindgen]
pub fn recipe_with(recipe: &str, overrides: &str) -> Result<String, JsError> {
    let recipe = Recipe::from_toml(recipe).map_err(|e| JsError::new(&format!("recipe: {e}")))?;
    let mut value = serde_json::to_value(&recipe).map_err(|e| JsError::new(&e.to_string()))?;
    let overrides: serde_json::Value = serde_json::from_str(overrides).map_err(|e| JsError::new(&format!("overrides: {e}")))?;
    let new_method = overrides.pointer("/method/name").is_some_and(|name| Some(name) != value.pointer("/method/name"));
    if new_method {
        value["method"] = serde_json::Value::Null;
    }
    merge(&mut value, overrides);
    let merged: Recipe = serde_json::from_value(value).map_err(|e| JsError::new(&format!("recipe: {e}")))?;
    merged.validate().map_err(|e| JsError::new(&e.to_string()))?;
    Ok(merged.to_toml())
}

/// What a browser session of `recipe` (TOML) will run, as JSON: `{"method", "batch_size",
/// "epochs", "images" (training images), "steps_per_epoch", "total_steps"}`. On the built-in
/// shapes (a CIFAR upload has its own image count).
#[wasm_bindgen]
pub fn recipe_info(recipe: &str) -> Result<String, JsError> {
    let recipe = Recipe::from_toml(recipe).map_err(|e| JsError::new(&format!("recipe: {e}")))?;
    let images = session::shapes_count(&recipe);
    let steps_per_epoch = images / recipe.train.batch_size;
    Ok(serde_json::json!({
        "method": recipe.method.name(),
        "batch_size": recipe.train.batch_size,
        "epochs": recipe.train.epochs,
        "images": images,
        "steps_per_epoch": steps_per_epoch,
        "total_steps": recipe.train.schedule(steps_per_epoch).total_steps,
    })
    .to_string())
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (key, value) in b {
                merge(a.entry(key).or_insert(serde_json::Value::Null), value);
            }
        }
        (slot, value) => *slot = value,
    }
}

/// Checks a CIFAR-10 `.bin` file called `name` (as the trainer will read it) and returns its
/// image count.
#[wasm_bindgen]
pub fn cifar_image_count(bytes: &[u8], name: &str) -> Result<usize, JsError> {
    let dataset =
        jem_core::data::cifar::parse(bytes, jem_core::data::cifar::CifarKind::Cifar10, name).map_err(|e| JsError::new(&e.to_string()))?;
    Ok(dataset.len())
}
