//! Rayon pools by thread count, built once per calling thread and cached, so `threads=n`
//! costs nothing after the first call and concurrent callers never queue on each other's
//! workers (each Python thread that asks for n threads gets its own pool of n). Results
//! never depend on the pool: work is split in fixed chunks.

use pyo3::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    static POOLS: RefCell<HashMap<usize, Rc<rayon::ThreadPool>>> = RefCell::new(HashMap::new());
}

/// This thread's pool of exactly `n` threads.
fn pool(n: usize) -> PyResult<Rc<rayon::ThreadPool>> {
    POOLS.with(|pools| {
        if let Some(p) = pools.borrow().get(&n) {
            return Ok(p.clone());
        }
        let p = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| crate::errors::input_error(format!("cannot start {n} threads: {e}")))?;
        let p = Rc::new(p);
        pools.borrow_mut().insert(n, p.clone());
        Ok(p)
    })
}

/// Runs `f` with the GIL released, on the global pool (`threads` = None or 0) or on this
/// thread's cached pool of exactly `threads` threads.
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
            let p = pool(n)?;
            let p: &rayon::ThreadPool = &p;
            Ok(py.detach(|| p.install(f)))
        }
    }
}
