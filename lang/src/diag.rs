//! Diagnostics: built by the parser and checker, rendered with codespan-reporting at the edge.

use crate::ast::Span;
use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a program: a code (explained in docs/errors/CODE.md, which `sluice explain
/// CODE` prints), a message, labelled spans and an optional help note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    /// The primary label first.
    pub labels: Vec<(Span, String)>,
    pub notes: Vec<String>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            labels: Vec::new(),
            notes: Vec::new(),
            help: None,
        }
    }
    pub fn warning(code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }
    /// Adds a label; the first one added is the primary label (the caret).
    pub fn with_label(mut self, span: Span, text: impl Into<String>) -> Diagnostic {
        self.labels.push((span, text.into()));
        self
    }
    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }
    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Renders diagnostics the way rustc does, without color (for files and tests) or with it.
pub fn render(diags: &[Diagnostic], file_name: &str, source: &str, color: bool) -> String {
    let file = SimpleFile::new(file_name, source);
    let config = term::Config::default();
    let styles = term::Styles::default();
    let mut out = Vec::new();
    for d in diags {
        let cs = to_codespan(d, source.len());
        // Rendering into memory cannot fail on I/O, and the file is the one the spans came from.
        if color {
            let mut w = term::StylesWriter::new(termcolor::Ansi::new(&mut out), &styles);
            let _ = term::emit_to_write_style(&mut w, &config, &file, &cs);
        } else {
            let _ = term::emit_to_io_write(&mut out, &config, &file, &cs);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn to_codespan(d: &Diagnostic, len: usize) -> CsDiagnostic<()> {
    let base = match d.severity {
        Severity::Error => CsDiagnostic::error(),
        Severity::Warning => CsDiagnostic::warning(),
    };
    let labels = d
        .labels
        .iter()
        .enumerate()
        .map(|(i, (span, text))| {
            // Clamp, so that a span at end of input still renders.
            let start = span.start.min(len);
            let end = span.end.clamp(start, len);
            let label = if i == 0 {
                Label::primary((), start..end)
            } else {
                Label::secondary((), start..end)
            };
            label.with_message(text.clone())
        })
        .collect();
    let mut notes = d.notes.clone();
    if let Some(h) = &d.help {
        notes.push(format!("help: {h}"));
    }
    base.with_message(d.message.clone())
        .with_code(d.code)
        .with_labels(labels)
        .with_notes(notes)
}
