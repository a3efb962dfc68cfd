//! Fuzz the replication frame decoder: arbitrary bytes, fed whole and in arbitrary chunks,
//! must never panic or allocate without bound, and whatever decodes must re-encode to bytes
//! that decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use outpost_sync::wire::{Decoder, Message};

fuzz_target!(|data: &[u8]| {
    let _ = Message::decode(data);
    // First byte picks the chunk size, so the fuzzer explores split points too.
    let (chunk, rest) = match data.split_first() {
        Some((c, rest)) => (usize::from(*c).max(1), rest),
        None => return,
    };
    let mut d = Decoder::new();
    for c in rest.chunks(chunk) {
        d.push(c);
        loop {
            match d.next() {
                Ok(Some(m)) => {
                    let enc = m.encode().expect("a decoded message re-encodes");
                    assert_eq!(Message::decode(&enc).expect("re-encoding decodes"), m);
                }
                Ok(None) => break,
                Err(_) => {
                    // Sticky: a failed stream stays failed.
                    assert!(d.next().is_err());
                    return;
                }
            }
        }
    }
});
