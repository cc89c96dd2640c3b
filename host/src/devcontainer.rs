//! `devc-vault devcontainer` on the host: the edit of a workspace's
//! `devcontainer.json` (JSONC, edited through a concrete syntax tree so
//! comments and formatting stay), and the checks that keep anything but the
//! vault, its key (or the agent's socket) and the static binaries out of the
//! container's mounts.
//!
//! What the edit writes, for a project whose vault directory is `V`:
//! - `mounts`: `V` read-write at [`env::CONTAINER_DOCKER_CONFIG`]; the key
//!   file's directory read-only at [`env::CONTAINER_SECRETS_DIR`] (key-file
//!   road) or the agent's socket directory at [`env::CONTAINER_AGENT_DIR`]
//!   (agent road); with `--binaries mount`, the binaries' directory
//!   read-only at [`env::CONTAINER_BIN_DIR`]. Mounts at other targets are
//!   left alone; ours are recognised by their targets.
//! - `containerEnv`: `DOCKER_CONFIG`, `DEVC_VAULT_KEY_ORDER`, and
//!   `DEVC_VAULT_KEY_FILE` or `DEVC_VAULT_AGENT_SOCK` (paths only, never a key).
//! - the Feature (`features` gets `"./devc-vault"`), or `remoteEnv.PATH`
//!   with the mounted binaries' directory;
//! - `postCreateCommand`: `devc-vault install`, chained after what was there.
//!
//! Running it again changes nothing; switching roads replaces our entries.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use devc_keydelivery::environment as env;
use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstNode, CstObject, CstRootNode};
use sha2::{Digest, Sha256};

/// The Feature's folder name inside `.devcontainer/`.
pub const FEATURE_DIR_NAME: &str = "devc-vault";
/// How `devcontainer.json` names the local Feature.
pub const FEATURE_REF: &str = "./devc-vault";
/// What `postCreateCommand` runs (as the container user).
pub const INSTALL_COMMAND: &str = "devc-vault install";
/// The three binaries every container needs.
pub const BINARIES: [&str; 3] = [
    "devc-vault",
    "docker-credential-devc-encrypted",
    "git-credential-devc-encrypted",
];
/// The key under which a parallel (object) `postCreateCommand` gets ours.
const INSTALL_KEY: &str = "devc-vault";

/// How the container gets the key that opens the vault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyRoad {
    /// The key file's directory is mounted read-only at `/run/secrets`.
    File {
        /// The host directory holding only the key file.
        key_dir: PathBuf,
        /// The key file's name in it.
        key_name: String,
    },
    /// The host agent's container-facing socket directory is mounted.
    Agent {
        /// The host directory holding only the agent's socket.
        agent_dir: PathBuf,
        /// The socket's name in it.
        socket_name: String,
    },
    /// Nothing is mounted: the first pull asks for the passphrase.
    Passphrase,
}

impl KeyRoad {
    /// The key source the container uses (`DEVC_VAULT_KEY_ORDER`).
    pub fn order(&self) -> &'static str {
        match self {
            KeyRoad::File { .. } => "file",
            KeyRoad::Agent { .. } => "agent",
            KeyRoad::Passphrase => "passphrase",
        }
    }
}

/// How the binaries get into the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binaries {
    /// The local Feature in `.devcontainer/devc-vault` installs them.
    Feature,
    /// A host directory of static binaries, mounted read-only and put on PATH.
    Mount {
        /// The host directory (holding exactly [`BINARIES`]).
        dir: PathBuf,
    },
}

/// Everything the edit needs to know.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The host directory of the vault (mounted read-write: `docker login`
    /// writes to it, `devc-vault install` writes `config.json` there).
    pub vault_dir: PathBuf,
    /// The key road.
    pub key: KeyRoad,
    /// The binaries.
    pub binaries: Binaries,
    /// The host user's home: sources below it are written as
    /// `${localEnv:HOME}/...`. `None` writes absolute paths.
    pub home: Option<PathBuf>,
}

/// Targets of the mounts this module writes: a mount at one of them is ours.
pub const OUR_TARGETS: [&str; 4] = [
    env::CONTAINER_DOCKER_CONFIG,
    env::CONTAINER_SECRETS_DIR,
    env::CONTAINER_AGENT_DIR,
    env::CONTAINER_BIN_DIR,
];

/// Environment variables this module writes in `containerEnv`.
pub const OUR_ENV: [&str; 4] = [
    env::ENV_DOCKER_CONFIG,
    env::ENV_KEY_ORDER,
    env::ENV_KEY_FILE,
    env::ENV_AGENT_SOCK,
];

impl Setup {
    fn source(&self, p: &Path) -> Result<String, String> {
        let s = p.to_str().ok_or_else(|| {
            format!(
                "{} is not valid UTF-8, which devcontainer.json cannot hold",
                p.display()
            )
        })?;
        if !p.is_absolute() || s.contains([',', '"', '\n']) {
            return Err(format!(
                "{s} cannot be a mount source (it must be absolute, without commas or quotes); choose another directory"
            ));
        }
        if let Some(home) = self.home.as_deref().filter(|h| *h != Path::new("/"))
            && let Ok(rest) = p.strip_prefix(home)
        {
            return Ok(format!("${{localEnv:HOME}}/{}", rest.display()));
        }
        Ok(s.to_owned())
    }

    /// The mounts, as `(target, devcontainer.json mount string)`.
    pub fn mounts(&self) -> Result<Vec<(&'static str, String)>, String> {
        let bind = |src: &Path, target: &'static str, readonly: bool| {
            Ok::<_, String>((
                target,
                format!(
                    "source={},target={target},type=bind{}",
                    self.source(src)?,
                    if readonly { ",readonly=true" } else { "" }
                ),
            ))
        };
        let mut m = vec![bind(&self.vault_dir, env::CONTAINER_DOCKER_CONFIG, false)?];
        match &self.key {
            KeyRoad::File { key_dir, .. } => {
                m.push(bind(key_dir, env::CONTAINER_SECRETS_DIR, true)?)
            }
            // Read-only: the container can reach the socket but never
            // replace it with one of its own.
            KeyRoad::Agent { agent_dir, .. } => {
                m.push(bind(agent_dir, env::CONTAINER_AGENT_DIR, true)?)
            }
            KeyRoad::Passphrase => {}
        }
        if let Binaries::Mount { dir } = &self.binaries {
            m.push(bind(dir, env::CONTAINER_BIN_DIR, true)?);
        }
        Ok(m)
    }

    /// The `containerEnv` entries: `Some` to set, `None` to remove.
    pub fn container_env(&self) -> Vec<(&'static str, Option<String>)> {
        let key_file = match &self.key {
            KeyRoad::File { key_name, .. } => {
                Some(format!("{}/{key_name}", env::CONTAINER_SECRETS_DIR))
            }
            _ => None,
        };
        let agent = match &self.key {
            KeyRoad::Agent { socket_name, .. } => {
                Some(format!("{}/{socket_name}", env::CONTAINER_AGENT_DIR))
            }
            _ => None,
        };
        vec![
            (
                env::ENV_DOCKER_CONFIG,
                Some(env::CONTAINER_DOCKER_CONFIG.to_owned()),
            ),
            (env::ENV_KEY_ORDER, Some(self.key.order().to_owned())),
            (env::ENV_KEY_FILE, key_file),
            (env::ENV_AGENT_SOCK, agent),
        ]
    }
}

/// Applies `setup` to the text of a `devcontainer.json`; returns the new
/// text (identical when nothing needed to change). Errors are one line.
pub fn edit(text: &str, setup: &Setup) -> Result<String, String> {
    let root = CstRootNode::parse(text, &ParseOptions::default())
        .map_err(|e| format!("it is not valid JSONC ({e}); fix it, then run this again"))?;
    let obj = root
        .object_value()
        .ok_or("its top level is not a JSON object; fix it, then run this again")?;
    edit_mounts(&obj, &setup.mounts()?)?;
    edit_container_env(&obj, &setup.container_env())?;
    edit_binaries(&obj, &setup.binaries)?;
    edit_post_create(&obj)?;
    let out = root.to_string();
    // The result must read back as what we meant.
    CstRootNode::parse(&out, &ParseOptions::default())
        .map_err(|e| format!("the edit produced invalid JSONC ({e}); please report this"))?;
    Ok(out)
}

fn string_value(node: &CstNode) -> Option<String> {
    node.as_string_lit()?.decoded_value().ok()
}

/// The target of a `mounts` element: a `k=v,...` string or an object.
fn mount_target(node: &CstNode) -> Option<String> {
    if let Some(s) = string_value(node) {
        return s.split(',').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            matches!(k.trim(), "target" | "dst" | "destination").then(|| v.trim().to_owned())
        });
    }
    let obj = node.as_object()?;
    string_value(&obj.get("target")?.value()?)
}

fn edit_mounts(obj: &CstObject, wanted: &[(&'static str, String)]) -> Result<(), String> {
    let arr = obj
        .array_value_or_create("mounts")
        .ok_or("\"mounts\" is not an array; fix it, then run this again")?;
    let mut done: Vec<&str> = Vec::new();
    for node in arr.elements() {
        let Some(target) = mount_target(&node) else {
            continue;
        };
        let target = target.trim_end_matches('/');
        if !OUR_TARGETS.contains(&target) {
            continue;
        }
        match wanted.iter().find(|(t, _)| *t == target) {
            Some((t, m)) if !done.contains(t) => {
                if string_value(&node).as_deref() != Some(m.as_str()) {
                    replace(node, CstInputValue::String(m.clone()));
                }
                done.push(t);
            }
            _ => remove(node),
        }
    }
    for (t, m) in wanted {
        if !done.contains(t) {
            arr.append(CstInputValue::String(m.clone()));
        }
    }
    Ok(())
}

fn replace(node: CstNode, value: CstInputValue) {
    if let Some(s) = node.as_string_lit() {
        s.replace_with(value);
    } else if let Some(o) = node.as_object() {
        o.replace_with(value);
    } else if let Some(a) = node.as_array() {
        a.replace_with(value);
    }
}

fn remove(node: CstNode) {
    node.remove();
}

fn edit_container_env(
    obj: &CstObject,
    wanted: &[(&'static str, Option<String>)],
) -> Result<(), String> {
    let env_obj = obj
        .object_value_or_create("containerEnv")
        .ok_or("\"containerEnv\" is not an object; fix it, then run this again")?;
    for (k, v) in wanted {
        match (env_obj.get(k), v) {
            (Some(p), Some(v)) => {
                if p.value().and_then(|n| string_value(&n)).as_deref() != Some(v.as_str()) {
                    p.set_value(CstInputValue::String(v.clone()));
                }
            }
            (None, Some(v)) => {
                env_obj.append(k, CstInputValue::String(v.clone()));
            }
            (Some(p), None) => p.remove(),
            (None, None) => {}
        }
    }
    Ok(())
}

/// `remoteEnv.PATH` with the mounted binaries.
pub fn remote_path() -> String {
    format!("${{containerEnv:PATH}}:{}", env::CONTAINER_BIN_DIR)
}

fn edit_binaries(obj: &CstObject, binaries: &Binaries) -> Result<(), String> {
    let bin_suffix = format!(":{}", env::CONTAINER_BIN_DIR);
    match binaries {
        Binaries::Feature => {
            let features = obj
                .object_value_or_create("features")
                .ok_or("\"features\" is not an object; fix it, then run this again")?;
            if features.get(FEATURE_REF).is_none() {
                features.append(FEATURE_REF, CstInputValue::Object(Vec::new()));
            }
            if let Some(remote) = obj.object_value("remoteEnv")
                && let Some(p) = remote.get("PATH")
                && let Some(path) = p.value().and_then(|n| string_value(&n))
            {
                if path == remote_path() {
                    p.remove();
                } else if path.contains(&bin_suffix) {
                    p.set_value(CstInputValue::String(path.replace(&bin_suffix, "")));
                }
            }
        }
        Binaries::Mount { .. } => {
            if let Some(features) = obj.object_value("features")
                && let Some(p) = features.get(FEATURE_REF)
            {
                p.remove();
            }
            let remote = obj
                .object_value_or_create("remoteEnv")
                .ok_or("\"remoteEnv\" is not an object; fix it, then run this again")?;
            match remote.get("PATH") {
                None => {
                    remote.append("PATH", CstInputValue::String(remote_path()));
                }
                Some(p) => {
                    let path = p
                        .value()
                        .and_then(|n| string_value(&n))
                        .ok_or("\"remoteEnv.PATH\" is not a string; fix it, then run this again")?;
                    if !path.contains(env::CONTAINER_BIN_DIR) {
                        p.set_value(CstInputValue::String(format!("{path}{bin_suffix}")));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Quotes one argv word for `sh` (an array `postCreateCommand` runs
/// without a shell; chaining turns it into a shell command).
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./=:@%+,-".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn edit_post_create(obj: &CstObject) -> Result<(), String> {
    let not_supported = || {
        "\"postCreateCommand\" is neither a string, an array nor an object; fix it, then run this again".to_owned()
    };
    let Some(prop) = obj.get("postCreateCommand") else {
        obj.append(
            "postCreateCommand",
            CstInputValue::String(INSTALL_COMMAND.into()),
        );
        return Ok(());
    };
    let Some(value) = prop.value() else {
        return Err(not_supported());
    };
    if let Some(s) = string_value(&value) {
        if s.contains(INSTALL_COMMAND) {
            return Ok(());
        }
        let chained = if s.trim().is_empty() {
            INSTALL_COMMAND.to_owned()
        } else {
            format!("{s} && {INSTALL_COMMAND}")
        };
        prop.set_value(CstInputValue::String(chained));
        return Ok(());
    }
    if let Some(arr) = value.as_array() {
        let words: Option<Vec<String>> = arr.elements().iter().map(string_value).collect();
        let words = words.ok_or_else(not_supported)?;
        if words.join(" ") == INSTALL_COMMAND {
            return Ok(());
        }
        let cmd: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
        let chained = if cmd.is_empty() {
            INSTALL_COMMAND.to_owned()
        } else {
            format!("{} && {INSTALL_COMMAND}", cmd.join(" "))
        };
        prop.set_value(CstInputValue::String(chained));
        return Ok(());
    }
    if let Some(parallel) = value.as_object() {
        // Parallel commands: ours runs beside them (it needs none of them).
        let ours = parallel.properties().iter().any(|p| {
            p.value()
                .and_then(|n| string_value(&n))
                .is_some_and(|s| s.contains(INSTALL_COMMAND))
        });
        if !ours {
            parallel.append(INSTALL_KEY, CstInputValue::String(INSTALL_COMMAND.into()));
        }
        return Ok(());
    }
    Err(not_supported())
}

/// The workspace's `devcontainer.json`: `.devcontainer/devcontainer.json`,
/// else `.devcontainer.json`.
pub fn find_config(workspace: &Path) -> Option<PathBuf> {
    [
        workspace.join(".devcontainer").join("devcontainer.json"),
        workspace.join(".devcontainer.json"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// The project name for a workspace: its directory name (letters, digits,
/// `._-` kept, the rest `_`) and 8 hex digits of the SHA-256 of its
/// absolute path, so two checkouts named alike get different vaults.
pub fn project_name(workspace: &Path) -> String {
    let base: String = workspace
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "workspace".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let digest = Sha256::digest(workspace.as_os_str().as_encoded_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{hash}", base.trim_start_matches('.'))
}

/// Checks that a directory about to be mounted holds only what `allowed`
/// accepts (so nothing else on the host is exposed to the container).
/// A missing directory passes.
pub fn check_mount_dir(dir: &Path, allowed: impl Fn(&str) -> bool) -> Result<(), String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    let mut others: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !allowed(n))
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    others.sort();
    Err(format!(
        "{} is mounted into the container whole, and it holds other files ({}); give the vault and the key directories of their own",
        dir.display(),
        others.join(", ")
    ))
}

/// Names a vault directory may hold: the vault, its lock and temp files,
/// and docker's `config.json` (and its backups).
pub fn vault_dir_entry(vault_name: &str, name: &str) -> bool {
    name.starts_with(vault_name)
        || name.starts_with(&format!(".{vault_name}"))
        || name.starts_with("config.json")
        || name.starts_with(".config.json")
}

/// Names a key directory may hold: the key file, the `K.next` a rotate
/// writes first, and their temp files.
pub fn key_dir_entry(key_name: &str, name: &str) -> bool {
    name.starts_with(key_name) || name.starts_with(&format!(".{key_name}"))
}

/// The ELF machine names this checks binaries for.
fn elf_machine(code: u16) -> Option<&'static str> {
    match code {
        62 => Some("x86_64"),
        183 => Some("aarch64"),
        _ => None,
    }
}

/// Reads an executable's ELF header: its machine (`x86_64`, `aarch64`)
/// and whether it is static (no program interpreter, so no libc needed).
pub fn elf_info(path: &Path) -> Result<(&'static str, bool), String> {
    let mut f = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.by_ref()
        .take(64 * 1024)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = || {
        format!(
            "{} is not a 64-bit little-endian ELF executable",
            path.display()
        )
    };
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return Err(bad());
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
    let machine = elf_machine(u16_at(0x12)).ok_or_else(|| {
        format!(
            "{} is built for an architecture devc-vault does not ship",
            path.display()
        )
    })?;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().map_err(|_| bad())?);
    let phentsize = usize::from(u16_at(0x36));
    let phnum = usize::from(u16_at(0x38));
    let phoff = usize::try_from(phoff).map_err(|_| bad())?;
    let mut interp = false;
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        let Some(t) = bytes.get(o..o + 4) else {
            return Err(bad());
        };
        // PT_INTERP: the binary needs a dynamic loader (and a libc).
        if u32::from_le_bytes(t.try_into().map_err(|_| bad())?) == 3 {
            interp = true;
        }
    }
    Ok((machine, !interp))
}

/// This machine's architecture as the binaries name it.
pub fn host_arch() -> &'static str {
    std::env::consts::ARCH
}

/// Checks a directory for `--binaries mount`: exactly [`BINARIES`], each a
/// static executable for this machine's architecture.
pub fn check_binaries_dir(dir: &Path) -> Result<(), String> {
    check_mount_dir(dir, |n| BINARIES.contains(&n))?;
    for name in BINARIES {
        let p = dir.join(name);
        let (machine, is_static) = elf_info(&p).map_err(|e| {
            format!("{e}; --binaries-dir must hold the static binaries (scripts/dist.sh builds them into dist/<arch>/)")
        })?;
        if machine != host_arch() {
            return Err(format!(
                "{} is built for {machine}, but containers here run {}; use dist/{} from scripts/dist.sh",
                p.display(),
                host_arch(),
                host_arch()
            ));
        }
        if !is_static {
            return Err(format!(
                "{} is dynamically linked and will not run in images with another libc (or none); use the static builds from scripts/dist.sh",
                p.display()
            ));
        }
    }
    Ok(())
}

/// `SHA256SUMS` entries (`<hex>  <arch>/<name>`) of a Feature folder.
fn read_sums(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = fs::read_to_string(path).map_err(|e| {
        format!(
            "{}: {e}; run scripts/dist.sh to build the binaries into the Feature",
            path.display()
        )
    })?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let (sum, file) = l.split_once("  ")?;
            Some((sum.to_owned(), file.trim_start_matches('*').to_owned()))
        })
        .collect())
}

fn sha256_file(path: &Path) -> Result<String, String> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Checks a built Feature folder: its two metadata files, and every binary
/// for both architectures matching its `SHA256SUMS`.
pub fn check_feature_dir(src: &Path) -> Result<(), String> {
    for f in ["devcontainer-feature.json", "install.sh"] {
        if !src.join(f).is_file() {
            return Err(format!(
                "{} has no {f}: --feature-dir must be the devc-vault Feature folder (features/devc-vault in the devc-vault repository)",
                src.display()
            ));
        }
    }
    let sums = read_sums(&src.join("bin").join("SHA256SUMS"))?;
    for arch in ["x86_64", "aarch64"] {
        for name in BINARIES {
            let rel = format!("{arch}/{name}");
            let want = sums
                .iter()
                .find(|(_, f)| *f == rel)
                .map(|(s, _)| s.clone())
                .ok_or_else(|| {
                    format!(
                        "{}/bin/SHA256SUMS lists no {rel}; run scripts/dist.sh again",
                        src.display()
                    )
                })?;
            let got = sha256_file(&src.join("bin").join(&rel))?;
            if got != want {
                return Err(format!(
                    "{}/bin/{rel} does not match its SHA-256 in SHA256SUMS; run scripts/dist.sh again",
                    src.display()
                ));
            }
        }
    }
    Ok(())
}

/// Copies a checked Feature folder into `dest` (`.devcontainer/devc-vault`),
/// replacing what an earlier run copied, with a `.gitignore` that keeps
/// the binaries out of the workspace's repository.
pub fn copy_feature(src: &Path, dest: &Path) -> Result<(), String> {
    check_feature_dir(src)?;
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let bin = dest.join("bin");
    if bin.exists() {
        fs::remove_dir_all(&bin).map_err(|e| io(&bin, e))?;
    }
    for arch in ["x86_64", "aarch64"] {
        fs::create_dir_all(bin.join(arch)).map_err(|e| io(&bin, e))?;
    }
    let mut files: Vec<String> = vec![
        "devcontainer-feature.json".into(),
        "install.sh".into(),
        "bin/SHA256SUMS".into(),
    ];
    if src.join("README.md").is_file() {
        files.push("README.md".into());
    }
    for arch in ["x86_64", "aarch64"] {
        for name in BINARIES {
            files.push(format!("bin/{arch}/{name}"));
        }
    }
    for f in &files {
        let (from, to) = (src.join(f), dest.join(f));
        fs::copy(&from, &to).map_err(|e| io(&from, e))?;
        let mode = if f.ends_with(".json") || f.ends_with(".md") || f.ends_with("SHA256SUMS") {
            0o644
        } else {
            0o755
        };
        fs::set_permissions(&to, fs::Permissions::from_mode(mode)).map_err(|e| io(&to, e))?;
    }
    let ignore = dest.join(".gitignore");
    fs::write(
        &ignore,
        "# Written by devc-vault devcontainer: binaries are built, never committed.\n/bin/\n",
    )
    .map_err(|e| io(&ignore, e))?;
    Ok(())
}

/// A git remote of the workspace that a credential helper would serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitRemote {
    /// `http` or `https`.
    pub protocol: String,
    /// `host[:port]`.
    pub host: String,
    /// The user name in the URL, if any.
    pub username: Option<String>,
}

/// Parses an `http(s)://[user[:pw]@]host[:port]/...` URL (the password, if
/// a URL carries one, is dropped).
pub fn parse_remote(url: &str) -> Option<GitRemote> {
    let (protocol, rest) = url.split_once("://")?;
    if protocol != "http" && protocol != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if host.is_empty() {
        return None;
    }
    let username = userinfo
        .map(|u| u.split(':').next().unwrap_or_default().to_owned())
        .filter(|u| !u.is_empty());
    Some(GitRemote {
        protocol: protocol.to_owned(),
        host: host.to_owned(),
        username,
    })
}

/// The workspace repository's HTTP(S) remotes (`git remote -v`), without
/// duplicates. Empty when it is not a git repository or git is missing.
pub fn git_remotes(workspace: &Path) -> Vec<GitRemote> {
    let Ok(out) = Command::new("git")
        .arg("-C")
        .arg(workspace)
        .args(["remote", "-v"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    let mut found: Vec<GitRemote> = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some(r) = line.split_whitespace().nth(1).and_then(parse_remote)
            && !found.contains(&r)
        {
            found.push(r);
        }
    }
    found
}

/// A line diff of `old` and `new` for `--dry-run`: `-`/`+` for changed
/// lines, two spaces for unchanged ones, all lines shown.
pub fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Longest common subsequence table, from the ends.
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(key: KeyRoad, binaries: Binaries) -> Setup {
        Setup {
            vault_dir: "/home/u/.local/share/devc/vaults/p-1".into(),
            key,
            binaries,
            home: Some("/home/u".into()),
        }
    }

    fn file_road() -> KeyRoad {
        KeyRoad::File {
            key_dir: "/home/u/.config/devc/keys/p-1".into(),
            key_name: "devc-vault-key".into(),
        }
    }

    const ORIGINAL: &str = r#"{
  // The team's image; keep this comment.
  "name": "app",
  "image": "localhost/app:1", /* trailing block comment */
  "remoteUser": "vscode",
  "mounts": [
    "source=/data,target=/data,type=bind" // theirs
  ],
  "postCreateCommand": "npm ci",
}
"#;

    #[test]
    fn key_file_and_feature_keep_comments_and_are_idempotent() {
        let s = setup(file_road(), Binaries::Feature);
        let once = edit(ORIGINAL, &s).expect("edit");
        for keep in [
            "// The team's image; keep this comment.",
            "/* trailing block comment */",
            "\"source=/data,target=/data,type=bind\",",
            "// theirs",
            "\"remoteUser\": \"vscode\"",
        ] {
            assert!(once.contains(keep), "lost {keep:?}:\n{once}");
        }
        assert!(once.contains(
            "\"source=${localEnv:HOME}/.local/share/devc/vaults/p-1,target=/var/lib/devc-vault,type=bind\""
        ));
        assert!(once.contains(
            "\"source=${localEnv:HOME}/.config/devc/keys/p-1,target=/run/secrets,type=bind,readonly=true\""
        ));
        assert!(once.contains("\"postCreateCommand\": \"npm ci && devc-vault install\""));
        assert!(once.contains("\"./devc-vault\": {}"));
        assert!(once.contains("\"DEVC_VAULT_KEY_FILE\": \"/run/secrets/devc-vault-key\""));
        let v = CstRootNode::parse(&once, &ParseOptions::default())
            .expect("parses")
            .to_serde_value()
            .expect("a value");
        assert_eq!(v["containerEnv"]["DOCKER_CONFIG"], "/var/lib/devc-vault");
        assert_eq!(v["containerEnv"]["DEVC_VAULT_KEY_ORDER"], "file");
        assert_eq!(v["mounts"].as_array().map(Vec::len), Some(3));
        let twice = edit(&once, &s).expect("edit again");
        assert_eq!(once, twice, "not idempotent");
    }

    #[test]
    fn switching_roads_replaces_our_entries_only() {
        let file = edit(ORIGINAL, &setup(file_road(), Binaries::Feature)).expect("edit");
        let agent = setup(
            KeyRoad::Agent {
                agent_dir: "/run/user/1000/devc-vault-agent".into(),
                socket_name: "agent.sock".into(),
            },
            Binaries::Mount {
                dir: "/opt/dist/x86_64".into(),
            },
        );
        let out = edit(&file, &agent).expect("edit");
        assert!(!out.contains("/run/secrets"), "{out}");
        assert!(!out.contains("DEVC_VAULT_KEY_FILE"), "{out}");
        assert!(!out.contains("./devc-vault"), "{out}");
        assert!(out.contains(
            "\"source=/run/user/1000/devc-vault-agent,target=/run/devc-vault,type=bind,readonly=true\""
        ));
        assert!(out.contains(
            "\"source=/opt/dist/x86_64,target=/opt/devc-vault/bin,type=bind,readonly=true\""
        ));
        assert!(out.contains("\"PATH\": \"${containerEnv:PATH}:/opt/devc-vault/bin\""));
        assert!(out.contains("\"DEVC_VAULT_AGENT_SOCK\": \"/run/devc-vault/agent.sock\""));
        assert!(out.contains("target=/data"), "{out}");
        assert_eq!(
            out.matches("devc-vault install").count(),
            1,
            "install chained twice: {out}"
        );
        let back = edit(&out, &setup(KeyRoad::Passphrase, Binaries::Feature)).expect("edit");
        assert!(!back.contains("/opt/devc-vault/bin"), "{back}");
        assert!(!back.contains("/run/devc-vault"), "{back}");
        assert!(back.contains("\"DEVC_VAULT_KEY_ORDER\": \"passphrase\""));
    }

    #[test]
    fn post_create_forms() {
        let s = setup(KeyRoad::Passphrase, Binaries::Feature);
        let arr = edit(r#"{"postCreateCommand": ["echo", "it's here"]}"#, &s).expect("edit");
        assert!(
            arr.contains(r#""postCreateCommand": "echo 'it'\\''s here' && devc-vault install""#),
            "{arr}"
        );
        let obj = edit(r#"{"postCreateCommand": {"npm": "npm ci"}}"#, &s).expect("edit");
        assert!(
            obj.contains(r#""devc-vault": "devc-vault install""#),
            "{obj}"
        );
        assert_eq!(edit(&obj, &s).expect("again"), obj);
        let none = edit("{}", &s).expect("edit");
        assert!(
            none.contains(r#""postCreateCommand": "devc-vault install""#),
            "{none}"
        );
        assert!(edit(r#"{"postCreateCommand": 3}"#, &s).is_err());
    }

    #[test]
    fn bad_input_is_one_line() {
        let s = setup(KeyRoad::Passphrase, Binaries::Feature);
        for bad in ["{", "[1]", r#"{"mounts": {}}"#, r#"{"containerEnv": []}"#] {
            let e = edit(bad, &s).expect_err(bad);
            assert!(!e.contains('\n'), "{e}");
        }
        let odd = Setup {
            vault_dir: "/a,b".into(),
            ..s
        };
        assert!(edit("{}", &odd).is_err());
    }

    #[test]
    fn object_mounts_are_recognised() {
        let s = setup(KeyRoad::Passphrase, Binaries::Feature);
        let text =
            r#"{"mounts": [{"source": "/x", "target": "/var/lib/devc-vault", "type": "bind"}]}"#;
        let out = edit(text, &s).expect("edit");
        assert!(!out.contains("\"/x\""), "{out}");
        assert_eq!(
            out.matches("target=/var/lib/devc-vault").count(),
            1,
            "{out}"
        );
    }

    #[test]
    fn remotes_and_names() {
        assert_eq!(
            parse_remote("http://alice:pw@127.0.0.1:8080/repo.git"),
            Some(GitRemote {
                protocol: "http".into(),
                host: "127.0.0.1:8080".into(),
                username: Some("alice".into())
            })
        );
        assert_eq!(parse_remote("git@github.com:o/r.git"), None);
        assert_eq!(parse_remote("ssh://h/r"), None);
        let n = project_name(Path::new("/src/my app"));
        assert!(
            n.starts_with("my_app-") && n.len() == "my_app-".len() + 8,
            "{n}"
        );
        assert_ne!(n, project_name(Path::new("/other/my app")));
    }

    #[test]
    fn mount_dirs_hold_only_ours() {
        let d = tempfile::tempdir().expect("tempdir");
        fs::write(d.path().join(".credentials.enc"), "x").expect("write");
        fs::write(d.path().join("config.json"), "{}").expect("write");
        assert!(check_mount_dir(d.path(), |n| vault_dir_entry(".credentials.enc", n)).is_ok());
        fs::write(d.path().join("id_rsa"), "x").expect("write");
        let e = check_mount_dir(d.path(), |n| vault_dir_entry(".credentials.enc", n))
            .expect_err("other file");
        assert!(e.contains("id_rsa"), "{e}");
        assert!(key_dir_entry("devc-vault-key", "devc-vault-key.next"));
        assert!(!key_dir_entry("devc-vault-key", "other"));
    }

    #[test]
    fn elf_of_this_test_binary() {
        let exe = std::env::current_exe().expect("exe");
        let (machine, _) = elf_info(&exe).expect("elf");
        assert_eq!(machine, host_arch());
        assert!(elf_info(Path::new("/etc/hostname")).is_err() || !exe.exists());
    }

    #[test]
    fn diff_marks_changes() {
        let d = diff("a\nb\nc\n", "a\nB\nc\nd\n");
        assert_eq!(d, "  a\n- b\n+ B\n  c\n+ d\n");
    }
}
