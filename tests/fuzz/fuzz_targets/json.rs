//! JSON packages from REST adapters.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lienthong_translate::json::from_json(data);
});
