//! A stage's CPU work on a package (verifying, decoding, rendering): on the task's own thread
//! when the package is small, on tokio's blocking pool when it is not.
//!
//! Handing work to the pool and its result back costs two thread wake-ups. For a 20 KB package,
//! whose verification takes about 150 µs, that hand-off was a tenth of a worker's CPU under load
//! (`docs/performance.md`). A large package's work (milliseconds to seconds) still goes to the
//! pool, so that no task thread is held for long.

use std::panic::AssertUnwindSafe;

/// Packages of at most this many bytes are worked on in place: about half a millisecond of
/// verification at most.
pub const IN_PLACE_BYTES: u64 = 64 * 1024;

/// Runs `work` on a package of `bytes` bytes, in place or on the blocking pool. A panic in
/// `work` is returned as its message, either way, for the caller to treat the message as poison.
pub async fn on_package<T, F>(bytes: u64, work: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if bytes <= IN_PLACE_BYTES {
        return std::panic::catch_unwind(AssertUnwindSafe(work)).map_err(|panic| {
            panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned())
        });
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn small_work_runs_in_place_large_work_on_the_pool_and_a_panic_is_an_error() {
        let here = std::thread::current().id();
        let small = on_package(IN_PLACE_BYTES, || std::thread::current().id())
            .await
            .expect("small");
        assert_eq!(
            small, here,
            "a small package's work stays on the task's thread"
        );
        let large = on_package(IN_PLACE_BYTES + 1, || std::thread::current().id())
            .await
            .expect("large");
        assert_ne!(
            large, here,
            "a large package's work goes to the blocking pool"
        );

        for bytes in [10, IN_PLACE_BYTES + 1] {
            let e = on_package(bytes, || -> u8 { panic!("bad package") })
                .await
                .expect_err("panic");
            assert!(e.contains("bad package"), "{bytes}: {e}");
        }
    }
}
