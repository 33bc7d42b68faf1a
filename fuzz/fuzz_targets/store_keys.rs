//! Key decoding in the store: a corrupt key is an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = natter::store::keys::decode_inbox_status_activity(data);
    for at in 0..data.len().min(32) {
        let _ = natter::store::keys::read_u64(data, at);
    }
});
