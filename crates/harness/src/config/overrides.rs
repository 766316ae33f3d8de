//! `--set key=value`: one config key replaced over the file before validation, so that a shipped
//! sweep runs on a user's own checkpoints (`--set model.gpt=/ckpt/c2i_XL_384.pt`).
//!
//! Keys are dotted paths (`model.gpt`, `data.seeds`, `strategy[1].delta`); the value is read as
//! TOML (`4`, `0.05`, `[0, 1]`, `true`, `"GPT-B"`), else taken as a string; an empty value
//! removes the key (`--set model.preset=` to name files instead of the preset).

/// Applies one `key=value` override to the parsed document.
pub fn apply(doc: &mut toml::Table, assignment: &str) -> Result<(), String> {
    let (path, raw) = assignment
        .split_once('=')
        .ok_or("expected key=value, e.g. model.gpt=/path/to/gpt.pt or data.seeds=4")?;
    let parts: Vec<&str> = path.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("'{path}' is not a dotted key such as model.gpt"));
    }
    let (last, parents) = parts.split_last().expect("non-empty");
    let mut table = doc;
    for part in parents {
        table = child(table, part)?;
    }
    let raw = raw.trim();
    if raw.is_empty() {
        table.remove(*last);
        return Ok(());
    }
    if last.contains('[') {
        return Err(format!("'{path}': the last part must be a plain key"));
    }
    table.insert(last.to_string(), value(raw));
    Ok(())
}

/// The table at `part` (`name` or `name[i]`), created when a plain section is missing.
fn child<'a>(table: &'a mut toml::Table, part: &str) -> Result<&'a mut toml::Table, String> {
    if let Some((name, index)) = part.strip_suffix(']').and_then(|p| p.split_once('[')) {
        let i: usize = index
            .parse()
            .map_err(|_| format!("'{part}': the index must be an integer, e.g. strategy[0]"))?;
        let list = match table.get_mut(name) {
            Some(toml::Value::Array(a)) => a,
            _ => return Err(format!("'{name}' is not a list of tables in this file")),
        };
        let n = list.len();
        return match list.get_mut(i) {
            Some(toml::Value::Table(t)) => Ok(t),
            _ => Err(format!(
                "'{part}': the file has {n} [[{name}]] tables (0..{n})"
            )),
        };
    }
    let entry = table
        .entry(part.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    match entry {
        toml::Value::Table(t) => Ok(t),
        _ => Err(format!("'{part}' is a value, not a section")),
    }
}

/// `raw` read as a TOML value, else as a string.
fn value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_toml_else_strings() {
        let mut doc: toml::Table =
            toml::from_str("[model]\npreset = \"tiny\"\n[[strategy]]\nkind = \"ar\"\n").unwrap();
        apply(&mut doc, "data.seeds=4").unwrap();
        apply(&mut doc, "model.gpt=/ckpt/gpt.pt").unwrap();
        apply(&mut doc, "model.preset=").unwrap();
        apply(&mut doc, "strategy[0].kind=\"sd\"").unwrap();
        apply(&mut doc, "data.classes=[1, 2]").unwrap();
        assert_eq!(doc["data"]["seeds"].as_integer(), Some(4));
        assert_eq!(doc["model"]["gpt"].as_str(), Some("/ckpt/gpt.pt"));
        assert!(doc["model"].get("preset").is_none());
        assert_eq!(doc["strategy"][0]["kind"].as_str(), Some("sd"));
        assert_eq!(doc["data"]["classes"].as_array().map(Vec::len), Some(2));
        assert!(apply(&mut doc, "strategy[3].k=1")
            .unwrap_err()
            .contains("1 [[strategy]]"));
        assert!(apply(&mut doc, "novalue").is_err());
        assert!(apply(&mut doc, "data.seeds.x=1")
            .unwrap_err()
            .contains("not a section"));
    }
}
