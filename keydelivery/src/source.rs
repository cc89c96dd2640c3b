//! The key sources. Each either yields a key to try or says why it cannot.

use devc_vault::{Key, keyfile};

use crate::config::Config;

/// Reads the key file named by the configuration.
pub fn file(cfg: &Config) -> Result<Key, String> {
    keyfile::read(&cfg.key_file)
        .map(Key::Secret)
        .map_err(|e| match e {
            devc_vault::Error::Io { ref source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                format!("{} not found", cfg.key_file.display())
            }
            other => other.to_string(),
        })
}
