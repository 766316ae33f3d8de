//! Where the official-code reference fixtures live: one folder holding `llamagen-tiny/` and
//! `chameleon-tiny/` (the repository's `fixtures/`, or `$LANTERN_FIXTURES` to swap in fixtures of
//! other shapes and seeds).

use std::path::{Path, PathBuf};

/// The environment variable that names the fixture folder (the one holding `llamagen-tiny/`).
pub const ENV: &str = "LANTERN_FIXTURES";

/// The fixture folder: `$LANTERN_FIXTURES`, else `fixtures/` under the working directory when it
/// holds the fixtures (a run from the repository root), else the repository's `fixtures/` this
/// binary was built from.
pub fn root() -> PathBuf {
    if let Some(d) = std::env::var_os(ENV) {
        return PathBuf::from(d);
    }
    let local = PathBuf::from("fixtures");
    if local.join("llamagen-tiny").is_dir() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// The LlamaGen fixture (GPT c2i and t2i, VQ, reference outputs): `root()/llamagen-tiny`.
pub fn llamagen_tiny() -> PathBuf {
    root().join("llamagen-tiny")
}

/// The Chameleon-family fixture (Chameleon, Anole, Lumina-mGPT layouts, VQGAN):
/// `root()/chameleon-tiny`.
pub fn chameleon_tiny() -> PathBuf {
    root().join("chameleon-tiny")
}
