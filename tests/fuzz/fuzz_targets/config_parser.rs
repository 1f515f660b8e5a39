//! The config parser (`Config::parse`: TOML, then validation) and `describe`, over any text.
//!
//! Checked, beyond "no panic": the same text gives the same answer twice (no hidden state),
//! and an accepted config can be described.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sluice::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    match Config::parse(text, path) {
        Ok(config) => {
            let described = config.describe();
            assert!(!described.is_empty());
            let again = Config::parse(text, path).expect("accepted twice");
            assert_eq!(again.describe(), described);
        }
        Err(e) => {
            let first = e.to_string();
            assert!(!first.is_empty());
            let again = Config::parse(text, path).expect_err("refused twice");
            assert_eq!(again.to_string(), first);
        }
    }
});
