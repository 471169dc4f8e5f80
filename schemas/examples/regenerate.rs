//! Rewrites `schemas/json/` from the object model.
//!
//! Run with `cargo run -p driftless-schemas --features generate --example regenerate` after
//! changing the model or upgrading `k8s-openapi`; commit the result.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("json");
    std::fs::create_dir_all(&dir)?;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            std::fs::remove_file(path)?;
        }
    }
    for &kind in driftless_model::Kind::DECLARABLE {
        let path = dir.join(driftless_schemas::file_name(kind));
        std::fs::write(&path, driftless_schemas::generate::render(kind))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
