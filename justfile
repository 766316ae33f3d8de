# lantern-bench tasks. Every cargo call names the whole workspace and the same features so that
# builds, tests and benchmarks share one feature set (and one build of burn).

set shell := ["bash", "-euo", "pipefail", "-c"]

# Cargo features of every recipe: `LANTERN_FEATURES=lantern-cli/wgpu just test` (CI's one feature
# set) builds the wgpu backend in; the CPU tests still run on the CPU (`auto` skips software GPUs).
features := env("LANTERN_FEATURES", "")
cargo_features := if features == "" { "" } else { "--features " + features }

# The build folder cargo uses (CARGO_TARGET_DIR, a config's build.target-dir, or target/).
target_dir := `cargo metadata --format-version 1 --no-deps 2>/dev/null | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p'`
lantern := quote(target_dir / "release" / "lantern")

# List the recipes.
default:
    @just --list

# Build everything (release).
build:
    cargo build --release --workspace {{cargo_features}}

# Run the test suite (release profile: tensor code is too slow unoptimised), then the host engine's
# fixture tests again on the narrower kernel families this CPU can also run. Each crate has one
# integration-test binary, `it`; its modules are the former test files (filter: `-- host_engine::`).
test:
    cargo test --release --workspace {{cargo_features}}
    if grep -q avx512f /proc/cpuinfo 2>/dev/null; then LANTERN_CPU_ISA=avx2 cargo test --release --workspace {{cargo_features}} --test it -- host_engine::; fi
    LANTERN_CPU_ISA=portable cargo test --release --workspace {{cargo_features}} --test it -- host_engine::

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --release --workspace --all-targets {{cargo_features}} -- -D warnings

# Type-check the wgpu GPU backend (builds offline; needs no GPU).
check-wgpu:
    cargo check --release --workspace --features lantern-cli/wgpu

# The GPU path through wgpu, run on the Vulkan device present (in CI lavapipe, Mesa's Vulkan on
# the CPU: `apt-get install mesa-vulkan-drivers libvulkan1`): the fixture tests on that device
# (logits, greedy generations, VQ, tree verification, every strategy kind, timing) and the smoke
# sweep, one image per strategy, whose records must name the backend and adapter. A correctness
# run, not GPU speed.
# It leaves a wgpu build of `lantern` in target/release (`just build` restores the CPU one).
test-wgpu:
    LANTERN_TEST_BACKEND=wgpu cargo test --release --workspace --features lantern-cli/wgpu --test it -- fixture_gpt:: fixture_vq:: tree_verify:: fixture_strategies:: fixture_chameleon:: fixture_vqgan::
    cargo build --release --workspace --features lantern-cli/wgpu
    rm -rf {{target_dir}}/wgpu-smoke
    {{lantern}} sweep configs/smoke.toml --backend wgpu --results {{target_dir}}/wgpu-smoke --set data.seeds=1 --set 'data.classes=[3]'
    grep -q '"backend":"wgpu"' {{target_dir}}/wgpu-smoke/smoke/journal.jsonl
    grep -o '"device":"wgpu: [^"]*"' {{target_dir}}/wgpu-smoke/smoke/journal.jsonl | sort -u

# LibTorch (burn's `tch` backend) on the CPU, built offline against the PyTorch wheel's libtorch
# 2.9.0: the fixture tests with LANTERN_TEST_BACKEND=tch-cpu. Not in CI (the wheel and its CUDA
# dependencies are ~3 GB); run it before a release. Once:
#   python3 -m venv .venv-torch && .venv-torch/bin/pip install torch==2.9.0
test-tch VENV=(justfile_directory() / ".venv-torch"):
    export LD_LIBRARY_PATH="$({{VENV}}/bin/python -c 'import pathlib, torch; print(pathlib.Path(torch.__file__).parent / "lib")')${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; \
    VIRTUAL_ENV={{VENV}} PATH={{VENV}}/bin:$PATH LIBTORCH_USE_PYTORCH=1 LANTERN_TEST_BACKEND=tch-cpu cargo test --release --workspace --features lantern-cli/tch --test it -- fixture_gpt:: fixture_vq:: tree_verify:: fixture_strategies:: fixture_chameleon:: fixture_vqgan::

# The engine benchmark (`lantern bench`): AR step, tree verifies and drafter passes on every engine
# and weight storage, against the AR step and the machine's floor; `--models custom --gpt … --gpt-config …`
# for any checkpoint.
bench-engine *ARGS: build
    {{lantern}} bench {{ARGS}}

# Criterion benchmarks of decode/verify steps (both engines) and the machine's roofline.
bench *ARGS:
    cargo bench --workspace {{cargo_features}} -- {{ARGS}}

# Generate images with one strategy (see `lantern generate --help`).
generate *ARGS: build
    {{lantern}} generate {{ARGS}}

# Run a sweep end to end into results/<name>/ (ARGS: --set key=value, --shard I/N, --backend, --device).
[positional-arguments]
sweep CONFIG *ARGS: build
    {{lantern}} sweep "$@"

# Rebuild runs/summary Parquet, tables.md, plots and sample grids of a results folder from its journal.
report DIR: build
    {{lantern}} report {{DIR}}

# Your sweep's headline table beside the reference one: experiments/results/NAME, then results/NAME.
compare NAME: build
    {{lantern}} compare experiments/results/{{NAME}} results/{{NAME}}

# Re-render the plots of a results folder (the same as `just report`: plots come from the journal).
plots DIR: (report DIR)

# Extract the package-shipped photos the embedded models train on into data/photos/ (one class
# per photo, `tiny-peaked`) and data/themes/ (themed classes with held-out photos, `tiny`).
fetch-data:
    scripts/fetch-data.sh data/photos

# Rebuild the embedded default (VQ, GPT, drafter, reference set) from scratch into checkpoints/tiny
# (seeded; resumes an interrupted run; `just train-tiny 0.05` is a quick trial at 5% of the steps;
# `just train-tiny 1.0 tiny-peaked` rebuilds the earlier model into checkpoints/tiny-peaked).
train-tiny SCALE="1.0" PRESET="tiny": build
    test -d data/themes || scripts/fetch-data.sh data/photos
    {{lantern}} train tiny --preset {{PRESET}} --scale {{SCALE}}

# Everything CI checks, exactly as CI runs it (`.ci/run`): formatting; one release build of every
# target with the wgpu feature and clippy's lints applied as it compiles; `just test` on that build;
# `just test-wgpu` on lavapipe (installed when missing).
ci:
    bash .ci/run
