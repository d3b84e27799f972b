//! Writing to standard output and standard error without panicking (`print!` and
//! `eprint!` panic when the write fails): a closed pipe (`| head`) ends a command quietly, a
//! full disk is an error, and a message that cannot be written to standard error is lost
//! rather than fatal, so that a switch survives an unwritable log.

use std::io::Write;

/// Why standard output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The reader went away (`| head`): the command ends quietly.
    #[error("standard output was closed")]
    Closed,
    #[error("cannot write to standard output: {0}")]
    Io(std::io::Error),
}

/// Writes all of `text` to standard output, and flushes it.
pub fn stdout(text: impl AsRef<[u8]>) -> Result<(), OutputError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_ref())
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => OutputError::Closed,
            _ => OutputError::Io(e),
        })
}

/// Writes to standard error; a failure is ignored.
pub fn stderr(text: impl AsRef<[u8]>) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_ref());
    let _ = err.flush();
}

/// `print!` that returns an [`OutputError`] instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::stdout(format!($($arg)*))
    };
}

/// `println!` that returns an [`OutputError`] instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::stdout(format!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::out::stderr(format!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` that never panics.
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::out::stderr(format!($($arg)*))
    };
}

pub(crate) use {err, errln, out, outln};
