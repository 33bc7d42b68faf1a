//! Request bodies: the JSON parser with our depth and size rules must
//! never panic, whatever the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = natter::web::extract::parse_json::<serde_json::Value>(data);
    let _ = natter::web::extract::parse_json::<std::collections::HashMap<String, String>>(data);
});
