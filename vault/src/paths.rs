//! Default locations and the environment variables that override them
//! (DESIGN.md, "Paths and names"). One place, so every binary agrees.

use std::ffi::OsString;
use std::path::PathBuf;

/// Environment variable naming the vault file.
pub const ENV_VAULT: &str = "DEVC_VAULT";
/// Environment variable naming the key file.
pub const ENV_KEY_FILE: &str = "DEVC_VAULT_KEY_FILE";
/// The vault's file name inside a docker config directory.
pub const VAULT_FILE_NAME: &str = ".credentials.enc";
/// Where container secrets are mounted by Docker, Compose and Kubernetes.
pub const DEFAULT_KEY_FILE: &str = "/run/secrets/devc-vault-key";

fn non_empty(v: Option<OsString>) -> Option<PathBuf> {
    v.filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The docker config directory: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> PathBuf {
    non_empty(std::env::var_os("DOCKER_CONFIG")).unwrap_or_else(|| home_dir().join(".docker"))
}

/// The user's home directory (`$HOME`, else `/`).
pub fn home_dir() -> PathBuf {
    non_empty(std::env::var_os("HOME")).unwrap_or_else(|| PathBuf::from("/"))
}

/// The vault path: `$DEVC_VAULT`, else `<docker config dir>/.credentials.enc`.
pub fn vault_path() -> PathBuf {
    non_empty(std::env::var_os(ENV_VAULT))
        .unwrap_or_else(|| docker_config_dir().join(VAULT_FILE_NAME))
}

/// The key file path: `$DEVC_VAULT_KEY_FILE`, else `/run/secrets/devc-vault-key`.
pub fn key_file_path() -> PathBuf {
    non_empty(std::env::var_os(ENV_KEY_FILE)).unwrap_or_else(|| PathBuf::from(DEFAULT_KEY_FILE))
}
