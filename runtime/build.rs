//! Builds `driftless-reaper` statically linked and hands it to the helper
//! to embed (see src/reaper_binary.rs for why).
//!
//! A second cargo run, with its own target directory under OUT_DIR and an
//! explicit `--target`: `crt-static` must not reach the host's build
//! scripts and proc-macros, which is what an explicit target guarantees.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(driftless_static_reaper)");
    println!("cargo::rerun-if-changed=../reaper/src");
    println!("cargo::rerun-if-changed=../reaper/Cargo.toml");
    println!("cargo::rerun-if-changed=../Cargo.lock");
    println!("cargo::rerun-if-env-changed=DRIFTLESS_ALLOW_DYNAMIC_REAPER");

    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let allow_dynamic = std::env::var_os("DRIFTLESS_ALLOW_DYNAMIC_REAPER").is_some();
    match build_static(&target) {
        Ok(binary) => {
            let bytes = std::fs::read(&binary).expect("read the static reaper");
            let mut hasher = std::hash::DefaultHasher::new();
            bytes.hash(&mut hasher);
            println!("cargo::rustc-cfg=driftless_static_reaper");
            println!("cargo::rustc-env=DRIFTLESS_STATIC_REAPER={}", binary.display());
            println!("cargo::rustc-env=DRIFTLESS_STATIC_REAPER_HASH={:016x}", hasher.finish());
        }
        Err(why) if allow_dynamic => {
            println!("cargo::warning=no static driftless-reaper ({why}); helpers will exec the dynamic one");
        }
        Err(why) => panic!(
            "cannot build the statically linked driftless-reaper: {why}\n\
             (it needs glibc's static libraries, from libc6-dev; set \
             DRIFTLESS_ALLOW_DYNAMIC_REAPER=1 to build without it)"
        ),
    }
}

fn build_static(target: &str) -> Result<PathBuf, String> {
    if !target.ends_with("-linux-gnu") {
        return Err(format!("static linking is only set up for glibc targets, not {target}"));
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let workspace = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("..");
    let target_dir = out.join("reaper-target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&workspace)
        .args(["build", "--quiet", "--offline", "--release", "-p", "driftless-reaper", "--bin", "driftless-reaper"])
        .arg("--target")
        .arg(target)
        .arg("--target-dir")
        .arg(&target_dir);
    // The outer build's settings are for the outer build.
    for var in ["RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET", "RUSTC_WORKSPACE_WRAPPER"] {
        command.env_remove(var);
    }
    // A non-PIE static executable: nothing for the loader to relocate at
    // start, so its pages stay clean and shared between reapers.
    command
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static\u{1f}-Crelocation-model=static")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols");
    // Smallest for a release build (what runs beside every container);
    // quick to build for a debug one, where only tests run it.
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let (lto, units, opt) = if release { ("true", "1", "s") } else { ("false", "16", "1") };
    command.env("CARGO_PROFILE_RELEASE_LTO", lto).env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", units).env("CARGO_PROFILE_RELEASE_OPT_LEVEL", opt);
    let status = command.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build of driftless-reaper failed ({status})"));
    }
    Ok(target_dir.join(target).join("release").join("driftless-reaper"))
}
