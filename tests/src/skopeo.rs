//! skopeo with an isolated credential environment.
//!
//! skopeo (containers/image 5.23) searches, in order: `--authfile` (or
//! `$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`),
//! then *still* `$XDG_CONFIG_HOME/containers/auth.json` and
//! `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`). It honours
//! `credHelpers` and ignores `credsStore`. [`Skopeo::new`] points every one of those at an
//! empty temp dir, so only what a test writes is seen.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{self, Outcome};
use crate::scratch::Scratch;
use crate::tools;

/// How a skopeo call authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// Only what the isolated environment provides (maybe nothing).
    Ambient,
    /// `--creds user:pass`.
    Creds(&'a str),
    /// `--authfile PATH` (a docker-style `config.json` or `auth.json`).
    AuthFile(&'a Path),
}

/// A skopeo runner with private HOME, DOCKER_CONFIG and XDG dirs.
#[derive(Debug)]
pub struct Skopeo {
    path_prefix: Vec<PathBuf>,
    env: Vec<(OsString, Option<OsString>)>,
    dir: Scratch,
}

impl Skopeo {
    /// Checks (skip or fail) that skopeo is installed.
    #[track_caller]
    pub fn available() -> bool {
        tools::require_tool("skopeo", "pushes and inspects images (apt: skopeo)").is_some()
    }

    /// A runner whose credential lookups all land in an empty temp dir.
    pub fn new() -> Skopeo {
        let dir = Scratch::new("skopeo");
        for d in ["home", "docker", "xdg-runtime", "xdg-config"] {
            dir.mkdir(d, 0o700);
        }
        Skopeo {
            path_prefix: Vec::new(),
            env: Vec::new(),
            dir,
        }
    }

    /// `$DOCKER_CONFIG` of this runner (write `config.json` there to test
    /// the ambient docker-config lookup).
    pub fn docker_config_dir(&self) -> PathBuf {
        self.dir.join("docker")
    }

    /// `$XDG_CONFIG_HOME` of this runner (skopeo reads
    /// `containers/auth.json` there, even when `--authfile` is given).
    pub fn xdg_config_home(&self) -> PathBuf {
        self.dir.join("xdg-config")
    }

    /// Puts `dir` in front of `PATH` (e.g. where `docker-credential-*` lives).
    pub fn prepend_path(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.path_prefix.push(dir.into());
        self
    }

    /// Sets an extra environment variable for every call.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Self {
        self.env
            .push((key.as_ref().to_owned(), Some(val.as_ref().to_owned())));
        self
    }

    /// Applies environment changes (`None`: remove the variable) to every
    /// call, e.g. a [`crate::fixture::Fixture`]'s isolation rule.
    pub fn envs(
        &mut self,
        vars: impl IntoIterator<Item = (OsString, Option<OsString>)>,
    ) -> &mut Self {
        self.env.extend(vars);
        self
    }

    /// A `skopeo` command with the isolated environment applied.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new("skopeo");
        cmd.env_remove("REGISTRY_AUTH_FILE")
            .env("HOME", self.dir.join("home"))
            .env("DOCKER_CONFIG", self.dir.join("docker"))
            .env("XDG_RUNTIME_DIR", self.dir.join("xdg-runtime"))
            .env("XDG_CONFIG_HOME", self.dir.join("xdg-config"))
            .env("PATH", tools::path_with_prefix(&self.path_prefix));
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd
    }

    /// `skopeo inspect --tls-verify=false [auth] docker://REFERENCE`.
    pub fn inspect(&self, reference: &str, auth: Auth<'_>) -> Outcome {
        let mut cmd = self.command();
        cmd.args(["inspect", "--tls-verify=false"]);
        add_auth(&mut cmd, auth, "");
        cmd.arg(format!("docker://{reference}"));
        process::run(&mut cmd, None, Duration::from_secs(60)).expect("running skopeo inspect")
    }

    /// `skopeo copy` from an OCI layout reference (`oci:DIR:TAG`) to
    /// `docker://DEST` (no TLS verification).
    pub fn copy_to_registry(&self, oci_ref: &str, dest: &str, auth: Auth<'_>) -> Outcome {
        let mut cmd = self.command();
        cmd.args(["copy", "--quiet", "--dest-tls-verify=false"]);
        add_auth(&mut cmd, auth, "dest-");
        cmd.arg(oci_ref).arg(format!("docker://{dest}"));
        process::run(&mut cmd, None, Duration::from_secs(60)).expect("running skopeo copy")
    }
}

impl Default for Skopeo {
    fn default() -> Self {
        Skopeo::new()
    }
}

fn add_auth(cmd: &mut Command, auth: Auth<'_>, prefix: &str) {
    match auth {
        Auth::Ambient => {}
        Auth::Creds(c) => {
            cmd.arg(format!("--{prefix}creds")).arg(c);
        }
        Auth::AuthFile(p) => {
            cmd.arg(format!("--{prefix}authfile")).arg(p);
        }
    }
}
