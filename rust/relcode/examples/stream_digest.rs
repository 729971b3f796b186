//! Prints SHA-256 digests of stream outputs, to compare builds (baseline vs target-cpu=native)
//! and platforms: `cargo run --release -p relcode --example stream_digest`.

use relcode::stream::{ndtri, purpose, Backend, BackendError, Stream};

fn main() -> Result<(), BackendError> {
    let s = Stream::new(1, purpose::CANDIDATES, 2);
    let mut z = vec![0f32; 1 << 20];
    s.fill_normals(3, &mut z, Backend::Auto)?;
    let bytes: Vec<u8> = z.iter().flat_map(|x| x.to_le_bytes()).collect();
    println!("normals {}", relcode::sha256_hex(&bytes));
    let mut scalar = vec![0f32; 1 << 20];
    s.fill_normals(3, &mut scalar, Backend::Scalar)?;
    let bytes: Vec<u8> = scalar.iter().flat_map(|x| x.to_le_bytes()).collect();
    println!("normals-scalar {}", relcode::sha256_hex(&bytes));
    let u = Stream::new(1, purpose::NODES, 2);
    let x: Vec<u8> = (0..1u64 << 18).flat_map(|i| ndtri(u.uniform_f64(i)).to_le_bytes()).collect();
    println!("ndtri {}", relcode::sha256_hex(&x));
    Ok(())
}
