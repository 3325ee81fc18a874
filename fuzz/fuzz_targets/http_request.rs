//! Arbitrary bytes as what a client sends to the HTTP/1.1 server: the
//! request path (head parsing, limits, body decoding, responses) must
//! never panic, and must answer with a status line or close.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let out = greenrt::server::http::fuzz_http_request_bytes(data);
    assert!(out.is_empty() || out.starts_with(b"HTTP/1.1 "));
});
