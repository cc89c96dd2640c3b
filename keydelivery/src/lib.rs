//! Key delivery for devc-vault: where the key that opens a vault comes from.
#![forbid(unsafe_code)]
