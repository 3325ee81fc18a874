//! Arbitrary bytes as a DNS reply to an A, an AAAA and a PTR query: the
//! native resolver's parser and validator must reject or accept them
//! without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = greenrt::dns::fuzz_reply(data);
});
