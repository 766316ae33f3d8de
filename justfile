# lantern-bench tasks. Every cargo call names the whole workspace so that builds, tests and
# benchmarks share one feature set (and one build of burn).

set shell := ["bash", "-euo", "pipefail", "-c"]

lantern := "target/release/lantern"

# List the recipes.
default:
    @just --list

# Build everything (release).
build:
    cargo build --release --workspace

# Run the test suite (release profile: tensor code is too slow unoptimised).
test:
    cargo test --release --workspace

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --release --workspace --all-targets -- -D warnings

# Type-check the wgpu GPU backend (builds offline; needs no GPU).
check-wgpu:
    cargo check --release --workspace --features lantern-cli/wgpu

# Criterion benchmarks of decode/verify steps and the machine's roofline.
bench *ARGS:
    cargo bench --workspace -- {{ARGS}}

# Generate images with one strategy (see `lantern generate --help`).
generate *ARGS: build
    {{lantern}} generate {{ARGS}}

# Run a sweep config end to end (records, tables, plots under results/<name>/).
sweep CONFIG: build
    {{lantern}} sweep {{CONFIG}}

# Everything CI checks.
ci: test lint check-wgpu
