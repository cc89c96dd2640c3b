//! Prompting on the controlling terminal. Never stdin: in the credential
//! helpers stdin is the protocol payload.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};

use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
use zeroize::Zeroizing;

use devc_vault::Passphrase;

/// Longest passphrase read; longer input is refused rather than buffered.
pub const MAX_PASSPHRASE_LEN: usize = 1024;

/// The controlling terminal, `/dev/tty`.
#[derive(Debug)]
pub struct Tty {
    file: File,
}

/// Why a passphrase could not be read.
#[derive(Debug)]
pub enum PromptError {
    /// The terminal was closed (Ctrl-D) before a line was entered.
    Cancelled,
    /// The line was longer than [`MAX_PASSPHRASE_LEN`] or not UTF-8.
    Invalid,
    /// A terminal I/O error.
    Io(io::Error),
}

impl std::fmt::Display for PromptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PromptError::Cancelled => f.write_str("prompt cancelled"),
            PromptError::Invalid => write!(
                f,
                "passphrase too long (over {MAX_PASSPHRASE_LEN} bytes) or not UTF-8"
            ),
            PromptError::Io(e) => write!(f, "terminal error: {e}"),
        }
    }
}

impl std::error::Error for PromptError {}

/// Puts the terminal's echo back however the read ends.
struct EchoGuard<'a> {
    file: &'a File,
    saved: rustix::termios::Termios,
}

impl Drop for EchoGuard<'_> {
    fn drop(&mut self) {
        let _ = tcsetattr(self.file, OptionalActions::Now, &self.saved);
    }
}

impl Tty {
    /// Opens the controlling terminal; `None` when the process has none.
    pub fn open() -> Option<Tty> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()?;
        rustix::termios::isatty(&file).then_some(Tty { file })
    }

    /// Writes a note (no secret) to the terminal.
    pub fn note(&mut self, msg: &str) {
        let _ = self.file.write_all(msg.as_bytes());
        let _ = self.file.flush();
    }

    /// Shows `prompt` and reads one line with echo off.
    pub fn read_secret(&mut self, prompt: &str) -> Result<Passphrase, PromptError> {
        let saved = tcgetattr(&self.file).map_err(|e| PromptError::Io(e.into()))?;
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        quiet.local_modes.insert(LocalModes::ECHONL);
        tcsetattr(&self.file, OptionalActions::Flush, &quiet)
            .map_err(|e| PromptError::Io(e.into()))?;
        let guard = EchoGuard {
            file: &self.file,
            saved,
        };
        let _ = (&self.file).write_all(prompt.as_bytes());
        let _ = (&self.file).flush();
        let mut line = Zeroizing::new(Vec::with_capacity(128));
        // One byte at a time, so nothing past the newline is consumed; the
        // one-byte buffer is zeroized with the line.
        let mut byte = Zeroizing::new([0u8; 1]);
        let mut too_long = false;
        loop {
            match (&self.file).read(&mut byte[..]) {
                Ok(0) if line.is_empty() => return Err(PromptError::Cancelled),
                Ok(0) => break,
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) if line.len() >= MAX_PASSPHRASE_LEN => too_long = true,
                Ok(_) => line.push(byte[0]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(PromptError::Io(e)),
            }
        }
        drop(guard);
        if too_long {
            return Err(PromptError::Invalid);
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        // Move the bytes out without copying; a non-UTF-8 buffer is zeroized
        // by `Zeroizing` when it comes back in the error.
        let bytes = std::mem::take(&mut *line);
        match String::from_utf8(bytes) {
            Ok(s) => Ok(Passphrase::new(s)),
            Err(e) => {
                drop(Zeroizing::new(e.into_bytes()));
                Err(PromptError::Invalid)
            }
        }
    }
}
