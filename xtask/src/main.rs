//! jem's build tasks, so that every check is one command on a fresh machine.
//!
//! - `cargo xtask test`: the whole test suite — native unit and CLI tests, the release CLI, the
//!   wasm32 build of `jem-wasm`, and the wasm-vs-native tests run by Node.
//! - `cargo xtask wasm`: builds `jem-wasm` for `wasm32-unknown-unknown` (release) and writes its
//!   JS bindings to `target/jem-wasm/{web,node}`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const WASM_TARGET: &str = "wasm32-unknown-unknown";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("wasm") => wasm().map(|_| ()),
        _ => {
            eprintln!("usage: cargo xtask <test|wasm>\n  test  run every test (native, wasm build, wasm-vs-native)\n  wasm  build jem-wasm and its JS bindings");
            std::process::exit(2)
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_path_buf()
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

/// Builds jem-wasm for wasm32 and generates web and Node bindings. Returns the output folder.
fn wasm() -> Result<PathBuf> {
    run(cargo().args(["build", "--release", "-p", "jem-wasm", "--target", WASM_TARGET]))?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let module = target_dir.join(WASM_TARGET).join("release").join("jem_wasm.wasm");
    let out = target_dir.join("jem-wasm");
    for (name, web) in [("web", true), ("node", false)] {
        let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
        bindgen.input_path(&module);
        if web { bindgen.web(true)?; } else { bindgen.nodejs(true)?; }
        bindgen.typescript(web).generate(out.join(name)).with_context(|| format!("wasm-bindgen ({name})"))?;
    }
    eprintln!("xtask: bindings in {}", out.display());
    Ok(out)
}

fn test() -> Result<()> {
    run(cargo().args(["test", "--release", "--workspace", "--exclude", "xtask"]))?;
    run(cargo().args(["build", "--release", "-p", "jem"]))?;
    let bindings = wasm()?;
    let jem = bindings.parent().expect("target dir").join("release").join("jem");
    run(Command::new("node")
        .current_dir(root())
        .args(["--test", "tests/wasm/"])
        .env("JEM_WASM_NODE", bindings.join("node").join("jem_wasm.js"))
        .env("JEM_BIN", jem))
}
