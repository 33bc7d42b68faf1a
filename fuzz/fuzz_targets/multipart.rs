//! Multipart uploads: any body with a fixed boundary.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let _ = rt.block_on(natter::web::upload::parse_multipart_bytes(
        "multipart/form-data; boundary=XyZ",
        data.to_vec(),
        64 * 1024,
    ));
});
