//! User-data as any datasource could hand it over: parsing and validating it must never
//! panic, whatever the bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = corral_config::userdata::parse("fuzz", data);
    let _ = corral_config::validate::user_data("fuzz", data);
});
