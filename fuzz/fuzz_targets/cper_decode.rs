// SPDX-License-Identifier: Apache-2.0
//! Fuzzes the CPER decoders (UEFI 2.10 Appendix N, ACPI 6.5 §18.3.2.7):
//! they must never panic, and whatever decodes must re-encode to bytes that
//! decode to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ras::cper::{ArmProcessorSection, DataEntry, MemoryErrorSection, StatusBlock};
use ras_tools::cper_record::Record;

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = StatusBlock::decode(data) {
        let bytes = block.encode();
        assert_eq!(bytes.len(), block.encoded_len());
        assert_eq!(StatusBlock::decode(&bytes), Ok(block));
    }
    if let Ok(record) = Record::decode(data) {
        let bytes = record.encode();
        assert_eq!(bytes.len(), record.encoded_len());
        assert_eq!(Record::decode(&bytes), Ok(record));
    }
    if let Ok((entry, used)) = DataEntry::decode_prefix(data) {
        assert!(used <= data.len());
        let mut buf = vec![0u8; entry.encoded_len()];
        assert_eq!(entry.encode_into(&mut buf), Ok(buf.len()));
        assert_eq!(DataEntry::decode_prefix(&buf), Ok((entry, buf.len())));
    }
    if let Ok(arm) = ArmProcessorSection::decode(data) {
        let mut buf = vec![0u8; arm.encoded_len()];
        assert_eq!(arm.encode_into(&mut buf), Ok(buf.len()));
        assert_eq!(ArmProcessorSection::decode(&buf), Ok(arm));
    }
    if let Ok(memory) = MemoryErrorSection::decode(data) {
        // A fixed 80-byte layout: re-encoding gives back the input.
        let mut buf = [0u8; 80];
        assert_eq!(memory.encode_into(&mut buf), Ok(80));
        assert_eq!(&buf[..], data);
    }
});
