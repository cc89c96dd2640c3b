//! `devc-vault devcontainer`: on the host, set a workspace up for a dev
//! container: the project's vault and key file (created if missing), an
//! optional seal of the host's credentials, and the workspace's
//! devcontainer.json (mounts, containerEnv, the Feature or mounted
//! binaries, `devc-vault install` after create).

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use devc_host::devcontainer::{
    self as dc, Binaries, FEATURE_DIR_NAME, KeyRoad, Setup, check_binaries_dir, check_feature_dir,
    check_mount_dir,
};
use devc_host::docker::import::Selection;
use devc_host::git::import::Query;
use devc_keydelivery::environment as env;
use devc_vault::{Argon2Cost, Project, SlotKind};

use crate::Global;
use crate::error::{CliError, CliResult};
use crate::{input, unlock};

/// How the container gets the key.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyArg {
    /// Mount the key file's directory read-only at /run/secrets
    File,
    /// Mount the host agent's socket directory at /run/devc-vault (no key in the container)
    Agent,
    /// Mount nothing: the first pull asks for the vault's passphrase on the terminal
    Passphrase,
}

/// How the binaries get into the container.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinariesArg {
    /// The devc-vault Feature (copied into .devcontainer/devc-vault) installs them at build
    Feature,
    /// Bind-mount a directory of static binaries read-only and put it on PATH
    Mount,
}

/// Set a workspace up for its dev container (run on the host).
///
/// Creates the project's vault and key file if missing, under XDG
/// directories: the vault in $XDG_DATA_HOME/devc/vaults/<project>/ (else
/// ~/.local/share/...), the key file alone in
/// $XDG_CONFIG_HOME/devc/keys/<project>/ (else ~/.config/...); --vault and
/// --key-file choose other paths. With --seal, copies the host's docker
/// credentials (`seal docker --all`) and the git credentials of the
/// workspace's HTTP(S) remotes into the vault. Then writes or merges
/// .devcontainer/devcontainer.json, keeping its comments: the mounts (the
/// vault's directory; the key's directory or the agent's socket directory;
/// nothing else), containerEnv, the Feature or the mounted binaries, and
/// `devc-vault install` after any postCreateCommand. Running it again
/// changes nothing.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The workspace folder [default: the current directory]
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// How the container gets the key
    #[arg(long, value_enum, default_value = "file")]
    key: KeyArg,
    /// How the binaries get into the container
    #[arg(long, value_enum, default_value = "feature")]
    binaries: BinariesArg,
    /// The built devc-vault Feature folder (features/devc-vault after scripts/dist.sh); with --binaries feature
    #[arg(long, value_name = "DIR")]
    feature_dir: Option<PathBuf>,
    /// The static binaries for this machine (dist/<arch> from scripts/dist.sh); with --binaries mount
    #[arg(long, value_name = "DIR")]
    binaries_dir: Option<PathBuf>,
    /// The devcontainer.json to edit [default: WORKSPACE/.devcontainer/devcontainer.json, else WORKSPACE/.devcontainer.json]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The project's name in the vault and key paths [default: the workspace's directory name and a hash of its path]
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Copy the host's docker credentials and the workspace remotes' git credentials into the vault
    #[arg(long)]
    seal: bool,
    /// The host's docker config directory for --seal [default: $DOCKER_CONFIG, else ~/.docker]
    #[arg(long, value_name = "DIR")]
    docker_config: Option<PathBuf>,
    /// With --key passphrase: read the new passphrase from this file descriptor (first line) instead of the terminal
    #[arg(long, value_name = "N")]
    new_passphrase_fd: Option<u32>,
    /// Argon2id cost of a new passphrase slot, as m=KiB,t=N,p=N
    #[arg(long, value_name = "COST", value_parser = super::parse_cost)]
    kdf_cost: Option<Argon2Cost>,
    /// Print what would change (a diff of devcontainer.json); write nothing
    #[arg(long)]
    dry_run: bool,
}

fn usage(s: impl Into<String>) -> CliError {
    CliError::Usage(s.into())
}

fn absolute(p: &Path) -> CliResult<PathBuf> {
    std::path::absolute(p).map_err(|e| usage(format!("{}: {e}", p.display())))
}

/// Runs `devcontainer`.
pub fn run(g: &Global, a: Args) -> CliResult {
    let ws = match &a.workspace {
        Some(w) => w.clone(),
        None => std::env::current_dir().map_err(|e| usage(format!("current directory: {e}")))?,
    };
    let ws = ws.canonicalize().map_err(|e| {
        usage(format!(
            "workspace {}: {e}; pass --workspace DIR",
            ws.display()
        ))
    })?;
    if !ws.is_dir() {
        return Err(usage(format!(
            "workspace {} is not a directory",
            ws.display()
        )));
    }
    let config = match &a.config {
        Some(c) => absolute(c)?,
        None => dc::find_config(&ws).ok_or_else(|| {
            usage(format!(
                "{} has no .devcontainer/devcontainer.json (or .devcontainer.json): create one naming your image (your editor's \"Add Dev Container Configuration Files\" does), then run this again",
                ws.display()
            ))
        })?,
    };
    let name = a.name.clone().unwrap_or_else(|| dc::project_name(&ws));
    if name.is_empty() || name.starts_with('.') || name.contains('/') {
        return Err(usage(format!(
            "project name {name:?} cannot name a directory; pass --name with letters, digits, '-', '_' or '.'"
        )));
    }
    let vault = absolute(&g.vault.clone().unwrap_or_else(|| env::project_vault(&name)))?;
    let key_file = absolute(
        &g.key_file
            .clone()
            .unwrap_or_else(|| env::project_key_file(&name)),
    )?;
    let vault_dir = devc_vault::file::parent_dir(&vault);
    let vault_name = file_name(&vault)?;
    let key_name = file_name(&key_file)?;
    check_mount_dir(&vault_dir, |n| dc::vault_dir_entry(&vault_name, n)).map_err(usage)?;

    let key = match a.key {
        KeyArg::File => {
            let key_dir = devc_vault::file::parent_dir(&key_file);
            if key_dir == vault_dir {
                return Err(usage(
                    "the key file must not sit in the vault's directory: a container that reads the vault would read its key too; use another --key-file directory",
                ));
            }
            check_mount_dir(&key_dir, |n| dc::key_dir_entry(&key_name, n)).map_err(usage)?;
            KeyRoad::File { key_dir, key_name }
        }
        KeyArg::Agent => {
            let socket = absolute(&env::default_agent_socket())?;
            let agent_dir = devc_keydelivery::endpoint::socket_dir(&socket);
            let socket_name = file_name(&socket)?;
            check_mount_dir(&agent_dir, |n| n == socket_name).map_err(usage)?;
            KeyRoad::Agent {
                agent_dir,
                socket_name,
            }
        }
        KeyArg::Passphrase => KeyRoad::Passphrase,
    };
    let binaries = match a.binaries {
        BinariesArg::Feature => {
            if a.binaries_dir.is_some() {
                return Err(usage("--binaries-dir goes with --binaries mount"));
            }
            let src = a.feature_dir.as_deref().ok_or_else(|| {
                usage("--binaries feature needs --feature-dir DIR: the devc-vault Feature folder, filled by scripts/dist.sh (features/devc-vault in the devc-vault repository)")
            })?;
            check_feature_dir(src).map_err(usage)?;
            Binaries::Feature
        }
        BinariesArg::Mount => {
            if a.feature_dir.is_some() {
                return Err(usage("--feature-dir goes with --binaries feature"));
            }
            let dir = a.binaries_dir.as_deref().ok_or_else(|| {
                usage(format!(
                    "--binaries mount needs --binaries-dir DIR: the static binaries for this machine (dist/{} from scripts/dist.sh)",
                    dc::host_arch()
                ))
            })?;
            let dir = absolute(dir)?;
            check_binaries_dir(&dir).map_err(usage)?;
            Binaries::Mount { dir }
        }
    };
    let setup = Setup {
        vault_dir: vault_dir.clone(),
        key: key.clone(),
        binaries: binaries.clone(),
        home: Some(env::home_dir()).filter(|h| h.is_absolute()),
    };
    let old = fs::read_to_string(&config)
        .map_err(|e| usage(format!("cannot read {}: {e}", config.display())))?;
    let new = dc::edit(&old, &setup).map_err(|e| usage(format!("{}: {e}", config.display())))?;
    let feature_dest = devc_vault::file::parent_dir(&config).join(FEATURE_DIR_NAME);

    if a.dry_run {
        let would = |what: String| println!("would {what}");
        if !vault.exists() {
            would(format!("create the vault {}", vault.display()));
        }
        if !key_file.exists() {
            would(format!("create the key file {}", key_file.display()));
        }
        if a.seal {
            would("seal the host's docker and git credentials into the vault".into());
        }
        if binaries == Binaries::Feature {
            would(format!("copy the Feature into {}", feature_dest.display()));
        }
        if new == old {
            println!("{} needs no change", config.display());
        } else {
            println!("would write {}:", config.display());
            print!("{}", dc::diff(&old, &new));
        }
        return Ok(());
    }

    let project = Project::new(&vault, &key_file);
    let created = project.ensure()?;
    println!(
        "vault: {} ({})",
        vault.display(),
        if created { "created" } else { "exists" }
    );
    println!("key file: {}", key_file.display());
    let g = Global {
        vault: Some(vault.clone()),
        key_file: Some(key_file.clone()),
        passphrase_fd: None,
    };
    if key == KeyRoad::Passphrase {
        add_passphrase(&g, &a)?;
    }
    if let KeyRoad::Agent { agent_dir, .. } = &key {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(agent_dir)
            .map_err(|e| usage(format!("cannot create {}: {e}", agent_dir.display())))?;
    }
    if a.seal {
        seal(&g, &ws, a.docker_config.clone());
    }
    if binaries == Binaries::Feature
        && let Some(src) = &a.feature_dir
    {
        dc::copy_feature(src, &feature_dest).map_err(usage)?;
        println!("feature: {}", feature_dest.display());
    }
    if new == old {
        println!("{}: no change needed", config.display());
    } else {
        write_keeping_mode(&config, &new)?;
        println!("{}: updated", config.display());
    }
    match &key {
        KeyRoad::File { .. } => println!(
            "key: the container reads {} at {}/{}",
            key_file.display(),
            env::CONTAINER_SECRETS_DIR,
            file_name(&key_file)?
        ),
        KeyRoad::Agent { .. } => println!(
            "key: start the agent on this host before the container needs it: devc-vault agent --key-file {}",
            key_file.display()
        ),
        KeyRoad::Passphrase => {
            println!("key: the first pull in the container asks for the vault's passphrase")
        }
    }
    println!(
        "next: devcontainer up --workspace-folder {} (or your editor's \"Reopen in Container\")",
        ws.display()
    );
    Ok(())
}

fn file_name(p: &Path) -> CliResult<String> {
    p.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| usage(format!("{} has no file name", p.display())))
}

/// The passphrase road: a passphrase slot, unless the vault has one.
fn add_passphrase(g: &Global, a: &Args) -> CliResult {
    let store = g.store();
    let has = store
        .read()?
        .slots
        .iter()
        .any(|s| matches!(s.kind, SlotKind::Passphrase(_)));
    if has {
        println!("passphrase: the vault has a passphrase slot");
        return Ok(());
    }
    let p = match a.new_passphrase_fd {
        Some(fd) => input::passphrase_from_fd(fd)?,
        None => input::new_passphrase_from_tty()?,
    };
    let cost = a.kdf_cost.unwrap_or(Argon2Cost::DEFAULT);
    let id = store.update(
        |s| unlock::open(s, g),
        |v| Ok::<_, CliError>(v.add_passphrase_slot(&p, cost)?),
    )?;
    println!("passphrase: added slot {id}");
    Ok(())
}

/// `--seal`: what the host has, each miss reported, none fatal.
fn seal(g: &Global, ws: &Path, docker_config: Option<PathBuf>) {
    let dir = docker_config.unwrap_or_else(env::docker_config_dir);
    match super::seal::docker(g, &dir, Selection::All) {
        Ok(sealed) => {
            for n in sealed.names {
                println!("sealed docker credential for {n}");
            }
            for m in sealed.missed {
                eprintln!("devc-vault: seal: skipped {m}");
            }
        }
        Err(e) => eprintln!("devc-vault: seal: no docker credential sealed: {e}"),
    }
    for r in dc::git_remotes(ws) {
        let q = Query {
            protocol: r.protocol.clone(),
            host: r.host.clone(),
            path: None,
            username: r.username.clone(),
        };
        match super::seal::git(g, q) {
            Ok(shown) => println!("sealed git credential for {shown}"),
            Err(e) => eprintln!(
                "devc-vault: seal: skipped git {}://{}: {e}",
                r.protocol, r.host
            ),
        }
    }
}

/// Replaces `path` atomically, keeping its permissions.
fn write_keeping_mode(path: &Path, text: &str) -> CliResult {
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let dir = devc_vault::file::parent_dir(path);
    let tmp = dir.join(format!(".{}.devc-vault-tmp", file_name(path)?));
    let io = |e: std::io::Error| usage(format!("cannot write {}: {e}", path.display()));
    fs::write(&tmp, text).map_err(io)?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(mode)).map_err(io)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io(e)
    })
}
