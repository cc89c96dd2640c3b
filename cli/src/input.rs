//! Reading secrets: from stdin, from a numbered file descriptor (as gpg's
//! `--passphrase-fd`), or from a prompt on `/dev/tty`. Never from argv.

use std::fs::File;
use std::io::{IsTerminal, Read};

use devc_vault::MAX_SECRET_LEN;
use devc_vault::{Passphrase, Secret};
use zeroize::Zeroizing;

use crate::error::{CliError, CliResult};

/// Reads at most `MAX_SECRET_LEN` bytes and strips one trailing newline.
fn read_bounded(mut r: impl Read, what: &str) -> CliResult<Zeroizing<String>> {
    let mut buf = Zeroizing::new(Vec::new());
    (&mut r)
        .take(MAX_SECRET_LEN as u64 + 2)
        .read_to_end(&mut buf)
        .map_err(|e| CliError::Input(format!("cannot read the {what}: {e}")))?;
    if buf.len() > MAX_SECRET_LEN + 1 {
        return Err(CliError::Input(format!(
            "the {what} is longer than {MAX_SECRET_LEN} bytes"
        )));
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    let s = String::from_utf8(std::mem::take(&mut *buf))
        .map_err(|_| CliError::Input(format!("the {what} is not valid UTF-8")))?;
    Ok(Zeroizing::new(s))
}

/// Whether `/dev/tty` can be opened (a controlling terminal exists).
pub fn have_tty() -> bool {
    File::open("/dev/tty").is_ok()
}

/// Prompts on `/dev/tty` without echo (the one prompt the helpers use too).
pub fn prompt(label: &str) -> CliResult<Zeroizing<String>> {
    let mut tty = devc_keydelivery::prompt::Tty::open()
        .ok_or_else(|| CliError::Input("no terminal (/dev/tty) to prompt on".into()))?;
    let p = tty
        .read_secret(label)
        .map_err(|e| CliError::Input(format!("cannot read from /dev/tty: {e}")))?;
    Ok(Zeroizing::new(p.expose().to_owned()))
}

/// Reads a secret from stdin, or prompts on `/dev/tty` when stdin is a terminal.
pub fn secret_from_stdin_or_tty(label: &str) -> CliResult<Secret> {
    let s = if std::io::stdin().is_terminal() {
        prompt(&format!("{label}: "))?
    } else {
        read_bounded(std::io::stdin().lock(), label)?
    };
    if s.is_empty() {
        return Err(CliError::Input(format!(
            "the {label} is empty: pipe it on stdin, e.g. `printf %s \"$TOKEN\" | devc-vault add ...`"
        )));
    }
    Ok(Secret::new(s.to_string()))
}

/// Reads a passphrase (its first line) from file descriptor `fd` itself: a
/// pipe, a socket, or a file from where it stands.
pub fn passphrase_from_fd(fd: u32) -> CliResult<Passphrase> {
    let f = i32::try_from(fd)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
        .and_then(devc_fds::take)
        .map_err(|e| {
            CliError::Input(format!(
                "cannot read a passphrase from file descriptor {fd}: {e}"
            ))
        })?;
    let mut all = read_bounded(f, "passphrase")?;
    if let Some(n) = all.find('\n') {
        all.truncate(n);
    }
    if all.is_empty() {
        return Err(CliError::Input(format!(
            "the passphrase read from file descriptor {fd} is empty"
        )));
    }
    Ok(Passphrase::new(all.to_string()))
}

/// Prompts twice for a new passphrase on `/dev/tty` and checks they agree.
pub fn new_passphrase_from_tty() -> CliResult<Passphrase> {
    if !have_tty() {
        return Err(CliError::Usage(
            "no terminal to ask for a passphrase: pass --key-file PATH or --passphrase-fd N".into(),
        ));
    }
    let a = prompt("New vault passphrase: ")?;
    if a.is_empty() {
        return Err(CliError::Input("the passphrase is empty".into()));
    }
    let b = prompt("Repeat the passphrase: ")?;
    if *a != *b {
        return Err(CliError::Input(
            "the passphrases do not match; nothing was changed".into(),
        ));
    }
    Ok(Passphrase::new(a.to_string()))
}
