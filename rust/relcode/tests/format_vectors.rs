//! spec/vectors/format: decode vectors decode to their recorded SHA-256 and first values;
//! reject vectors fail with their recorded error class.

use relcode::format::{FormatError, Limits, Reader};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("spec/vectors/format")
}

fn open(path: &Path, base: Option<PathBuf>) -> Result<Reader, FormatError> {
    let mut r = Reader::from_bytes(std::fs::read(path).unwrap(), Limits::default())?;
    if let Some(b) = base {
        let b = Reader::from_bytes(std::fs::read(b).unwrap(), Limits::default())?;
        r.attach_base(Arc::new(b))?;
    }
    Ok(r)
}

fn names(kind: &str) -> Vec<String> {
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("manifest.json")).unwrap()).unwrap();
    m[kind].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

#[test]
fn decode_vectors() {
    let names = names("decode");
    assert!(names.len() >= 10);
    for name in names {
        let folder = dir().join("decode");
        let side: Value =
            serde_json::from_str(&std::fs::read_to_string(folder.join(format!("{name}.json"))).unwrap())
                .unwrap();
        let base = side.get("base").map(|b| folder.join(b.as_str().unwrap()));
        let r = open(&folder.join(format!("{name}.relc")), base).unwrap_or_else(|e| panic!("{name}: {e}"));
        let d = r.decode_all().unwrap_or_else(|e| panic!("{name}: {e}"));
        let tensors = r.tensors().unwrap();
        let want = side["tensors"].as_object().unwrap();
        assert_eq!(d.tensors.len(), want.len(), "{name}");
        for (t, bytes) in &d.tensors {
            let info = &tensors[*t];
            let w = &want[&info.name];
            assert_eq!(relcode::sha256_hex(bytes), w["sha256"].as_str().unwrap(), "{name}/{}", info.name);
            assert_eq!(info.dtype.name(), w["dtype"].as_str().unwrap());
            let shape: Vec<u64> =
                w["shape"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
            assert_eq!(info.shape, shape);
            if let Some(bits) = w["first_bits"].as_array() {
                for (k, b) in bits.iter().enumerate() {
                    let got = u32::from_le_bytes(bytes[4 * k..4 * k + 4].try_into().unwrap());
                    assert_eq!(format!("{got:08x}"), b.as_str().unwrap(), "{name}/{}", info.name);
                }
            }
        }
        r.verify().unwrap();
    }
}

#[test]
fn reject_vectors() {
    let names = names("reject");
    assert!(names.len() >= 20);
    for name in names {
        let folder = dir().join("reject");
        let side: Value =
            serde_json::from_str(&std::fs::read_to_string(folder.join(format!("{name}.json"))).unwrap())
                .unwrap();
        let base = side.get("base").map(|b| folder.join(b.as_str().unwrap()));
        let res = open(&folder.join(format!("{name}.relc")), base).and_then(|r| r.verify());
        let err = res.expect_err(&name);
        assert_eq!(err.class().name(), side["error"].as_str().unwrap(), "{name}: {err}");
    }
}
