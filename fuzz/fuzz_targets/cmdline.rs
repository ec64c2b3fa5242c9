//! The kernel command line's `corral.<path>=<yaml>` options: never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = corral_config::cmdline::parse(text);
    }
});
