//! A pretraining session driven by the page one step at a time: the core's datasets,
//! augmentations, model, loss and optimiser step, with every read from the device awaited
//! (WebGPU cannot read synchronously).

use std::cell::RefCell;
use std::rc::Rc;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use jem_core::augment::{MultiViewAugment, ViewTransform};
use jem_core::data::batch::{EpochPlan, TensorBatch, augment_batch};
use jem_core::data::cifar::{self, CifarKind};
use jem_core::data::shapes::Shapes;
use jem_core::data::{Dataset, Split};
use jem_core::eval::extract_features;
use jem_core::eval::knn::{KnnConfig, knn_accuracy};
use jem_core::eval::linear::{LinearProbeConfig, linear_probe};
use jem_core::eval::monitor::{effective_rank, per_dimension_std};
use jem_core::eval::pca::pca_2d;
use jem_core::recipe::Recipe;
use jem_core::train::Trainer;
use jem_core::{Image, encoder_file};
use js_sys::Promise;
use serde_json::json;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::backend;

/// Held-out images for kNN and the scatter plot: the last 500 of an uploaded CIFAR file, or 500
/// shapes from the test stream.
const HELD_OUT: usize = 500;

/// Held-out images whose features give the effective rank.
const RANK_IMAGES: usize = 128;

/// A model being trained (or a loaded encoder) with its data. Methods that touch the device
/// return Promises resolving to JSON strings.
#[wasm_bindgen]
pub struct Session {
    state: Rc<RefCell<State>>,
}

struct State {
    backend: &'static str,
    /// The inference device; training runs on its autodiff twin.
    device: Device,
    recipe: Recipe,
    trainer: Trainer,
    augment: MultiViewAugment,
    transform: ViewTransform,
    train: Dataset,
    test: Dataset,
    epoch: u64,
    /// Batches left in the current epoch, next last.
    batches: Vec<Vec<usize>>,
}

#[wasm_bindgen]
impl Session {
    /// Starts pretraining from `recipe` (TOML, the CLI's recipe format) on `backend` (`webgpu`
    /// or `cpu`). The data are the built-in shapes unless `cifar` holds a CIFAR-10 `.bin` file,
    /// whose last 500 images are held out for evaluation.
    pub async fn create(recipe: String, backend: String, cifar: Option<Vec<u8>>) -> Result<Session, JsError> {
        let recipe = Recipe::from_toml(&recipe).map_err(|e| JsError::new(&format!("recipe: {e}")))?;
        Self::start(recipe, None, &backend, cifar).await.map_err(|e| JsError::new(&e))
    }

    /// Loads an encoder file written by `jem export web` for inference (and more training).
    pub async fn load(encoder: Vec<u8>, backend: String, cifar: Option<Vec<u8>>) -> Result<Session, JsError> {
        let (recipe, weights) = encoder_file::decode(&encoder).map_err(|e| JsError::new(&e.to_string()))?;
        Self::start(recipe, Some(weights), &backend, cifar).await.map_err(|e| JsError::new(&e))
    }

    async fn start(recipe: Recipe, weights: Option<&[u8]>, backend: &str, cifar: Option<Vec<u8>>) -> Result<Session, String> {
        let (device, backend) = backend::device(backend).await?;
        let (train, test) = match cifar {
            Some(bytes) => {
                let all = cifar::parse(&bytes, CifarKind::Cifar10, "the uploaded file").map_err(|e| e.to_string())?;
                if all.len() < 2 * HELD_OUT {
                    return Err(format!(
                        "the uploaded file has {} images; upload at least {} (a CIFAR-10 batch has 10,000)",
                        all.len(),
                        2 * HELD_OUT
                    ));
                }
                all.hold_out(HELD_OUT)
            }
            None => {
                let shapes = Shapes::new(32, recipe.train.seed);
                (shapes.dataset(shapes_count(&recipe), Split::Train), shapes.dataset(HELD_OUT, Split::Test))
            }
        };
        if train.len() < recipe.train.batch_size {
            return Err(format!("{} training images are fewer than one batch of {}", train.len(), recipe.train.batch_size));
        }
        let augment = recipe.data.augment.build(train.images[0].width, train.images[0].height).map_err(|e| e.to_string())?;
        recipe.check_views(&augment).map_err(|e| e.to_string())?;
        let transform = augment.eval_transform();
        let train_device = device.clone().autodiff();
        train_device.seed(recipe.train.seed);
        let mut model = recipe.method.init(&recipe.backbone, &train_device).map_err(|e| e.to_string())?;
        if let Some(weights) = weights {
            model = encoder_file::load_weights(model, weights).map_err(|e| e.to_string())?;
        }
        let schedule = recipe.train.schedule(train.len() / recipe.train.batch_size);
        let trainer = Trainer::new(model, &recipe.optimizer, schedule);
        let state = State { backend, device, recipe, trainer, augment, transform, train, test, epoch: 0, batches: Vec::new() };
        Ok(Session { state: Rc::new(RefCell::new(state)) })
    }

    /// `webgpu` or `cpu`.
    pub fn backend(&self) -> String {
        self.state.borrow().backend.to_string()
    }

    /// Steps the recipe's schedule lasts (epochs × batches per epoch).
    pub fn total_steps(&self) -> usize {
        self.state.borrow().trainer.schedule.total_steps
    }

    /// Class names of the dataset.
    pub fn classes(&self) -> Vec<String> {
        self.state.borrow().train.classes.clone()
    }

    /// Training image `index` as PNG bytes (for showing neighbours).
    pub fn train_image(&self, index: usize) -> Result<Vec<u8>, JsError> {
        let state = self.state.borrow();
        state.train.images.get(index).map(Image::to_png).ok_or_else(|| JsError::new(&format!("no training image {index}")))
    }

    /// One training step. Resolves to `{"step", "epoch", "lr", "loss", "terms": {name: value},
    /// "embedding_std", "embedding_dimension_std": [per dimension]}` as JSON.
    pub fn step(&self) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let (pending, epoch) = {
                let mut s = state.borrow_mut();
                let batch = s.next_batch();
                (s.trainer.step_deferred(&batch), s.epoch)
            };
            let stats = pending.read_async().await.map_err(js_error)?;
            let terms: serde_json::Map<String, serde_json::Value> =
                stats.terms.iter().map(|(name, v)| (name.to_string(), json!(v))).collect();
            let record = json!({"step": stats.step, "epoch": epoch, "lr": stats.lr, "loss": stats.loss, "terms": terms, "embedding_std": stats.embedding_std, "embedding_dimension_std": stats.embedding_dimension_std});
            Ok(JsValue::from_str(&record.to_string()))
        })
    }

    /// Evaluates the encoder on the held-out images. Resolves to `{"knn_top1", "std" (per
    /// feature dimension, of the L2-normalised features), "mean_std", "effective_rank" (of the
    /// first 128 images' features), "pca" ([x, y] per held-out image), "labels", "classes"}` as
    /// JSON.
    pub fn evaluate(&self) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let (bank, queries) = train_and_test_features(&state).await?;
            let s = state.borrow();
            let (n, d) = (queries.1[0], queries.1[1]);
            let knn = match (&s.train.labels, &s.test.labels) {
                (Some(bank_labels), Some(query_labels)) => {
                    let config = KnnConfig { k: s.recipe.eval.knn_k.min(bank.1[0]), temperature: s.recipe.eval.knn_temperature };
                    let cpu = Device::flex();
                    let tensor = |(values, dims): (Vec<f32>, [usize; 2])| Tensor::<2>::from_data(TensorData::new(values, dims), &cpu);
                    Some(knn_accuracy(tensor(bank), bank_labels, tensor(queries.clone()), query_labels, s.train.classes.len(), config).top1)
                }
                _ => None,
            };
            let std = per_dimension_std(&queries.0, n, d);
            let mean_std = std.iter().sum::<f32>() / d.max(1) as f32;
            let pca = pca_2d(&queries.0, n, d);
            // As `jem pretrain` logs it: of the first held-out images' features (the Gram matrix
            // of all 500 would take seconds here).
            let rank_rows = n.min(RANK_IMAGES);
            let rank = effective_rank(&queries.0[..rank_rows * d], rank_rows, d);
            let record = json!({"knn_top1": knn, "std": std, "mean_std": mean_std, "effective_rank": rank, "pca": pca, "labels": s.test.labels, "classes": s.train.classes});
            Ok(JsValue::from_str(&record.to_string()))
        })
    }

    /// The second step of self-supervised learning: heads on few labels over the frozen encoder.
    /// For each count in `labels_per_class` (0: every label), the first that many training
    /// images of each class are the labelled set; kNN and a linear probe (50 epochs) are fitted
    /// on their features and scored on the held-out images. Resolves to `[{"labels_per_class",
    /// "images", "knn_top1", "linear_top1"}]` as JSON.
    pub fn probe(&self, labels_per_class: Vec<u32>) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let (bank, queries) = train_and_test_features(&state).await?;
            let s = state.borrow();
            let (Some(bank_labels), Some(query_labels)) = (&s.train.labels, &s.test.labels) else {
                return Err(js_error("these images have no labels to probe with"));
            };
            let classes = s.train.classes.len();
            let cpu = Device::flex();
            let d = bank.1[1];
            let tensor = |values: Vec<f32>, rows: usize| Tensor::<2>::from_data(TensorData::new(values, [rows, d]), &cpu);
            let mut results = Vec::new();
            for &count in &labels_per_class {
                // The first `count` images of each class, in dataset order.
                let mut taken = vec![0u32; classes];
                let chosen: Vec<usize> = (0..bank_labels.len())
                    .filter(|&i| {
                        let class = bank_labels[i] as usize;
                        let keep = count == 0 || taken[class] < count;
                        taken[class] += keep as u32;
                        keep
                    })
                    .collect();
                let features: Vec<f32> = chosen.iter().flat_map(|&i| bank.0[i * d..(i + 1) * d].iter().copied()).collect();
                let labels: Vec<u32> = chosen.iter().map(|&i| bank_labels[i]).collect();
                let knn = KnnConfig { k: s.recipe.eval.knn_k.min(chosen.len()), temperature: s.recipe.eval.knn_temperature };
                let knn = knn_accuracy(
                    tensor(features.clone(), chosen.len()),
                    &labels,
                    tensor(queries.0.clone(), queries.1[0]),
                    query_labels,
                    classes,
                    knn,
                )
                .top1;
                let config = LinearProbeConfig { epochs: 50, ..Default::default() };
                let linear = linear_probe(
                    tensor(features, chosen.len()),
                    &labels,
                    tensor(queries.0.clone(), queries.1[0]),
                    query_labels,
                    classes,
                    config,
                    &cpu.clone().autodiff(),
                )
                .top1;
                results.push(json!({"labels_per_class": count, "images": chosen.len(), "knn_top1": knn, "linear_top1": linear}));
            }
            Ok(JsValue::from_str(&serde_json::Value::Array(results).to_string()))
        })
    }

    /// Two augmented views of the first `count` held-out images through the encoder as it is
    /// now (backbone features, evaluation mode). Resolves to `{"n", "d", "z1", "z2"}` as JSON
    /// (`z1`, `z2`: row-major `[n, d]`), the input of the `lesson_*` functions. `seed` picks the
    /// views.
    pub fn view_features(&self, count: usize, seed: u32) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let features = {
                let s = state.borrow();
                let count = count.clamp(2, s.test.len());
                let indices: Vec<usize> = (0..count).collect();
                let batch = augment_batch(&s.augment, &s.test, &indices, seed as u64, 0)
                    .expect("browser datasets are decoded in memory")
                    .to_tensors(&s.device);
                let backbone = s.trainer.model().backbone().valid();
                [backbone.forward(batch.views[0].clone()), backbone.forward(batch.views[1].clone())]
            };
            let [z1, z2] = features;
            let ((z1, dims), (z2, _)) = (read_matrix(z1).await?, read_matrix(z2).await?);
            Ok(JsValue::from_str(&json!({"n": dims[0], "d": dims[1], "z1": z1, "z2": z2}).to_string()))
        })
    }

    /// Embeds `image` (PNG/JPEG/WebP/BMP bytes) and finds its `k` nearest training images by
    /// cosine similarity. Resolves to `[{"index", "similarity", "class"}]` as JSON.
    pub fn neighbours(&self, image: Vec<u8>, k: usize) -> Promise {
        let state = self.state.clone();
        future_to_promise(async move {
            let image = Image::decode(&image).map_err(|e| JsError::new(&format!("cannot read the image: {e}")))?;
            let (bank, query) = {
                let s = state.borrow();
                let single = Dataset { format: "upload".into(), images: vec![image], ..Default::default() };
                (s.features(&s.train), s.features(&single))
            };
            let (bank, query) = (read_matrix(bank).await?, read_matrix(query).await?);
            let s = state.borrow();
            let d = bank.1[1];
            let unit = |v: &[f32]| {
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                v.iter().map(|x| x / norm).collect::<Vec<f32>>()
            };
            let q = unit(&query.0);
            let mut scored: Vec<(usize, f32)> =
                bank.0.chunks(d).enumerate().map(|(i, row)| (i, unit(row).iter().zip(&q).map(|(a, b)| a * b).sum())).collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1));
            let found: Vec<serde_json::Value> = scored
                .iter()
                .take(k)
                .map(|&(index, similarity)| json!({"index": index, "similarity": similarity, "class": s.train.label(index).map(|l| s.train.classes[l as usize].clone())}))
                .collect();
            Ok(JsValue::from_str(&serde_json::Value::Array(found).to_string()))
        })
    }
}

/// Training images of a session on the built-in shapes: the recipe's count, 1,024 if it has none.
pub fn shapes_count(recipe: &Recipe) -> usize {
    if recipe.data.shapes_count == 0 { 1024 } else { recipe.data.shapes_count }
}

impl State {
    /// The next batch on the training device, starting a new epoch when one is used up.
    fn next_batch(&mut self) -> TensorBatch {
        if self.batches.is_empty() {
            if self.trainer.step > 0 {
                self.epoch += 1;
            }
            let plan = EpochPlan::new(self.train.len(), self.recipe.train.batch_size, true, true, self.recipe.train.seed, self.epoch);
            self.batches = plan.batches.into_iter().rev().collect();
        }
        let indices = self.batches.pop().expect("an epoch has at least one batch");
        augment_batch(&self.augment, &self.train, &indices, self.recipe.train.seed, self.epoch)
            .expect("browser datasets are decoded in memory")
            .to_tensors(&self.device.clone().autodiff())
    }

    /// Backbone features of `dataset` (evaluation mode, no augmentation), still on the device.
    fn features(&self, dataset: &Dataset) -> Tensor<2> {
        let backbone = self.trainer.model().backbone().valid();
        extract_features(&backbone, dataset, &self.transform, 256, &self.device).expect("browser datasets are decoded in memory")
    }
}

/// The encoder's features of the training images (the kNN bank) and of the held-out images, read
/// from the device: `(values, [N, D])` each.
async fn train_and_test_features(state: &RefCell<State>) -> Result<(Matrix, Matrix), JsValue> {
    let (bank, queries) = {
        let s = state.borrow();
        (s.features(&s.train), s.features(&s.test))
    };
    Ok((read_matrix(bank).await?, read_matrix(queries).await?))
}

/// A matrix read from the device: row-major values and `[rows, columns]`.
type Matrix = (Vec<f32>, [usize; 2]);

/// Reads a `[N, D]` tensor from the device without blocking.
async fn read_matrix(t: Tensor<2>) -> Result<Matrix, JsValue> {
    let dims = t.dims();
    let data = t.into_data_async().await.map_err(|e| js_error(format!("reading features from the device failed: {e:?}")))?;
    Ok((data.try_to_vec::<f32>().map_err(|e| js_error(format!("{e:?}")))?, dims))
}

fn js_error(message: impl AsRef<str>) -> JsValue {
    JsError::new(message.as_ref()).into()
}
