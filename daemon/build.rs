//! Rebuilds the binary when the embedded repository template changes;
//! `include_dir!` alone does not tell cargo which files it read.

fn main() {
    println!("cargo:rerun-if-changed=../repo-template");
}
