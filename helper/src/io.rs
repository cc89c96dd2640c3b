//! What both helper binaries share: stdin read and stdout written on the raw
//! file descriptors (no std buffer keeps a copy of a secret), one cap on the
//! input, and one line of diagnostics on stderr.

use std::io::{self, Read, Write};

use devc_vault::{ReadCappedError, read_capped};
use zeroize::Zeroizing;

/// The most stdin a helper reads (1 MiB); larger input is refused before it
/// is parsed, so input size never drives an allocation. Requests are a few
/// hundred bytes; git's `wwwauth[]` headers add a few KiB.
pub const MAX_INPUT: usize = 1 << 20;

/// Why the request could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// More than [`MAX_INPUT`] bytes.
    TooLarge,
    /// Reading failed.
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::TooLarge => write!(f, "input is larger than {MAX_INPUT} bytes"),
            ReadError::Io(e) => write!(f, "cannot read stdin: {e}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads all of `input` (at most [`MAX_INPUT`] bytes) into a wiped-on-drop buffer.
pub fn read_input(input: &mut dyn Read) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    read_capped(input, MAX_INPUT).map_err(|e| match e {
        ReadCappedError::TooLarge => ReadError::TooLarge,
        ReadCappedError::Io(e) => ReadError::Io(e),
    })
}

/// Standard input without std's buffer; empty when stdin is closed.
pub fn stdin() -> Box<dyn Read> {
    match rustix::stdio::stdin().try_clone_to_owned() {
        Ok(fd) => Box::new(std::fs::File::from(fd)),
        Err(_) => Box::new(io::empty()),
    }
}

/// Standard output without std's buffer: each write goes to descriptor 1.
#[derive(Debug, Default)]
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match rustix::io::write(rustix::stdio::stdout(), buf) {
                Err(rustix::io::Errno::INTR) => {}
                other => return other.map_err(io::Error::from),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `s` as one line: line breaks joined with spaces, so a message (which may
/// quote a path or a server's words) cannot forge extra lines.
pub fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes `program: message` as one line on stderr (never a secret: callers
/// pass error messages, which never carry one).
pub fn diagnostic(err: &mut dyn Write, program: &str, message: &str) {
    let _ = writeln!(err, "{program}: {}", one_line(message));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_capped() {
        let big = vec![b' '; MAX_INPUT + 1];
        assert!(matches!(
            read_input(&mut &big[..]),
            Err(ReadError::TooLarge)
        ));
        let ok = vec![b' '; MAX_INPUT];
        assert_eq!(
            read_input(&mut &ok[..]).map(|b| b.len()).ok(),
            Some(MAX_INPUT)
        );
    }

    #[test]
    fn diagnostics_are_one_line() {
        let mut out = Vec::new();
        diagnostic(&mut out, "p", "a\nb\r\nc");
        assert_eq!(out, b"p: a b c\n");
    }
}
