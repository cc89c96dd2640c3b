//! Prompting on the controlling terminal. Never stdin: in the credential
//! helpers stdin is the protocol payload.
//!
//! While echo is off, SIGINT, SIGTERM, SIGHUP and SIGQUIT are caught: the
//! terminal's settings are put back, then the signal does what it would
//! have done (end the process). The read polls, so a signal (whose handler
//! restarts the read) is noticed within [`SIGNAL_POLL`].

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
use signal_hook::SigId;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
use zeroize::Zeroizing;

use devc_vault::Passphrase;

/// The signals a prompt catches to put the terminal back.
const SIGNALS: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];
/// How soon a caught signal ends a prompt.
pub const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// The default actions re-armed after a prompt (signal-hook never restores
/// them itself); [`release_signals`] hands the signals to a new owner.
static REARMED: Mutex<Vec<SigId>> = Mutex::new(Vec::new());

/// Gives up the default actions a prompt re-armed, for a caller that
/// handles these signals itself from now on (the agent, after `--passphrase`).
pub fn release_signals() {
    let ids = std::mem::take(&mut *REARMED.lock().unwrap_or_else(|p| p.into_inner()));
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
}

/// Catches [`SIGNALS`] for the length of a prompt.
struct Caught {
    flags: Vec<(i32, Arc<AtomicBool>)>,
    ids: Vec<SigId>,
}

impl Caught {
    fn install() -> Caught {
        let mut flags = Vec::new();
        let mut ids = Vec::new();
        for sig in SIGNALS {
            let flag = Arc::new(AtomicBool::new(false));
            if let Ok(id) = signal_hook::flag::register(sig, Arc::clone(&flag)) {
                ids.push(id);
                flags.push((sig, flag));
            }
        }
        Caught { flags, ids }
    }

    /// The signal that arrived, if one did.
    fn pending(&self) -> Option<i32> {
        self.flags
            .iter()
            .find(|(_, f)| f.load(Ordering::Acquire))
            .map(|(sig, _)| *sig)
    }
}

impl Drop for Caught {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        // The registry keeps its handler installed; without an action the
        // signals would be ignored from now on. Re-arm their default action.
        let mut rearmed = REARMED.lock().unwrap_or_else(|p| p.into_inner());
        if rearmed.is_empty() {
            for sig in SIGNALS {
                let always = Arc::new(AtomicBool::new(true));
                if let Ok(id) = signal_hook::flag::register_conditional_default(sig, always) {
                    rearmed.push(id);
                }
            }
        }
    }
}

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
        let caught = Caught::install();
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
            if let Some(sig) = caught.pending() {
                // Terminal first, then what the signal would have done.
                drop(guard);
                let _ = (&self.file).write_all(b"\n");
                drop(caught);
                release_signals();
                let _ = signal_hook::low_level::emulate_default_handler(sig);
                return Err(PromptError::Cancelled);
            }
            let mut fds = [PollFd::new(&self.file, PollFlags::IN)];
            let wait = Timespec::try_from(SIGNAL_POLL).unwrap_or(Timespec {
                tv_sec: 0,
                tv_nsec: 100_000_000,
            });
            match poll(&mut fds, Some(&wait)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(PromptError::Io(e.into())),
            }
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
        drop(caught);
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
