//! Which device the page computes on: WebGPU through burn's wgpu runtime, or the CPU backend
//! (flex) compiled to wasm.

use burn::tensor::Device;

#[cfg(target_arch = "wasm32")]
thread_local! {
    /// burn's wgpu runtime can be initialised once per page; later sessions reuse its device.
    static WEBGPU: std::cell::RefCell<Option<Device>> = const { std::cell::RefCell::new(None) };
}

/// The device for `backend` (`webgpu` or `cpu`) and its display name.
pub async fn device(backend: &str) -> Result<(Device, &'static str), String> {
    match backend {
        "cpu" => Ok((Device::flex(), "cpu")),
        "webgpu" => webgpu().await.map(|d| (d, "webgpu")),
        other => Err(format!("unknown backend '{other}': choose webgpu or cpu")),
    }
}

#[cfg(target_arch = "wasm32")]
async fn webgpu() -> Result<Device, String> {
    if let Some(device) = WEBGPU.with(|w| w.borrow().clone()) {
        return Ok(device);
    }
    // wgpu panics (rather than failing) where there is no `navigator.gpu`: ask first.
    let property = |object: &wasm_bindgen::JsValue, name: &str| {
        js_sys::Reflect::get(object, &name.into()).ok().filter(|v| !v.is_undefined() && !v.is_null())
    };
    if property(&js_sys::global(), "navigator").and_then(|n| property(&n, "gpu")).is_none() {
        return Err("WebGPU is not available here (no navigator.gpu); use the CPU backend".into());
    }
    let device =
        Device::wgpu_options().init_async().await.map_err(|e| format!("WebGPU is not available here ({e}); use the CPU backend"))?;
    WEBGPU.with(|w| *w.borrow_mut() = Some(device.clone()));
    Ok(device)
}

#[cfg(not(target_arch = "wasm32"))]
async fn webgpu() -> Result<Device, String> {
    Err("the webgpu backend exists in the browser build only; natively use `jem --device wgpu`".into())
}
