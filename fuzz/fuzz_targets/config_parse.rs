// SPDX-License-Identifier: Apache-2.0
//! `--ras` parser: never panics, and whatever it accepts is valid and
//! round-trips through its option string.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ras::config::RasConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = RasConfig::parse(s) {
        assert_eq!(cfg.validate(), Ok(()));
        let again = RasConfig::parse(&cfg.to_option_string());
        assert_eq!(again, Ok(cfg), "input {s:?}");
    }
});
