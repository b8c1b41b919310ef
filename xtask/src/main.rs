//! jem's build tasks, so that every check is one command on a fresh machine.
//!
//! - `cargo xtask lint`: formatting (`rustfmt.toml`), clippy with warnings denied on every crate
//!   for the native target and for wasm32, and the docs with broken intra-doc links denied.
//! - `cargo xtask test`: the lint step, then the whole test suite — native unit and CLI tests,
//!   the release CLI, the wasm32 build of `jem-wasm`, the wasm-vs-native tests run by Node, and
//!   the browser tests (headless Chromium driven by playwright-core against the served demo).
//! - `cargo xtask wasm`: builds `jem-wasm` for `wasm32-unknown-unknown` (release) and writes its
//!   JS bindings to `target/jem-wasm/{web,node}`.
//! - `cargo xtask web`: the browser demo in `www/dist` — pages, bindings, and the wasm module
//!   built with link-time optimisation and shrunk by `wasm-opt -Oz` (from the npm package
//!   binaryen; `npm ci` installs it).
//! - `cargo xtask serve [--port N]`: serves `www/dist` on localhost (default port 8000).
//! - `cargo xtask zoo`: re-creates the encoders the demo ships (`www/zoo/NAME.jem`) from their
//!   recipes (`recipes/zoo/NAME.toml`): `jem pretrain`, then `jem export web`.

mod serve;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const USAGE: &str = "usage: cargo xtask <command>
  lint                 check formatting, clippy (native and wasm32) and the docs
  test                 lint, then run every test (native, wasm build, wasm-vs-native, browser)
  wasm                 build jem-wasm and its JS bindings
  web [--no-opt]       build the browser demo into www/dist (--no-opt skips wasm-opt)
  serve [--port N]     serve www/dist on http://127.0.0.1:N/ (default 8000)
  zoo                  re-create www/zoo/*.jem from recipes/zoo/*.toml (pretrain + export)";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("lint") => lint(),
        Some("test") => test(),
        Some("wasm") => wasm("release").map(|_| ()),
        Some("web") => web(!args.iter().any(|a| a == "--no-opt")),
        Some("zoo") => zoo(),
        Some("serve") => {
            let port = match args.iter().position(|a| a == "--port") {
                Some(i) => args.get(i + 1).and_then(|p| p.parse().ok()).context("--port needs a number")?,
                None => 8000,
            };
            serve::serve(&root().join("www").join("dist"), port)
        }
        _ => {
            eprintln!("{USAGE}");
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

/// Builds jem-wasm for wasm32 with a cargo `profile` and generates web and Node bindings.
/// Returns the output folder.
fn wasm(profile: &str) -> Result<PathBuf> {
    run(cargo().args(["build", "--profile", profile, "-p", "jem-wasm", "--target", WASM_TARGET]))?;
    let module = target_dir().join(WASM_TARGET).join(profile).join("jem_wasm.wasm");
    let out = target_dir().join("jem-wasm");
    for (name, web) in [("web", true), ("node", false)] {
        let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
        bindgen.input_path(&module);
        if web {
            bindgen.web(true)?;
        } else {
            bindgen.nodejs(true)?;
        }
        bindgen.typescript(web).generate(out.join(name)).with_context(|| format!("wasm-bindgen ({name})"))?;
    }
    eprintln!("xtask: bindings in {}", out.display());
    Ok(out)
}

/// Builds the demo into `www/dist`: the static pages, the web bindings in `pkg/` and the wasm
/// module. With `optimize` the module is built with the `wasm-release` profile (fat LTO) and
/// shrunk by `wasm-opt -Oz`; without, it is the plain release build the tests use. Prints the
/// module's size, raw and gzipped.
/// The shipped (optimised) wasm module's size limit, gzipped.
const BUNDLE_BUDGET_GZIPPED: usize = 5_000_000;

fn web(optimize: bool) -> Result<()> {
    let bindings = wasm(if optimize { "wasm-release" } else { "release" })?;
    let www = root().join("www");
    let dist = www.join("dist");
    if dist.exists() {
        std::fs::remove_dir_all(&dist).with_context(|| format!("cannot clear {}", dist.display()))?;
    }
    copy_dir(&www, &dist, &|p| p != dist.as_path())?;
    copy_dir(&bindings.join("web"), &dist.join("pkg"), &|_| true)?;
    let module = dist.join("pkg").join("jem_wasm_bg.wasm");
    if optimize {
        let wasm_opt = root().join("node_modules").join(".bin").join("wasm-opt");
        if !wasm_opt.exists() {
            bail!("{} is missing: run `npm ci` (it installs binaryen), or `cargo xtask web --no-opt`", wasm_opt.display());
        }
        let features = [
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
            "--enable-sign-ext",
            "--enable-mutable-globals",
            "--enable-reference-types",
            "--enable-multivalue",
        ];
        run(Command::new(&wasm_opt).args(["-Oz", "--strip-debug"]).args(features).arg(&module).arg("-o").arg(&module))?;
    }
    let bytes = std::fs::read(&module)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&bytes)?;
    let gzipped = gz.finish()?.len();
    let mb = |n: usize| n as f64 / 1e6;
    eprintln!(
        "xtask: demo in {}: jem_wasm_bg.wasm {:.1} MB ({:.1} MB gzipped){}",
        dist.display(),
        mb(bytes.len()),
        mb(gzipped),
        if optimize { "" } else { ", not optimised" }
    );
    // What a visitor downloads before anything works: the shipped build must stay within it.
    if optimize && gzipped > BUNDLE_BUDGET_GZIPPED {
        bail!("the wasm module is {:.1} MB gzipped, over the budget of {:.1} MB", mb(gzipped), mb(BUNDLE_BUDGET_GZIPPED));
    }
    Ok(())
}

/// Copies the files of `from` into `to`, recursively, skipping paths `keep` rejects.
fn copy_dir(from: &Path, to: &Path, keep: &dyn Fn(&Path) -> bool) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        if !keep(&path) {
            continue;
        }
        let target = to.join(path.file_name().expect("a file name"));
        if path.is_dir() {
            copy_dir(&path, &target, keep)?;
        } else {
            std::fs::copy(&path, &target).with_context(|| format!("copying {}", path.display()))?;
        }
    }
    Ok(())
}

/// The crates that compile for the browser, linted for wasm32 too.
const WASM_CRATES: [&str; 3] = ["jem-kernels", "jem-core", "jem-wasm"];

fn lint() -> Result<()> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    let mut wasm = cargo();
    wasm.args(["clippy", "--target", WASM_TARGET]);
    for krate in WASM_CRATES {
        wasm.args(["-p", krate]);
    }
    run(wasm.args(["--", "-D", "warnings"]))?;
    run(cargo()
        .args(["doc", "--workspace", "--no-deps", "--document-private-items"])
        .env("RUSTDOCFLAGS", "-D rustdoc::broken_intra_doc_links -A rustdoc::private_intra_doc_links"))
}

/// What `cargo xtask test` needs beyond cargo, each with how to get it; stops before any build
/// when something is missing (`bash .ci/run` installs all of them).
fn check_prerequisites() -> Result<()> {
    let succeeds = |program: &str, args: &[&str]| Command::new(program).args(args).output().is_ok_and(|out| out.status.success());
    let rustup_lists = |what: &str, name: &str| {
        Command::new("rustup")
            .args([what, "list", "--installed"])
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(name))
    };
    let chromium = std::env::var_os("JEM_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    let checks = [
        (rustup_lists("target", WASM_TARGET), "the wasm32 target: rustup target add wasm32-unknown-unknown"),
        (succeeds("cargo", &["clippy", "--version"]), "clippy: rustup component add clippy"),
        (succeeds("cargo", &["fmt", "--version"]), "rustfmt: rustup component add rustfmt"),
        (succeeds("node", &["--version"]), "Node.js and npm: apt-get install nodejs npm"),
        (root().join("node_modules").join("playwright-core").exists(), "the npm dev tools: npm ci"),
        (chromium.exists(), "Chromium: apt-get install chromium (or set JEM_CHROMIUM=/path/to/chromium)"),
    ];
    let missing: Vec<&str> = checks.iter().filter(|(present, _)| !present).map(|(_, how)| *how).collect();
    if !missing.is_empty() {
        bail!("cargo xtask test needs:\n  {}\n(`bash .ci/run` installs all of them on Debian)", missing.join("\n  "));
    }
    Ok(())
}

fn test() -> Result<()> {
    check_prerequisites()?;
    lint()?;
    run(cargo().args(["test", "--release", "--workspace", "--exclude", "xtask"]))?;
    run(cargo().args(["test", "-p", "xtask"]))?;
    run(cargo().args(["build", "--release", "-p", "jem"]))?;
    web(false)?;
    let bindings = target_dir().join("jem-wasm");
    let jem = target_dir().join("release").join("jem");
    run(Command::new("node")
        .current_dir(root())
        .args(["--test", "--test-concurrency=1", "tests/wasm/", "tests/browser/"])
        .env("JEM_WASM_NODE", bindings.join("node").join("jem_wasm.js"))
        .env("JEM_BIN", jem)
        .env("JEM_XTASK", std::env::current_exe()?))
}

/// Each `recipes/zoo/NAME.toml`, pretrained on one thread (as the browser recipes were tuned,
/// and repeatable on one machine) into `target/zoo/NAME`, exported to `www/zoo/NAME.jem`.
fn zoo() -> Result<()> {
    run(cargo().args(["build", "--release", "-p", "jem"]))?;
    let jem = target_dir().join("release").join("jem");
    let mut recipes: Vec<PathBuf> = std::fs::read_dir(root().join("recipes").join("zoo"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    recipes.sort();
    for recipe in recipes {
        let name = recipe.file_stem().context("a recipe file name")?.to_string_lossy().into_owned();
        let run_dir = target_dir().join("zoo").join(&name);
        let _ = std::fs::remove_dir_all(&run_dir);
        let mut pretrain = Command::new(&jem);
        pretrain.current_dir(root()).env("RAYON_NUM_THREADS", "1").arg("pretrain").arg("--recipe").arg(&recipe).arg("--out").arg(&run_dir);
        run(&mut pretrain)?;
        let out = root().join("www").join("zoo").join(format!("{name}.jem"));
        std::fs::create_dir_all(out.parent().expect("www/zoo"))?;
        run(Command::new(&jem).current_dir(root()).arg("export").arg("web").arg("--checkpoint").arg(&run_dir).arg("--out").arg(&out))?;
    }
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}
