//! Rayon pools by thread count, built once and cached, so `threads=n` costs nothing after
//! the first call. Results never depend on the pool: work is split in fixed chunks.

use pyo3::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

fn pools() -> &'static Mutex<HashMap<usize, Arc<rayon::ThreadPool>>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    POOLS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Runs `f` with the GIL released, on the global pool (`threads` = None or 0) or on a
/// cached pool of exactly `threads` threads.
pub fn run<T, F>(py: Python<'_>, threads: Option<usize>, f: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    match threads {
        None | Some(0) => Ok(py.detach(f)),
        Some(n) => {
            if n > 1024 {
                return Err(crate::errors::input_error(format!("threads must be at most 1024, got {n}")));
            }
            let pool = {
                let mut map = pools().lock().unwrap_or_else(|e| e.into_inner());
                match map.get(&n) {
                    Some(p) => p.clone(),
                    None => {
                        let p = rayon::ThreadPoolBuilder::new().num_threads(n).build().map_err(|e| {
                            crate::errors::input_error(format!("cannot start {n} threads: {e}"))
                        })?;
                        let p = Arc::new(p);
                        map.insert(n, p.clone());
                        p
                    }
                }
            };
            Ok(py.detach(|| pool.install(f)))
        }
    }
}
