//! Loading and saving official checkpoint files by their own key names.
//!
//! Reads torch zip/pickle files (`{"model": …}`, `{"module": …}`, `{"state_dict": …}` wrappers
//! or a bare state dict, as LlamaGen's loaders accept) and `.safetensors` files through
//! burn-store. Before anything is applied, the file's keys and shapes are checked against the
//! module: every missing key, unexpected key and shape mismatch is reported at once, naming the
//! file, the key and both shapes in the file's (PyTorch) layout. Float tensors of any width are
//! cast to the module's float type.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use burn::module::Module;
use burn::store::{
    BurnToPyTorchAdapter, FloatCastAdapter, ModuleAdapter, ModuleSnapshot, ModuleStore,
    PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};
use burn::tensor::DType;

use crate::error::{KeyProblem, ModelError};

/// On-disk checkpoint container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `torch.save` output (zip or legacy pickle).
    Pytorch,
    /// Hugging Face safetensors.
    Safetensors,
}

/// How one model's keys relate to its file: renames and tolerated extra keys.
#[derive(Debug, Clone, Copy)]
pub struct KeyLayout {
    /// Human name of the model, used in errors ("GPT", "VQ tokenizer", "drafter").
    pub model: &'static str,
    /// `(file prefix, module prefix)` renames, applied to the start of a key.
    pub renames: &'static [(&'static str, &'static str)],
    /// File keys that may be present and are not parameters (buffers of the official code);
    /// a trailing `*` matches any suffix, a leading `*` any prefix.
    pub ignored: &'static [&'static str],
}

impl KeyLayout {
    fn file_to_module(&self, key: &str) -> String {
        for (file, module) in self.renames {
            if let Some(rest) = key.strip_prefix(file) {
                return format!("{module}{rest}");
            }
        }
        key.to_string()
    }

    fn module_to_file(&self, key: &str) -> String {
        for (file, module) in self.renames {
            if let Some(rest) = key.strip_prefix(module) {
                return format!("{file}{rest}");
            }
        }
        key.to_string()
    }

    fn is_ignored(&self, key: &str) -> bool {
        self.ignored.iter().any(|pat| {
            if let Some(prefix) = pat.strip_suffix('*') {
                key.starts_with(prefix)
            } else if let Some(suffix) = pat.strip_prefix('*') {
                key.ends_with(suffix)
            } else {
                key == *pat
            }
        })
    }
}

/// Detects the container from the first bytes (extensions are not trusted).
pub fn detect_format(path: &Path) -> Result<Format, ModelError> {
    let mut head = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let len = file.metadata().map_err(|e| ModelError::io(path, e))?.len();
    let n = file.read(&mut head).map_err(|e| ModelError::io(path, e))?;
    let not = |reason: &str| ModelError::NotACheckpoint {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if n >= 4 && &head[..4] == b"PK\x03\x04" {
        return Ok(Format::Pytorch);
    }
    if n >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1]) {
        return Ok(Format::Pytorch);
    }
    if n >= 9 {
        let header = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        if head[8] == b'{' && header > 1 && header + 8 <= len {
            return Ok(Format::Safetensors);
        }
    }
    Err(not(if n == 0 {
        "the file is empty"
    } else {
        "no zip, pickle or safetensors header"
    }))
}

/// Tensor names and shapes (file layout) of a checkpoint, after removing a state-dict wrapper.
pub fn list_tensors(path: &Path) -> Result<BTreeMap<String, (Vec<usize>, DType)>, ModelError> {
    let (_, tensors) = read_tensors(path, None)?;
    Ok(tensors
        .into_iter()
        .map(|(k, t)| (k, (t.shape.to_vec(), t.dtype)))
        .collect())
}

/// A tensor as a store lists it: name, dtype, shape and where its bytes are (safetensors files
/// are memory-mapped, so nothing is read until [`snapshot_data`]).
pub(crate) type PackTensor = burn::store::burn_pack::Tensor;

/// Every tensor of a checkpoint file, unread (see [`PackTensor`]): a loader that takes them one
/// by one holds one converted tensor at a time, not the whole file.
pub(crate) fn read_tensor_snapshots(
    path: &Path,
) -> Result<BTreeMap<String, PackTensor>, ModelError> {
    Ok(read_tensors(path, None)?.1)
}

/// Reads the bytes of one listed tensor of `path`.
pub(crate) fn snapshot_data(
    path: &Path,
    key: &str,
    t: PackTensor,
) -> Result<burn::tensor::TensorData, ModelError> {
    burn::store::bridge::into_data(t)
        .map_err(|e| store_error(path, format!("tensor '{key}': {e:?}")))
}

fn store_error(path: &Path, e: impl std::fmt::Display) -> ModelError {
    let reason = if is_torchscript(path) {
        format!(
            "a TorchScript archive (such as OpenAI's CLIP `ViT-B-32.pt`), whose weights this reader \
             cannot take apart; save them once as a state dict with \
             `torch.save(torch.jit.load(path, map_location=\"cpu\").state_dict(), out)` ({e})"
        )
    } else {
        e.to_string()
    };
    ModelError::NotACheckpoint {
        path: path.to_path_buf(),
        reason,
    }
}

/// Whether a zip checkpoint is a TorchScript archive: its central directory (at the end of the
/// file) lists `constants.pkl` or a `code/` folder.
fn is_torchscript(path: &Path) -> bool {
    use std::io::{Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let tail = len.min(1 << 20);
    let mut buf = vec![0u8; tail as usize];
    if file.seek(SeekFrom::Start(len - tail)).is_err() || file.read_exact(&mut buf).is_err() {
        return false;
    }
    let has = |needle: &[u8]| buf.windows(needle.len()).any(|w| w == needle);
    has(b"/constants.pkl") || has(b"/code/__torch__")
}

/// Reads every tensor, stripping the first wrapper LlamaGen's loader would use.
fn read_tensors(
    path: &Path,
    rename: Option<&dyn Fn(&str) -> String>,
) -> Result<(Format, BTreeMap<String, PackTensor>), ModelError> {
    let format = detect_format(path)?;
    let raw: BTreeMap<String, PackTensor> = match format {
        Format::Safetensors => SafetensorsStore::from_file(path)
            .get_all_tensors()
            .map_err(|e| store_error(path, e))?
            .clone(),
        Format::Pytorch => {
            let keys = PytorchStore::from_file(path)
                .keys()
                .map_err(|e| store_error(path, e))?;
            let wrapper = ["model", "module", "state_dict"]
                .into_iter()
                .find(|w| keys.iter().any(|k| k.starts_with(&format!("{w}."))));
            let mut store = PytorchStore::from_file(path);
            if let Some(w) = wrapper {
                store = store.with_top_level_key(w);
            }
            store
                .get_all_tensors()
                .map_err(|e| store_error(path, e))?
                .clone()
        }
    };
    let tensors = raw
        .into_iter()
        .map(|(k, mut t)| {
            let k = rename.map_or(k.clone(), |r| r(&k));
            t.name = k.clone();
            (k, t)
        })
        .collect();
    Ok((format, tensors))
}

/// Loads `path` into `module`, refusing any key or shape disagreement (see the module docs).
pub fn load_module<M: Module>(module: M, path: &Path, layout: &KeyLayout) -> Result<M, ModelError> {
    let renames = KeyRenames {
        to_module: &|k| layout.file_to_module(k),
        to_file: &|k| layout.module_to_file(k),
    };
    load_module_renamed(module, path, layout, &renames)
}

/// Key renames that prefixes cannot express (e.g. a level index counted from the other end):
/// file key → module key and back (for messages).
pub struct KeyRenames<'a> {
    /// File key → module key.
    pub to_module: &'a dyn Fn(&str) -> String,
    /// Module key → file key.
    pub to_file: &'a dyn Fn(&str) -> String,
}

/// [`load_module`] with `renames` in place of the layout's prefix renames (the layout still
/// names the model and its ignored keys, in the file's naming).
pub fn load_module_renamed<M: Module>(
    mut module: M,
    path: &Path,
    layout: &KeyLayout,
    renames: &KeyRenames<'_>,
) -> Result<M, ModelError> {
    let (_, file) = read_tensors(path, Some(renames.to_module))?;
    let expected: BTreeMap<String, Vec<usize>> = module
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
        .into_iter()
        .map(|t| (t.name.clone(), t.shape.to_vec()))
        .collect();
    let mut problems = Vec::new();
    for (key, want) in &expected {
        match file.get(key) {
            None => problems.push(KeyProblem::Missing {
                key: (renames.to_file)(key),
                expected: want.clone(),
            }),
            Some(t) if t.shape.as_slice() != want.as_slice() => {
                problems.push(KeyProblem::ShapeMismatch {
                    key: (renames.to_file)(key),
                    expected: want.clone(),
                    found: t.shape.to_vec(),
                })
            }
            Some(_) => {}
        }
    }
    for (key, t) in &file {
        let file_key = (renames.to_file)(key);
        if !expected.contains_key(key) && !layout.is_ignored(&file_key) {
            problems.push(KeyProblem::Unexpected {
                key: file_key,
                found: t.shape.to_vec(),
            });
        }
    }
    if !problems.is_empty() {
        return Err(ModelError::KeyMismatch {
            path: path.to_path_buf(),
            model: layout.model.to_string(),
            problems,
        });
    }
    let tensors: Vec<PackTensor> = file
        .into_iter()
        .filter(|(k, _)| expected.contains_key(k))
        .map(|(_, t)| t)
        .collect();
    let adapter = PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32));
    let result = module.apply(tensors, None, Some(Box::new(adapter)), true);
    if !result.errors.is_empty() || result.applied.len() != expected.len() {
        return Err(ModelError::Config {
            source_name: path.display().to_string(),
            message: format!("loading the {} failed:\n{result}", layout.model),
        });
    }
    Ok(module)
}

/// Saves `module` as safetensors with the official key names and PyTorch layouts, so that the
/// file loads both here and in the official code.
pub fn save_module<M: Module>(
    module: &M,
    path: &Path,
    layout: &KeyLayout,
) -> Result<(), ModelError> {
    save_module_as(module, path, layout, false)
}

/// Like [`save_module`], with float tensors stored as f16 when `half` is set (loading casts them
/// back to f32).
pub fn save_module_as<M: Module>(
    module: &M,
    path: &Path,
    layout: &KeyLayout,
    half: bool,
) -> Result<(), ModelError> {
    let tensors = module.collect(None, Some(Box::new(BurnToPyTorchAdapter)), true);
    let mut flat: Vec<(String, burn::tensor::TensorData)> = Vec::with_capacity(tensors.len());
    for t in tensors {
        let key = layout.module_to_file(&t.name);
        let data = burn::store::bridge::into_data(t).map_err(|e| ModelError::Config {
            source_name: path.display().to_string(),
            message: format!("cannot read tensor '{key}': {e:?}"),
        })?;
        let data = if half && data.dtype() == DType::F32 {
            data.convert::<burn::tensor::f16>()
        } else {
            data
        };
        flat.push((key, data));
    }
    write_safetensors(path, &flat)
}

/// Writes named tensors as a safetensors file (f32, f16, i64 or u8 data).
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, burn::tensor::TensorData)],
) -> Result<(), ModelError> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    let mut blobs: Vec<&[u8]> = Vec::new();
    let mut sorted: Vec<&(String, burn::tensor::TensorData)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, data) in &sorted {
        let dtype = match data.dtype() {
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::I64 => "I64",
            DType::I32 => "I32",
            DType::U16 => "U16",
            DType::U8 => "U8",
            other => {
                return Err(ModelError::Input(format!(
                    "cannot write tensor '{key}' of dtype {other:?} to safetensors"
                )))
            }
        };
        let bytes = data.as_bytes();
        header.insert(
            key.clone(),
            serde_json::json!({
                "dtype": dtype,
                "shape": data.shape().to_vec(),
                "data_offsets": [offset, offset + bytes.len()],
            }),
        );
        offset += bytes.len();
        blobs.push(bytes);
    }
    let mut head = serde_json::to_vec(&serde_json::Value::Object(header)).expect("json");
    while !head.len().is_multiple_of(8) {
        head.push(b' ');
    }
    let tmp = path.with_extension("safetensors.tmp");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        f.write_all(&(head.len() as u64).to_le_bytes())?;
        f.write_all(&head)?;
        for b in blobs {
            f.write_all(b)?;
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| ModelError::io(path, e))
}

/// Reads named tensors of a safetensors or torch file as plain data (for references, tables, …).
pub fn read_tensor_data(
    path: &Path,
) -> Result<BTreeMap<String, burn::tensor::TensorData>, ModelError> {
    let (_, tensors) = read_tensors(path, None)?;
    tensors
        .into_iter()
        .map(|(k, t)| {
            burn::store::bridge::into_data(t)
                .map(|d| (k.clone(), d))
                .map_err(|e| store_error(path, format!("tensor '{k}': {e:?}")))
        })
        .collect()
}

/// A short, content-sensitive identity of a file: its name, length and an FNV-1a hash of its
/// first and last 64 KiB (replaced weights get a new one).
pub fn file_fingerprint(p: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(p) else {
        return format!("{}:?", p.display());
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buf = vec![0u8; 65536.min(len as usize)];
    let _ = f.read_exact(&mut buf);
    let mut tail = vec![0u8; 65536.min(len as usize)];
    let _ = f
        .seek(SeekFrom::End(-(tail.len() as i64)))
        .and_then(|_| f.read_exact(&mut tail));
    buf.extend(tail);
    format!(
        "{}:{len}:{:016x}",
        p.file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
        fnv1a(&buf)
    )
}

/// FNV-1a 64-bit hash.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
