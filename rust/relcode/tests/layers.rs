//! The core's layers import one way (README, "Architecture"): `stream` → `codes` →
//! `channel`; `format` (the container) uses `codes` and the stream spec version only; `coding`
//! sits on `channel` and `format`. Unit-test modules (`#[cfg(test)]` at the end of a file)
//! may reach further up: they test through the layers above.

use std::path::Path;

const LAYERS: [&str; 5] = ["stream", "codes", "channel", "format", "coding"];

/// What each layer may name (`crate::<layer>`), besides itself; and single items of other
/// layers it may name.
fn allowed(layer: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match layer {
        "stream" => (&[], &[]),
        "codes" => (&[], &[]),
        "channel" => (&["stream", "codes"], &[]),
        "format" => (&["codes"], &["crate::stream::STREAM_VERSION"]),
        "coding" => (&["stream", "codes", "channel", "format"], &[]),
        _ => unreachable!(),
    }
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn layers_import_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut bad = Vec::new();
    for layer in LAYERS {
        let (layers, items) = allowed(layer);
        let mut files = Vec::new();
        sources(&src.join(layer), &mut files);
        assert!(!files.is_empty(), "no sources for {layer}");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            // production code: up to the first module-level test module, comments dropped
            let code = text.split("\n#[cfg(test)]").next().unwrap();
            for (n, line) in code.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for (at, _) in line.match_indices("crate::") {
                    let rest = &line[at + 7..];
                    let name: String =
                        rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if !LAYERS.contains(&name.as_str()) || name == layer || layers.contains(&name.as_str()) {
                        continue;
                    }
                    if items.iter().any(|i| line[at..].starts_with(i)) {
                        continue;
                    }
                    bad.push(format!("{}:{}: {layer} uses crate::{name}", f.display(), n + 1));
                }
            }
        }
    }
    assert!(bad.is_empty(), "imports against the layer order:\n{}", bad.join("\n"));
}
